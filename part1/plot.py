"""Figures and report tables of part 1, from the saved results only (no training).

    python part1/plot.py

Reads part1/results/{accuracy_vs_length,training_curves,grads_over_time}.csv and writes
report/figures/{accuracy_vs_length,training_curves,grads_over_time}.png and the LaTeX snippets
report/generated/part1_*.tex that the report inputs. accuracy_vs_length.csv holds the sweep under
the old stopping rule (patience 1,500, at most 8,000 steps) until the report moves to the new one.

From the new sweep (results/sweep_runs.csv, when present): report/figures/steps_to_solve.png,
report/generated/part1_sweep_horizons.tex and results/sweep_summary.md (per recipe, model and
length: seeds solved, accuracy, steps; the horizons, the convergence check, the lengths not run).
From results/probe.csv and probe_units.csv (part1/probe.py): report/figures/memory_probe.png and
report/figures/lstm_memory_units.png.
"""
import csv
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from part1 import cli, grads_over_time, sweep  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "part1" / "results"
FIGURES = ROOT / "report" / "figures"
GENERATED = ROOT / "report" / "generated"
COLORS = {"RNN": "tab:blue", "LSTM": "tab:orange"}
SOLVED = 0.99  # a length counts as mastered when the mean held-out accuracy over seeds reaches this
# The recipes and rule of accuracy_vs_length.csv (the sweep before issue 11).
OLD_RECIPES = {"onehot": "template recipe, one-hot digits",
               "raw": "template recipe, raw digit value as input (the template's input_dim 1)",
               "tuned": "one-hot digits, curriculum over lengths; LSTM forget-gate bias 1"}
PATIENCE, TRAIN_STEPS = 1500, 8000
RECIPE_COLORS = {"onehot": "tab:blue", "raw": "tab:gray", "tuned": "tab:red", "curriculum": "tab:green",
                 "forget_bias": "tab:purple", "chrono": "tab:orange"}
# Text of at least 8 pt in print: the new figures are drawn at the size they are printed (the report's
# text is 5.5 in wide) and saved without cropping or scaling.
PRINT = {"font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "legend.fontsize": 8, "legend.title_fontsize": 8,
         "xtick.labelsize": 8, "ytick.labelsize": 8, "figure.titlesize": 8}
TEXT_WIDTH = 5.5  # inches


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def accuracy_by_length(rows):
    """{(recipe, model): {T: [accuracy per seed]}}"""
    table = defaultdict(lambda: defaultdict(list))
    for r in rows:
        table[r["recipe"], r["model"]][int(r["palindrome_length"])].append(float(r["eval_accuracy"]))
    return table


def latex_escape(text):
    return text.replace("_", r"\_")


def horizon(by_length):
    """The longest swept T whose mean accuracy over seeds is >= SOLVED (None if there is none)."""
    mastered = [T for T, accs in by_length.items() if statistics.mean(accs) >= SOLVED]
    return max(mastered, default=None)


def plot_accuracy(table, recipes, path):
    fig, axes = plt.subplots(1, len(recipes), figsize=(4.6 * len(recipes), 3.6), sharey=True, squeeze=False)
    for ax, recipe in zip(axes[0], recipes, strict=True):
        for model in ("RNN", "LSTM"):
            by_length = table.get((recipe, model))
            if not by_length:
                continue
            Ts = sorted(by_length)
            mean = [statistics.mean(by_length[T]) for T in Ts]
            lo = [min(by_length[T]) for T in Ts]
            hi = [max(by_length[T]) for T in Ts]
            seeds = min(len(by_length[T]) for T in Ts)
            ax.plot(Ts, mean, "o-", color=COLORS[model], label=f"{model} (mean of {seeds}+ seeds)")
            ax.fill_between(Ts, lo, hi, color=COLORS[model], alpha=0.2, linewidth=0)
        ax.axhline(0.1, color="gray", linestyle=":", linewidth=1, label="chance")
        ax.set_title(f"{recipe}:\n{OLD_RECIPES[recipe]}", fontsize=8)
        ax.set_xlabel("palindrome length T")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("held-out accuracy (10,000 palindromes)")
    axes[0][0].legend(fontsize=8, loc="lower left")
    fig.suptitle("Held-out accuracy versus palindrome length\n(line: mean over seeds; band: min to max)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)


def plot_curves(rows, recipe, lengths, path, seed="0"):
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
    cmap = plt.get_cmap("viridis")
    for ax, model in zip(axes, ("RNN", "LSTM"), strict=True):
        for k, T in enumerate(lengths):
            points = [(int(r["step"]), float(r["accuracy"])) for r in rows
                      if (r["recipe"], r["model"], r["palindrome_length"], r["seed"]) == (recipe, model, str(T), seed)]
            if points:
                steps, acc = zip(*points, strict=True)
                ax.plot(steps, acc, color=cmap(k / max(1, len(lengths) - 1)), label=f"T = {T}")
        ax.set_title(f"{model} ({recipe} recipe, seed {seed})", fontsize=9)
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("training accuracy (100-step window)")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)


