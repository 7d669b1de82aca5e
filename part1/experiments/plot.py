"""Figures and report tables of part 1, from the saved results only (no training).

    python part1/experiments/plot.py

From the sweep (results/sweep_runs.csv and sweep_curves.csv, written by part1/experiments/sweep.py):
report/figures/{accuracy_vs_length,training_curves,tuned_curves,steps_to_solve}.png, the tables
report/generated/part1_{horizons,accuracy_template,accuracy_tuned}.tex, the numbers the text quotes
(report/generated/part1_macros.tex) and results/sweep_summary.md (per recipe, model and length:
seeds solved, accuracy, steps; the horizons, the convergence check, the lengths not run).
From results/grads_over_time.csv: report/figures/grads_over_time.png. From results/probe.csv and
probe_units.csv (part1/experiments/probe.py): report/figures/memory_probe.png and lstm_memory_units.png.
"""
import statistics
from collections import defaultdict
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.ticker import NullFormatter

from part1 import common, grads_over_time
from part1 import train as train_script
from part1.experiments import rules, sweep
from part1.experiments.rules import SOLVED
from report.figure_text import FIGURES, GENERATED, ROOT, TEXT_WIDTH, print_style, save

RESULTS = ROOT / "part1" / "results"
MODELS = ("RNN", "LSTM")
MAIN_SEEDS = len(rules.MAIN_SEEDS)  # a length with fewer runs is still under way
FIVE_SEEDS = tuple(str(seed) for seed in rules.MAIN_SEEDS + rules.NEAR_SEEDS)  # the main pass and the near seeds
RECIPE_COLORS = {"onehot": "tab:blue", "raw": "tab:gray", "tuned": "tab:red", "curriculum": "tab:green",
                 "forget_bias": "tab:purple", "chrono": "tab:orange"}
# Text of 8 pt in print: the figures are drawn at the size they are printed and saved without
# cropping or scaling.
PRINT = print_style(8)
# The template recipes and the tuned ones (with the LSTM's ablations): one appendix table each.
TEMPLATE_PAIRS = [("onehot", "RNN"), ("onehot", "LSTM"), ("raw", "RNN"), ("raw", "LSTM")]
TUNED_PAIRS = [("tuned", "RNN"), ("tuned", "LSTM"), ("curriculum", "LSTM"), ("forget_bias", "LSTM"),
               ("chrono", "LSTM")]


def latex_escape(text):
    return text.replace("_", r"\_")


def accuracies(by_length):
    """{T: [held-out accuracy per seed]} from {T: [row per seed]}."""
    return {T: [float(r["eval_accuracy"]) for r in runs] for T, runs in by_length.items()}


def solved_count(runs):
    return f"{sum(map(rules.solved, runs))}/{len(runs)}"