def write_tables(table, recipes, rows, path):
    models = ("RNN", "LSTM")
    lines = ["% Generated by part1/plot.py from part1/results/accuracy_vs_length.csv; do not edit.",
             r"\begin{tabular}{ll" + "c" * len(models) + "}", r"\hline",
             "recipe & description & " + " & ".join(f"{m} horizon" for m in models) + r" \\", r"\hline"]
    for recipe in recipes:
        cells = []
        for m in models:
            h = horizon(table.get((recipe, m), {}))
            cells.append(str(h) if h else "--")
        lines.append(f"{recipe} & {latex_escape(OLD_RECIPES[recipe])} & " + " & ".join(cells) + r" \\")
    lines += [r"\hline", r"\end{tabular}", ""]
    (path / "part1_horizons.tex").write_text("\n".join(lines))

    lengths = sorted({T for key in table for T in table[key]})
    lines = ["% Generated by part1/plot.py from part1/results/accuracy_vs_length.csv; do not edit.",
             r"\begin{tabular}{l" + "c" * len(recipes) * 2 + "}", r"\hline",
             " & " + " & ".join(rf"\multicolumn{{2}}{{c}}{{{recipe}}}" for recipe in recipes) + r" \\",
             "T & " + " & ".join(" & ".join(models) for _ in recipes) + r" \\", r"\hline"]
    for T in lengths:
        cells = []
        for recipe in recipes:
            for m in models:
                accs = table.get((recipe, m), {}).get(T)
                if accs:
                    sd = statistics.pstdev(accs)
                    cells.append(f"{statistics.mean(accs):.3f}" + (f" $\\pm$ {sd:.3f}" if sd >= 0.0005 else ""))
                else:
                    cells.append("")
        lines.append(f"{T} & " + " & ".join(cells) + r" \\")
    lines += [r"\hline", r"\end{tabular}", ""]
    (path / "part1_accuracy_table.tex").write_text("\n".join(lines))

    seeds = sorted({r["seed"] for r in rows})
    devices = sorted({r["device"] for r in rows})
    macros = [
        "% Generated by part1/plot.py from part1/results/accuracy_vs_length.csv; do not edit.",
        rf"\newcommand{{\PartOneRuns}}{{{len(rows)}}}",
        rf"\newcommand{{\PartOneSeeds}}{{{len(seeds)}}}",
        rf"\newcommand{{\PartOneDevices}}{{{', '.join(devices)}}}",
        rf"\newcommand{{\PartOneSolvedThreshold}}{{{SOLVED}}}",
        rf"\newcommand{{\PartOnePatience}}{{{PATIENCE:,}}}",
        rf"\newcommand{{\PartOneTrainSteps}}{{{TRAIN_STEPS:,}}}",
    ]
    for recipe in recipes:
        for m in models:
            h = horizon(table.get((recipe, m), {}))
            name = f"PartOneHorizon{recipe.capitalize()}{m.capitalize()}"
            macros.append(rf"\newcommand{{\{name}}}{{{h if h else 'none'}}}")
    (path / "part1_macros.tex").write_text("\n".join(macros) + "\n")


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
                points = [(T, sorted(int(r["steps"]) for r in runs if r["solved"] == "True"))
                          for T, runs in sorted(by_length.items())]
                solved = [(T * offset, steps) for T, steps in points if steps]
                if solved:
                    Ts, steps = zip(*solved, strict=True)
                    median = [statistics.median(s) for s in steps]
                    ax.errorbar(Ts, median, yerr=[[m - s[0] for m, s in zip(median, steps, strict=True)],
                                                  [s[-1] - m for m, s in zip(median, steps, strict=True)]],
                                fmt="o-", color=color, markersize=3, linewidth=1, capsize=2, label=recipe)
                failed = [(T * offset, int(r["steps"])) for T, runs in by_length.items() for r in runs
                          if r["solved"] == "False"]
                if failed:
                    ax.plot(*zip(*failed, strict=True), "x", color=color, markersize=4, label=None if solved else recipe)
            ax.set_xscale("log")
            ax.set_yscale("log")
            longest = max((T for (_, m), by_length in table.items() if m == model for T in by_length), default=500)
            ticks = [T for T in (5, 10, 20, 50, 100, 200, 500) if T <= longest * 1.2]
            ax.set_xticks(ticks, [str(T) for T in ticks])
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.set_title(model)
            ax.set_xlabel("palindrome length T")
            ax.grid(alpha=0.3, which="both", linewidth=0.5)
        axes[0].set_ylabel("training steps")
        handles = {label: handle for ax in axes for handle, label in zip(*ax.get_legend_handles_labels(), strict=True)}
        fig.legend(handles.values(), handles.keys(), loc="outside lower center", ncol=6, frameon=False,
                   columnspacing=1, handletextpad=0.4)
        fig.suptitle("Steps to reach held-out accuracy 0.99\n(dot: median, bar: range over the seeds that solved; "
                     "x: a run that did not solve)")
        fig.savefig(path, dpi=200)
        plt.close(fig)


def sweep_summary(rows, table):
    """Markdown: per recipe and model, each length's seeds solved, accuracy and steps; horizon; check."""
    checks = defaultdict(list)
    for r in rows:
        if r["check"] == "True":
            checks[r["recipe"], r["model"], int(r["palindrome_length"])].append(r)
    lines = ["# Part 1 sweep (generated by part1/plot.py from results/sweep_runs.csv)", "",
             "Solved: held-out accuracy >= 0.99. Accuracy: mean ± sample standard deviation over the seeds. "
             "Horizon: the longest length whose mean accuracy is >= 0.99.", ""]
    hours = defaultdict(float)
    runs_on = defaultdict(int)
    for r in rows:
        hours[r["device"]] += float(r["wall_time"]) / 3600
        runs_on[r["device"]] += 1
    lines += ["Time spent (the runs' wall_time summed, per device; runs that ran side by side each count their own time): "
              + "; ".join(f"{hours[d]:.1f} h in {runs_on[d]} runs on {d}" for d in sorted(hours)) + ".", ""]
    horizons = {}
    for recipe, spec in sweep.RECIPES.items():
        for model in ("RNN", "LSTM"):
            by_length = table.get((recipe, model))
            if not by_length:
                continue
            h = sweep.horizon({T: [float(r["eval_accuracy"]) for r in runs] for T, runs in by_length.items()})
            horizons[recipe, model] = h
            lines += [f"## {recipe}, {model}: {spec['about']}", "", f"Horizon: T = {h or 'none'}.", "",
                      "| T | solved | accuracy | steps (median, range) | stop reasons | final lengths |",
                      "|---|---|---|---|---|---|"]
            for T, runs in sorted(by_length.items()):
                accs = [float(r["eval_accuracy"]) for r in runs]
                steps = sorted(int(r["steps"]) for r in runs)
                sd = f" ± {statistics.stdev(accs):.3f}" if len(accs) > 1 else ""
                reasons = ", ".join(sorted({r["stop_reason"] for r in runs}))
                finals = ", ".join(sorted({r["final_length"] for r in runs}, key=int))
                lines.append(f"| {T} | {sum(r['solved'] == 'True' for r in runs)}/{len(runs)} | "
                             f"{statistics.mean(accs):.3f}{sd} | {statistics.median(steps):.0f} ({steps[0]}-{steps[-1]}) | "
                             f"{reasons} | {finals} |")
            for (c_recipe, c_model, T), runs in sorted(checks.items()):
                if (c_recipe, c_model) == (recipe, model):
                    accs = [float(r["eval_accuracy"]) for r in runs]
                    lines += ["", f"Convergence check at T = {T} with twice the budget "
                                  f"({runs[0]['train_steps']} steps): {sum(r['solved'] == 'True' for r in runs)}/"
                                  f"{len(runs)} seeds solved, mean accuracy {statistics.mean(accs):.3f}: the horizon "
                                  + ("moves." if statistics.mean(accs) >= SOLVED else "stands.")]
            lengths = spec[model]["lengths"]
            if h == max(lengths):
                lines += ["", "No length past the horizon is swept: no convergence check."]
            bars = sweep.stopped_climbing({T: [float(r["eval_accuracy"]) for r in runs] for T, runs in
                                           by_length.items()}, lengths, max(lengths) + 1, [0, 1, 2])
            if bars:
                not_run = [T for T in lengths if T > bars[1] and T not in by_length]
                lines += ["", f"Stopped climbing: every seed failed at T = {bars[0]} and T = {bars[1]}; "
                              f"not run: {', '.join(map(str, not_run)) or 'none'}."]
            lines.append("")
    return "\n".join(lines), horizons