def log_length_axis(ax, longest):
    ax.set_xscale("log")
    ticks = [T for T in (5, 10, 20, 50, 100, 200, 500) if T <= longest * 1.2]
    ax.set_xticks(ticks, [str(T) for T in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("palindrome length T")


def plot_accuracy(table, path):
    """Held-out accuracy against T per model: the mean over seeds per recipe, and every seed as a dot."""
    with plt.rc_context(PRINT):
        fig, axes = plt.subplots(1, 2, figsize=(TEXT_WIDTH, 2.5), sharey=True, layout="constrained")
        for ax, model in zip(axes, MODELS, strict=True):
            longest = 5
            for k, recipe in enumerate(sweep.RECIPES):
                by_length = table.get((recipe, model))
                if not by_length:
                    continue
                color, offset = RECIPE_COLORS[recipe], 1 + 0.03 * (k - 2.5)  # a little apart on the log axis
                accs = accuracies(by_length)
                Ts = sorted(accs)
                longest = max(longest, Ts[-1])
                ax.plot([T * offset for T in Ts], [statistics.mean(accs[T]) for T in Ts], "-", color=color,
                        linewidth=1, label=recipe)
                seeds = [(T * offset, a) for T in Ts for a in accs[T]]
                ax.plot(*zip(*seeds, strict=True), "o", color=color, markersize=2.5, alpha=0.6)
            ax.axhline(0.1, color="gray", linestyle=":", linewidth=1)
            log_length_axis(ax, longest)
            ax.set_title(model)
            ax.set_ylim(0, 1.04)
            ax.grid(alpha=0.3, which="both", linewidth=0.5)
        axes[0].set_ylabel("held-out accuracy")
        handles = {label: handle for ax in axes for handle, label in zip(*ax.get_legend_handles_labels(), strict=True)}
        fig.legend(handles.values(), handles.keys(), loc="outside lower center", ncol=6, frameon=False,
                   columnspacing=1, handletextpad=0.4)
        save(fig, path)
        plt.close(fig)


def curve_points(curves, recipe, model, T, seed):
    """(step, training accuracy) of one run's windows at the normal budget."""
    return [(int(r["step"]), float(r["accuracy"])) for r in curves
            if (r["recipe"], r["model"], r["palindrome_length"], r["seed"], r["check"])
            == (recipe, model, str(T), seed, "False")]


def plot_curves(curves, recipe, lengths, path, seed="0"):
    """Training accuracy (100-step windows) of one seed per length, one panel per model."""
    cmap = plt.get_cmap("viridis")
    with plt.rc_context(PRINT):
        fig, axes = plt.subplots(1, 2, figsize=(TEXT_WIDTH, 2.5), sharey=True, layout="constrained")
        for ax, model in zip(axes, MODELS, strict=True):
            for k, T in enumerate(lengths):
                points = curve_points(curves, recipe, model, T, seed)
                if points:
                    ax.plot(*zip(*points, strict=True), color=cmap(k / max(1, len(lengths) - 1)), linewidth=1,
                            label=f"T = {T}")
            ax.set_xscale("log")
            ax.set_title(f"{model}, {recipe} recipe, seed {seed}")
            ax.set_xlabel("training step")
            ax.set_ylim(0, 1.04)
            ax.grid(alpha=0.3, which="both", linewidth=0.5)
        axes[0].set_ylabel("training accuracy")
        handles = {label: handle for ax in axes for handle, label in zip(*ax.get_legend_handles_labels(), strict=True)}
        fig.legend(handles.values(), handles.keys(), loc="outside right center", frameon=False)
        save(fig, path)
        plt.close(fig)


def plot_seed_curves(curves, panels, path, seeds, height=3.6):
    """Training accuracy of every seed of a few runs: `panels` is a grid (rows of (recipe, model, T))."""
    cmap = plt.get_cmap("tab10")
    with plt.rc_context(PRINT):
        fig, axes = plt.subplots(len(panels), len(panels[0]), figsize=(TEXT_WIDTH, height), sharex=True, sharey=True,
                                 layout="constrained", squeeze=False)
        for row, panel_row in enumerate(panels):
            for col, (recipe, model, T) in enumerate(panel_row):
                ax = axes[row][col]
                for k, seed in enumerate(seeds):
                    points = curve_points(curves, recipe, model, T, seed)
                    if points:
                        ax.plot(*zip(*points, strict=True), color=cmap(k), linewidth=1, label=f"seed {seed}")
                ax.axhline(SOLVED, color="gray", linestyle=":", linewidth=1)
                ax.set_title(f"{recipe.replace('_', ' ')} {model}, T = {T}")
                ax.set_ylim(0, 1.04)
                ax.grid(alpha=0.3, linewidth=0.5)
            axes[row][0].set_ylabel("training accuracy")
        for ax in axes[-1]:
            ax.set_xlabel("training step")
        handles = {label: handle for ax in axes.flat for handle, label in zip(*ax.get_legend_handles_labels(), strict=True)}
        fig.legend(handles.values(), handles.keys(), loc="outside right center", frameon=False)
        save(fig, path)
        plt.close(fig)


def horizon_rows(table, checks):
    """Per recipe and model: horizon, seeds solved there, the next swept length and its seeds solved,
    and the convergence check there (rules.check_verdict): the failed runs again with twice the budget."""
    out = []
    for recipe, spec in sweep.RECIPES.items():
        for model in MODELS:
            by_length = table.get((recipe, model))
            if not by_length:
                continue
            h = rules.horizon(by_length)
            following = rules.first_past(spec[model]["lengths"], h)
            past = following if following in by_length else None
            # A lower bound while the next length has fewer seeds than the main pass: it may still be reached.
            bound = h is not None and following is not None and len(by_length.get(following, [])) < MAIN_SEEDS
            row = {"recipe": recipe, "model": model, "horizon": h, "bound": bound,
                   "at_horizon": solved_count(by_length[h]) if h else "", "next": following, "past": past,
                   "at_past": solved_count(by_length[past]) if past else "not run" if following else "",
                   "check": None}
            if past:
                redone, verdict = rules.check_verdict(by_length[past], checks.get((recipe, model, past), []))
                failed = len(rules.failed_seeds(by_length[past]))
                runs = [redone[seed] for seed in sorted(redone)]
                solved = solved_count(runs) + (f" of {failed}" if len(runs) < failed else "") if runs else "--"
                if verdict:
                    row["check"] = {"verdict": verdict, "solved": solved, "runs": runs, "failed": failed}
            out.append(row)
    return out


def write_horizons(rows, path):
    lines = ["% Generated by part1/experiments/plot.py from part1/results/sweep_runs.csv; do not edit.",
             r"\begin{tabular}{llcccccc}", r"\hline",
             r"recipe & model & horizon & solved & next $T$ & solved & check: solved & horizon \\", r"\hline"]
    for r in rows:
        check = (r["check"]["solved"], r["check"]["verdict"]) if r["check"] else ("", "")
        horizon = (r"$\geq$" if r["bound"] else "") + str(r["horizon"] or "--")
        lines.append(" & ".join([latex_escape(r["recipe"]), r["model"], horizon, r["at_horizon"],
                                 str(r["next"] or "--"), r["at_past"], *check]) + r" \\")
    lines += [r"\hline", r"\end{tabular}", ""]
    path.write_text("\n".join(lines))


def write_accuracy_table(table, pairs, path):
    """Per length: seeds solved and mean held-out accuracy, one column per (recipe, model)."""
    lengths = sorted({T for pair in pairs for T in table.get(pair, {})})
    lines = ["% Generated by part1/experiments/plot.py from part1/results/sweep_runs.csv; do not edit.",
             r"\begin{tabular}{r" + "c" * len(pairs) + "}", r"\hline",
             "$T$ & " + " & ".join(f"{latex_escape(recipe)} {model}" for recipe, model in pairs) + r" \\", r"\hline"]
    for T in lengths:
        cells = []
        for pair in pairs:
            runs = table.get(pair, {}).get(T)
            cells.append(f"{solved_count(runs)} ({statistics.mean(float(r['eval_accuracy']) for r in runs):.3f})"
                         if runs else "")
        lines.append(f"{T} & " + " & ".join(cells) + r" \\")
    lines += [r"\hline", r"\end{tabular}", ""]
    path.write_text("\n".join(lines))


def write_benchmark_table(markdown, path):
    """benchmark.md's main tables as one LaTeX table, one block per CPU with its thread settings side by
    side: ms per training step of the hand-written BPTT, of the same model under autograd, and of
    PyTorch's module, and the median ratio."""
    settings = defaultdict(dict)  # CPU -> {setting: {(model, T): cells}}
    rows_of_setting = None
    for line in markdown.splitlines():
        cells = [c.strip().strip("*") for c in line.strip().strip("|").split("|")]
        if line.startswith("## "):
            cpu, setting = line[3:].split(" · ", 1)
            rows_of_setting = settings[cpu].setdefault(setting.split(" · ")[0], {})
        elif line.startswith("|") and len(cells) == 7 and cells[1].isdigit():
            rows_of_setting[cells[0], cells[1]] = cells[2:6]
    width = 2 + 4 * max(len(by_setting) for by_setting in settings.values())
    lines = ["% Generated by part1/experiments/plot.py from part1/results/benchmark.md; do not edit.",
             r"\begin{tabular}{ll" + "rrrr" * (width // 4) + "}"]
    for cpu, by_setting in settings.items():
        lines += [r"\hline", rf"\multicolumn{{{width}}}{{l}}{{\emph{{{cpu}}}}} \\",
                  " & & " + " & ".join(rf"\multicolumn{{4}}{{c}}{{{setting}}}" for setting in by_setting) + r" \\",
                  r"model & $T$" + r" & hand-written & autograd & PyTorch & ratio" * len(by_setting) + r" \\"]
        for key in next(iter(by_setting.values())):
            lines.append(" & ".join([*key, *(c for rows in by_setting.values() for c in rows.get(key, ["--"] * 4))]) + r" \\")
    lines += [r"\hline", r"\end{tabular}", ""]
    path.write_text("\n".join(lines))


def hours_per_machine(rows):
    """{machine: hours} (the runs' wall time summed) and {machine: runs}, the most used machine first."""
    hours, runs_on = defaultdict(float), defaultdict(int)
    for r in rows:
        hours[r["machine"]] += float(r["wall_time"]) / 3600
        runs_on[r["machine"]] += 1
    return dict(sorted(hours.items(), key=lambda item: -item[1])), runs_on


def thousands(n):
    return f"{n:,}".replace(",", "{,}")


def write_macros(rows, table, checks, horizons, path):
    """Numbers the text quotes: totals, the rule's budget, and one macro per cell of the sweep, read in the
    report as \\solved{recipe}{model}{T}, \\acc{...}, \\stepsmedian{...}, \\lost{...}, \\horizon{recipe}{model}, and per
    convergence check \\checksolved{recipe}{model}{T} and \\checksteps{...} (each checked run's seed, outcome and
    steps), over the runs that failed at the normal budget."""
    hours, runs_on = hours_per_machine(rows)
    lines = ["% Generated by part1/experiments/plot.py from part1/results/sweep_runs.csv; do not edit.",
             rf"\newcommand{{\PartOneRuns}}{{{thousands(len(rows))}}}",
             rf"\newcommand{{\PartOneSolvedThreshold}}{{{SOLVED}}}",
             rf"\newcommand{{\PartOneBudget}}{{{thousands(sweep.TRAIN_STEPS)}}}",
             rf"\newcommand{{\PartOnePatience}}{{{thousands(sweep.PATIENCE)}}}",
             rf"\newcommand{{\PartOneWindow}}{{{train_script.WINDOW}}}",
             rf"\newcommand{{\PartOneSolvedWindows}}{{{train_script.SOLVED_WINDOWS}}}",
             rf"\newcommand{{\PartOneValidationSize}}{{{thousands(train_script.VALIDATION_SIZE)}}}",
             rf"\newcommand{{\PartOneCurriculumStart}}{{{train_script.CURRICULUM_START}}}",
             rf"\newcommand{{\PartOneCurriculumGrowth}}{{{train_script.CURRICULUM_GROWTH}}}",
             rf"\newcommand{{\PartOneEvalSize}}{{{thousands(vars(sweep.build_parser().parse_args([]))['eval_size'])}}}",
             r"\newcommand{\PartOneHours}{" + "; ".join(f"{h:.1f}~h in {runs_on[m]} run{'s' * (runs_on[m] != 1)} on {latex_escape(m)}"
                                                     for m, h in hours.items()) + "}"]
    cell = r"\expandafter\def\csname sweep/{}/{}/{}/{}\endcsname{{{}}}"
    for (recipe, model), by_length in sorted(table.items()):
        for T, runs in sorted(by_length.items()):
            steps = statistics.median(steps_of(r) for r in runs)
            lines += [cell.format("solved", recipe, model, T, solved_count(runs)),
                      cell.format("acc", recipe, model, T, f"{statistics.mean(float(r['eval_accuracy']) for r in runs):.3f}"),
                      cell.format("steps", recipe, model, T, thousands(round(steps))),
                      cell.format("lost", recipe, model, T, lost_count(runs))]
    for r in horizons:
        lines += [cell.format("horizon", r["recipe"], r["model"], "", r["horizon"] or "none"),
                  cell.format("horizonrel", r["recipe"], r["model"], "", r"\geq" if r["bound"] else "=")]
    for T in sorted({T for _, model in table for T in sweep.RECIPES["tuned"][model]["lengths"]}):
        lines.append(cell.format("floor", "curriculum", "", T, thousands(curriculum_floor(T))))
    for (recipe, model, T), runs in sorted(checks.items()):
        # the checks of the runs that failed at the normal budget (a run that solved repeats itself)
        redone = rules.check_verdict(table[recipe, model][T], runs)[0]
        runs = [redone[seed] for seed in sorted(redone)]
        if runs:
            lines += [cell.format("checksolved", recipe, model, T, solved_count(runs)),
                      cell.format("checksteps", recipe, model, T, ", ".join(
                          f"seed {r['seed']} {'solved' if r['solved'] == 'True' else 'stopped'} after "
                          f"{thousands(int(r['steps']))} steps" for r in runs))]
    path.write_text("\n".join(lines) + "\n")


def curriculum_floor(T):
    """The earliest step at which a curriculum run's first window at length T can end (train.py's schedule:
    one window per growth of the length)."""
    length, windows = min(T, train_script.CURRICULUM_START), 1
    while length < T:
        length, windows = train_script.next_length(length, T), windows + 1
    return windows * train_script.WINDOW


def add_curve_facts(rows, curves):
    """Give each row `reached_step`: the end of its first window at length T with training accuracy >= 0.99
    (fresh palindromes every step), or "" if it had none. Read from the curves, it is the same measure
    for every run, whatever step the run stopped at and whichever weights it was scored with. And
    `last_accuracy`: the training accuracy of its last window (where a run that learned and lost it ended)."""
    reached, last = {}, {}
    for c in curves:
        key = sweep.run_key(c)
        if c["length"] == c["palindrome_length"] and float(c["accuracy"]) >= SOLVED and key not in reached:
            reached[key] = c["step"]
        last[key] = float(c["accuracy"])  # the curves are in step order per run
    for r in rows:
        key = sweep.run_key(r)
        r["reached_step"], r["last_accuracy"] = reached.get(key, ""), last.get(key)


def lost_count(runs):
    """"k of n": of the n runs that solved, k ended training below 0.99 (they learned the task and lost it
    again, and are scored with their best weights)."""
    solved = [r for r in runs if r["solved"] == "True"]
    return f"{sum(r['last_accuracy'] is not None and r['last_accuracy'] < SOLVED for r in solved)} of {len(solved)}"


def steps_of(r):
    """A solved run's steps to reach training accuracy 0.99 at its length; an unsolved run's steps trained."""
    return int(r["reached_step"] or r["steps"]) if r["solved"] == "True" else int(r["steps"])


def check_table(rows):
    """{(recipe, model, T): [row]} of the convergence-check runs."""
    checks = defaultdict(list)
    for r in rows:
        if r["check"] == "True":
            checks[r["recipe"], r["model"], int(r["palindrome_length"])].append(r)
    return checks


def sweep_table(rows):
    """{(recipe, model): {T: [row per seed]}} of the runs at the normal budget."""
    table = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r["check"] == "False":
            table[r["recipe"], r["model"]][int(r["palindrome_length"])].append(r)
    return table


def plot_steps_to_solve(table, path):
    """Steps to solve against T per model and recipe: median and range over the seeds that solved,
    with every run that did not solve marked at the steps it trained."""
    with plt.rc_context(PRINT):
        fig, axes = plt.subplots(1, 2, figsize=(TEXT_WIDTH, 3.2), sharey=True, layout="constrained")
        for ax, model in zip(axes, ("RNN", "LSTM"), strict=True):
            for k, recipe in enumerate(sweep.RECIPES):
                by_length = table.get((recipe, model))
                if not by_length:
                    continue
                color, offset = RECIPE_COLORS[recipe], 1 + 0.03 * (k - 2.5)  # a little apart on the log axis
                points = [(T, sorted(steps_of(r) for r in runs if r["solved"] == "True"))
                          for T, runs in sorted(by_length.items())]
                solved = [(T * offset, steps) for T, steps in points if steps]
                if solved:
                    Ts, steps = zip(*solved, strict=True)
                    median = [statistics.median(s) for s in steps]
                    ax.errorbar(Ts, median, yerr=[[m - s[0] for m, s in zip(median, steps, strict=True)],
                                                  [s[-1] - m for m, s in zip(median, steps, strict=True)]],
                                fmt="o-", color=color, markersize=3, linewidth=1, capsize=2, label=recipe)
                failed = [(T * offset, steps_of(r)) for T, runs in by_length.items() for r in runs
                          if r["solved"] == "False"]
                if failed:
                    ax.plot(*zip(*failed, strict=True), "x", color=color, markersize=4, label=None if solved else recipe)
            ax.set_yscale("log")
            log_length_axis(ax, max((T for (_, m), by_length in table.items() if m == model for T in by_length),
                                    default=500))
            ax.set_title(model)
            ax.grid(alpha=0.3, which="both", linewidth=0.5)
        axes[0].set_ylabel("training steps")
        handles = {label: handle for ax in axes for handle, label in zip(*ax.get_legend_handles_labels(), strict=True)}
        fig.legend(handles.values(), handles.keys(), loc="outside lower center", ncol=6, frameon=False,
                   columnspacing=1, handletextpad=0.4)
        fig.suptitle("Steps until training accuracy first reaches 0.99 at length T\n(dot: median, bar: range over "
                     "the seeds that solved; x: unsolved, at the steps trained)")
        save(fig, path)
        plt.close(fig)


def sweep_summary(rows, table, checks, horizons):
    """Markdown: per recipe and model, each length's seeds solved, accuracy and steps; horizon; check.
    `horizons` are horizon_rows(table, checks)."""
    verdicts = {(r["recipe"], r["model"]): r for r in horizons}
    lines = ["# Part 1 sweep (generated by part1/experiments/plot.py from results/sweep_runs.csv)", "",
             "Solved: held-out accuracy >= 0.99. Accuracy: mean ± sample standard deviation over the seeds. "
             f"Horizon: the longest length whose mean accuracy is >= 0.99, over at least the main pass's {MAIN_SEEDS} seeds.", ""]
    hours, runs_on = hours_per_machine(rows)
    lines += ["Time spent (the runs' wall_time summed, per machine; runs that ran side by side each count their own "
              "time): " + "; ".join(f"{hours[m]:.1f} h in {runs_on[m]} run{'s' * (runs_on[m] != 1)} on {m}" for m in hours) + ".", ""]
    for recipe, spec in sweep.RECIPES.items():
        for model in MODELS:
            by_length = table.get((recipe, model))
            if not by_length:
                continue
            verdict = verdicts[recipe, model]
            h = verdict["horizon"]
            bound = (f" (a lower bound: T = {verdict['next']} has {len(by_length.get(verdict['next'], []))} of the "
                     f"main pass's {MAIN_SEEDS} seeds)") if verdict["bound"] else ""
            lines += [f"## {recipe}, {model}: {spec['about']}", "", f"Horizon: T {'>=' if bound else '='} {h or 'none'}{bound}.", "",
                      "| T | solved | accuracy | steps to reach 0.99, or trained if unsolved (median, range) | stop reasons | final lengths |",
                      "|---|---|---|---|---|---|"]
            for T, runs in sorted(by_length.items()):
                accs = [float(r["eval_accuracy"]) for r in runs]
                steps = sorted(steps_of(r) for r in runs)
                sd = f" ± {statistics.stdev(accs):.3f}" if len(accs) > 1 else ""
                reasons = ", ".join(sorted({r["stop_reason"] for r in runs}))
                finals = ", ".join(sorted({r["final_length"] for r in runs}, key=int))
                lines.append(f"| {T} | {solved_count(runs)} | "
                             f"{statistics.mean(accs):.3f}{sd} | {statistics.median(steps):.0f} ({steps[0]}-{steps[-1]}) | "
                             f"{reasons} | {finals} |")
            if verdict["check"]:
                T, runs, failed = verdict["past"], verdict["check"]["runs"], verdict["check"]["failed"]
                if not runs:
                    lines += ["", f"Convergence check at T = {T}: pending, {failed} failed run(s) not checked yet."]
                else:
                    lines += ["", f"Convergence check at T = {T}, the runs that failed there repeated with twice the budget "
                                  f"({runs[0]['train_steps']} steps): " + "; ".join(
                                      f"seed {r['seed']} {r['eval_accuracy']} after {r['steps']} steps"
                                      + (f" (0.99 first reached at step {steps_of(r)})" if steps_of(r) != int(r["steps"]) else "")
                                      for r in runs)
                              + {"moves": ". The horizon moves.", "stands": ". The horizon stands.",
                                 "pending": f". Pending: {failed - len(runs)} failed run(s) not checked yet."}[
                                  verdict["check"]["verdict"]]]
            lengths = spec[model]["lengths"]
            if h == max(lengths):
                lines += ["", "No length past the horizon is swept: no convergence check."]
            bars = rules.stopped_climbing(by_length, lengths, max(lengths) + 1)
            if bars:
                not_run = [T for T in lengths if T > bars[1] and T not in by_length]
                lines += ["", f"Stopped climbing: every seed failed at T = {bars[0]} and T = {bars[1]}; "
                              f"not run: {', '.join(map(str, not_run)) or 'none'}."]
            lines.append("")
    return "\n".join(lines)


def plot_probe(rows, runs, path):
    """Accuracy of the linear read-out of the first digit against t, for each run and state; `runs` are the
    sweep's rows, which say whether each run solved its length."""
    solved = {f"{r['recipe']}_{r['model']}_T{r['palindrome_length']}_seed{r['seed']}": r["solved"] == "True"
              for r in runs if r["check"] == "False"}
    # Curves that coincide (the solved runs all read 1.0) are told apart by colour and by markers
    # placed at staggered steps.
    colors = {("onehot", "RNN"): "tab:blue", ("tuned", "RNN"): "tab:purple", ("onehot", "LSTM"): "tab:orange",
              ("tuned", "LSTM"): "tab:red"}
    markers = {("onehot", "RNN"): "s", ("tuned", "RNN"): "^", "h": "o", "c": "x"}
    with plt.rc_context(PRINT):
        fig, axes = plt.subplots(1, 2, figsize=(TEXT_WIDTH, 3.4), sharey=True, layout="constrained")
        for ax, is_solved in zip(axes, (True, False), strict=True):
            k = 0
            for run in dict.fromkeys(r["run"] for r in rows):
                if solved.get(run) != is_solved:
                    continue
                for state, style in (("h", "-"), ("c", "--")):
                    points = [(int(r["t"]), float(r["accuracy"])) for r in rows if (r["run"], r["state"]) == (run, state)]
                    if points:
                        t, acc = zip(*points, strict=True)
                        recipe, model, T = run.split("_")[:3]
                        every = max(1, len(t) // 3)
                        ax.plot(t, acc, style, color=colors.get((recipe, model), "black"), linewidth=1.2,
                                marker=markers.get((recipe, model), markers[state]), markersize=4, markevery=(k * every // 4 % every, every),
                                label=f"{model} ({'template' if recipe == 'onehot' else recipe}, T = {T[1:]}): "
                                      f"${state}^{{(t)}}$")
                        k += 1
            ax.axhline(0.1, color="gray", linestyle=":", linewidth=1, label="chance")
            ax.set_title("solved" if is_solved else "not solved")
            ax.set_xlabel("time step t")
            ax.set_ylim(0, 1.05)
            ax.grid(alpha=0.3, linewidth=0.5)
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), fontsize=8, frameon=False)
        axes[0].set_ylabel("probe accuracy (first digit)")
        save(fig, path)
        plt.close(fig)


def plot_memory_units(rows, path):
    """For the LSTM units that carry the digit: c^(t) and f^(t), one line per first digit."""
    units = sorted({(int(r["rank"]), r["unit"]) for r in rows})[:2]
    cmap = plt.get_cmap("tab10")
    with plt.rc_context(PRINT):
        fig, axes = plt.subplots(2, len(units), figsize=(TEXT_WIDTH, 3.8), sharex=True, squeeze=False,
                                 layout="constrained")
        for col, (rank, unit) in enumerate(units):
            for d in range(10):
                points = [(int(r["t"]), float(r["cell_state"]), float(r["forget_gate"])) for r in rows
                          if (r["unit"], r["digit"]) == (unit, str(d))]
                t, c, f = zip(*points, strict=True)
                axes[0][col].plot(t, c, color=cmap(d), linewidth=1, label=str(d))
                axes[1][col].plot(t, f, color=cmap(d), linewidth=1)
            axes[0][col].set_title(f"unit {unit} (separates the digit {('best', 'second best')[rank]})")
            axes[1][col].set_xlabel("time step t")
            for ax in axes[:, col]:
                ax.grid(alpha=0.3, linewidth=0.5)
        axes[0][0].set_ylabel("cell state $c^{(t)}$")
        axes[1][0].set_ylabel("forget gate $f^{(t)}$")
        fig.legend(*axes[0][0].get_legend_handles_labels(), title="first digit", loc="outside right center",
                   frameon=False)
        fig.suptitle("LSTM: mean over the held-out palindromes that start with each digit")
        save(fig, path)
        plt.close(fig)


def main(argv=None):
    parser = common.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--figures", type=Path, default=FIGURES)
    parser.add_argument("--generated", type=Path, default=GENERATED)
    args = parser.parse_args(argv)
    runs = args.results / "sweep_runs.csv"
    if not runs.exists():
        raise ValueError(f"{runs}: no such file (part1/experiments/sweep.py writes it)")
    rows, curves = sweep.read_runs(runs), sweep.read_curves(args.results / "sweep_curves.csv")
    if not rows:  # empty figures and tables would replace the report's
        raise ValueError(f"{runs}: no runs yet (part1/experiments/sweep.py writes them)")
    args.figures.mkdir(parents=True, exist_ok=True)
    args.generated.mkdir(parents=True, exist_ok=True)
    add_curve_facts(rows, curves)
    table = sweep_table(rows)
    checks = check_table(rows)
    plot_accuracy(table, args.figures / "accuracy_vs_length.png")
    plot_curves(curves, "onehot", [10, 15, 20, 25, 30], args.figures / "training_curves.png")
    plot_seed_curves(curves, [[("tuned", model, T) for T in (150, 200, 300)] for model in MODELS],
                     args.figures / "tuned_curves.png", seeds=FIVE_SEEDS)
    plot_seed_curves(curves, [[("curriculum", "LSTM", 100), ("chrono", "LSTM", 100), ("forget_bias", "LSTM", 50)]],
                     args.figures / "ablation_curves.png", seeds=FIVE_SEEDS, height=2.3)
    plot_steps_to_solve(table, args.figures / "steps_to_solve.png")
    horizons = horizon_rows(table, checks)
    write_horizons(horizons, args.generated / "part1_horizons.tex")
    write_accuracy_table(table, TEMPLATE_PAIRS, args.generated / "part1_accuracy_template.tex")
    write_accuracy_table(table, TUNED_PAIRS, args.generated / "part1_accuracy_tuned.tex")
    write_macros(rows, table, checks, horizons, args.generated / "part1_macros.tex")
    (args.results / "sweep_summary.md").write_text(sweep_summary(rows, table, checks, horizons))
    print(f"{len(rows)} runs; horizons " + ", ".join(f"{r['recipe']} {r['model']} {r['horizon']}" for r in horizons))

    write_benchmark_table((args.results / "benchmark.md").read_text(), args.generated / "part1_benchmark.tex")
    grads = args.results / "grads_over_time.csv"
    if grads.exists():
        grads_over_time.plot(common.read_csv(grads), args.figures / "grads_over_time.png")
    if (args.results / "probe.csv").exists():
        plot_probe(common.read_csv(args.results / "probe.csv"), rows, args.figures / "memory_probe.png")
    if (args.results / "probe_units.csv").exists():
        plot_memory_units(common.read_csv(args.results / "probe_units.csv"), args.figures / "lstm_memory_units.png")


if __name__ == "__main__":
    common.run(main, "plot.py")