def write_sweep_horizons(horizons, path):
    lines = ["% Generated by part1/plot.py from part1/results/sweep_runs.csv; do not edit.",
             r"\begin{tabular}{llcc}", r"\hline", r"recipe & description & RNN horizon & LSTM horizon \\", r"\hline"]
    for recipe, spec in sweep.RECIPES.items():
        cells = [str(horizons[recipe, m] or "--") if (recipe, m) in horizons else "" for m in ("RNN", "LSTM")]
        if any(cells):
            lines.append(f"{latex_escape(recipe)} & {latex_escape(spec['about'])} & " + " & ".join(cells) + r" \\")
    lines += [r"\hline", r"\end{tabular}", ""]
    path.write_text("\n".join(lines))


def plot_probe(rows, runs, path):
    """Accuracy of the linear read-out of the first digit against t, for each run and state; `runs` are the
    sweep's rows, which say whether each run solved its length."""
    solved = {f"{r['recipe']}_{r['model']}_T{r['palindrome_length']}_seed{r['seed']}": r["solved"] == "True"
              for r in runs if r["check"] == "False"}
    colors = {"RNN": "tab:blue", "LSTM": "tab:orange"}
    with plt.rc_context(PRINT):
        fig, axes = plt.subplots(1, 2, figsize=(TEXT_WIDTH, 3.4), sharey=True, layout="constrained")
        for ax, is_solved in zip(axes, (True, False), strict=True):
            for run in dict.fromkeys(r["run"] for r in rows):
                if solved.get(run) != is_solved:
                    continue
                for state, style in (("h", "-"), ("c", "--")):
                    points = [(int(r["t"]), float(r["accuracy"])) for r in rows if (r["run"], r["state"]) == (run, state)]
                    if points:
                        t, acc = zip(*points, strict=True)
                        recipe, model, T = run.split("_")[:3]
                        ax.plot(t, acc, style, color=colors[model], linewidth=1.2,
                                label=f"{model} ({'template' if recipe == 'onehot' else recipe}, T = {T[1:]}): "
                                      f"${state}^{{(t)}}$")
            ax.axhline(0.1, color="gray", linestyle=":", linewidth=1, label="chance")
            ax.set_title("solved" if is_solved else "not solved")
            ax.set_xlabel("time step t")
            ax.set_ylim(0, 1.05)
            ax.grid(alpha=0.3, linewidth=0.5)
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), fontsize=8, frameon=False)
        axes[0].set_ylabel("probe accuracy (first digit)")
        fig.savefig(path, dpi=200)
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
        fig.savefig(path, dpi=200)
        plt.close(fig)


def main(argv=None):
    parser = cli.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--figures", type=Path, default=FIGURES)
    parser.add_argument("--generated", type=Path, default=GENERATED)
    args = parser.parse_args(argv)
    args.figures.mkdir(parents=True, exist_ok=True)
    args.generated.mkdir(parents=True, exist_ok=True)

    rows = read_csv(args.results / "accuracy_vs_length.csv")
    table = accuracy_by_length(rows)
    recipes = [r for r in OLD_RECIPES if any(key[0] == r for key in table)]
    plot_accuracy(table, recipes, args.figures / "accuracy_vs_length.png")
    curves = read_csv(args.results / "training_curves.csv")
    plot_curves(curves, "onehot", [10, 15, 20, 30, 50], args.figures / "training_curves.png")
    write_tables(table, recipes, rows, args.generated)
    grads = args.results / "grads_over_time.csv"
    if grads.exists():
        grads_over_time.plot(read_csv(grads), args.figures / "grads_over_time.png")
    for recipe in recipes:
        print(recipe + ": " + ", ".join(f"{m} horizon T = {horizon(table.get((recipe, m), {}))}"
                                        for m in ("RNN", "LSTM")))

    runs = args.results / "sweep_runs.csv"
    if runs.exists():
        rows = read_csv(runs)
        table = sweep_table(rows)
        plot_steps_to_solve(table, args.figures / "steps_to_solve.png")
        summary, horizons = sweep_summary(rows, table)
        (args.results / "sweep_summary.md").write_text(summary)
        write_sweep_horizons(horizons, args.generated / "part1_sweep_horizons.tex")
        print(f"new sweep: {len(rows)} runs; horizons " + ", ".join(f"{r} {m} {h}" for (r, m), h in horizons.items()))
    if (args.results / "probe.csv").exists() and runs.exists():
        plot_probe(read_csv(args.results / "probe.csv"), read_csv(runs), args.figures / "memory_probe.png")
    if (args.results / "probe_units.csv").exists():
        plot_memory_units(read_csv(args.results / "probe_units.csv"), args.figures / "lstm_memory_units.png")


if __name__ == "__main__":
    cli.run(main, "plot.py")
