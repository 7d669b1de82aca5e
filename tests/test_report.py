"""The report: every question answered under its heading, every figure and snippet it uses present,
and the generated numbers in agreement with the results they come from. Needs no LaTeX.

Every generated snippet is recomputed here, on its own, from the committed results it comes
from (part1/results/sweep_runs.csv, part2/results/grimm, part3/results/*.json) rather than
with the plotting scripts' helpers: a failure means a snippet is older than its results (run
`make -C report`).
"""
import csv
import itertools
import json
import re
import shutil
import statistics
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest
import torch

from part1.experiments import rules

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "report"
TEX = (REPORT / "report.tex").read_text()
GENERATED = REPORT / "generated"
SWEEP_CSV = ROOT / "part1" / "results" / "sweep_runs.csv"
PART2_RUN = ROOT / "part2" / "results" / "grimm"
PART3_RESULTS = ROOT / "part3" / "results"
QUESTIONS = ["1.1", "1.2", "1.3", "1.4", "1.5", "1.6", "1.7", "2.1", "2.2", "2.3",
             "3.1", "3.2", "3.3", "3.4"]
# Part 1's definitions (experiments/rules.py): a mastered length, the main pass's seeds. The numbers
# below are recomputed here on their own; only these two words are read from the code.
SOLVED = rules.SOLVED
MAIN_SEEDS = len(rules.MAIN_SEEDS)


def tex_body():
    """report.tex without comments (a % not preceded by a backslash starts one)."""
    return "\n".join(re.sub(r"(?<!\\)%.*", "", line) for line in TEX.splitlines())


def macros(path):
    """{name: value} of the \\newcommand{\\name}{value} lines of a generated file."""
    return dict(re.findall(r"\\newcommand\{\\(\w+)\}\{(.*)\}\s*$", path.read_text(), re.M))


def sweep_runs():
    """{(recipe, model): {T: [row per seed]}} of the runs at the normal budget, the check runs
    {(recipe, model, T): [row]}, and all rows, straight from the CSV."""
    with open(SWEEP_CSV, newline="") as f:
        rows = list(csv.DictReader(f))
    table, checks = defaultdict(lambda: defaultdict(list)), defaultdict(list)
    for r in rows:
        if r["check"] == "True":
            checks[r["recipe"], r["model"], int(r["palindrome_length"])].append(r)
        else:
            table[r["recipe"], r["model"]][int(r["palindrome_length"])].append(r)
    return table, checks, rows


def mean_accuracy(runs):
    return sum(float(r["eval_accuracy"]) for r in runs) / len(runs)


def solved_of(runs):
    return f"{sum(r['solved'] == 'True' for r in runs)}/{len(runs)}"


def longest_mastered(by_length):
    """The longest swept T with mean accuracy >= SOLVED over at least the main pass's seeds; None if none."""
    return max((T for T, runs in by_length.items() if len(runs) >= MAIN_SEEDS and mean_accuracy(runs) >= SOLVED),
               default=None)


def tabular_rows(path):
    """Data rows of a generated tabular (the lines between the second \\hline and the last), as cells."""
    lines = [line.strip() for line in path.read_text().splitlines()]
    hlines = [i for i, line in enumerate(lines) if line.startswith(r"\hline")]
    return [[c.strip() for c in line.rstrip("\\").rstrip().rstrip("\\").split("&")]
            for line in lines[hlines[1] + 1:hlines[-1]] if line]


@pytest.mark.parametrize("question", QUESTIONS)
def test_every_question_has_a_heading(question):
    pattern = r"\\(?:sub)*section\*?\{Question " + re.escape(question) + r"(?![\d.])"
    assert re.search(pattern, tex_body()), f"no heading 'Question {question}' in report/report.tex"


def test_questions_appear_in_order():
    positions = [re.search(r"\{Question " + re.escape(q) + r"(?![\d.])", tex_body()).start() for q in QUESTIONS]
    assert positions == sorted(positions)


def test_every_included_figure_exists():
    body = tex_body()
    targets = re.findall(r"\\includegraphics(?:\[[^\]]*\])?\{([^}#]+)\}", body)
    optional = set(re.findall(r"\\IfFileExists\{figures/([^}]+)\}", body))
    assert len(set(targets)) >= 6, "the report should show at least six figures from the project"
    for name in targets:
        path = REPORT / "figures" / name
        if name in optional and not PART2_RUN.joinpath("metrics.csv").exists():
            continue  # part 2's figure, guarded in the report until its run is committed
        assert path.is_file(), f"report.tex includes {name}, but report/figures/{name} does not exist"


def test_required_generated_snippets_exist():
    body = tex_body()
    inputs = set(re.findall(r"\\input\{generated/([^}]+)\}", body))
    optional = set(re.findall(r"\\IfFileExists\{generated/([^}]+)\}", body))
    optional |= {name for name in re.findall(r"\\optionalinput\{([^}]+)\}", body)}
    # \optionalinput's own definition inputs generated/#1: a parameter, not a file
    inputs, optional = ({name for name in names if "#" not in name} for names in (inputs, optional))
    required = inputs - optional
    for prefix in ("part1_", "part3_", "report_counts"):
        assert any(name.startswith(prefix) for name in required), f"the report inputs no {prefix}* snippet"
    for name in required:
        assert (GENERATED / name).is_file(), f"report.tex inputs generated/{name}, which does not exist"
    # guarded snippets are written by part2/experiments/report_outputs.py: once the run is committed they must be there
    if PART2_RUN.joinpath("checkpoint.pt").exists():
        for name in optional:
            assert (GENERATED / name).is_file(), f"generated/{name} is missing: run make -C report"


def test_macros_used_by_the_report_are_defined():
    """Every \\PartOne*/\\PartThree*/\\Report* macro the text uses is defined by a snippet it inputs."""
    defined = {}
    for path in GENERATED.glob("*.tex"):
        defined.update(macros(path))
    used = set(re.findall(r"\\((?:PartOne|PartThree|Report)\w+)", tex_body()))
    missing = sorted(name for name in used if name not in defined)
    assert not missing, f"undefined in report/generated/: {missing}"


@pytest.mark.parametrize("name", ["part1_accuracy_template.tex", "part1_accuracy_tuned.tex"])
def test_part1_accuracy_tables_match_csv(name):
    """Every cell: seeds solved and mean held-out accuracy of the runs at that length."""
    table, _, _ = sweep_runs()
    text = (GENERATED / name).read_text()
    header = [line for line in text.splitlines() if line.startswith("$T$")][0]
    pairs = [tuple(cell.strip().replace("\\_", "_").split()) for cell in header.rstrip("\\ ").split("&")[1:]]
    assert pairs and all(pair in table for pair in pairs), pairs
    rows = tabular_rows(GENERATED / name)
    assert [int(r[0]) for r in rows] == sorted({T for pair in pairs for T in table[pair]})
    for row in rows:
        T = int(row[0])
        for pair, cell in zip(pairs, row[1:], strict=True):
            runs = table[pair].get(T)
            assert cell == (f"{solved_of(runs)} ({mean_accuracy(runs):.3f})" if runs else ""), (pair, T)


def test_part1_horizons_match_csv():
    """Horizon, seeds solved there and at the next swept length, and the convergence check."""
    from part1.experiments.sweep import RECIPES

    table, checks, _ = sweep_runs()
    rows = tabular_rows(GENERATED / "part1_horizons.tex")
    assert {(r[0].replace("\\_", "_"), r[1]) for r in rows} == set(table)
    for recipe, model, h, at_h, past, at_past, check_solved, verdict in rows:
        by_length = table[recipe.replace("\\_", "_"), model]
        expected = longest_mastered(by_length)
        following = [T for T in RECIPES[recipe.replace("\\_", "_")][model]["lengths"] if expected is None or T > expected]
        # a lower bound while the next length has fewer than the main pass's seeds
        lower = expected is not None and following and len(by_length.get(following[0], [])) < MAIN_SEEDS
        assert h == ("$\\geq$" if lower else "") + (str(expected) if expected else "--")
        assert at_h == (solved_of(by_length[expected]) if expected else "")
        assert past == (str(following[0]) if following else "--")
        lengths = [T for T in following[:1] if T in by_length]
        assert at_past == (solved_of(by_length[lengths[0]]) if lengths else "not run" if following else "")
        # The check repeats the runs that failed at the next length with twice the budget.
        runs = by_length[lengths[0]] if lengths else []
        failed = {r["seed"] for r in runs if float(r["eval_accuracy"]) < SOLVED}
        redone = {r["seed"]: r for r in checks.get((recipe.replace("\\_", "_"), model, lengths[0] if lengths else 0), [])
                  if r["seed"] in failed}
        if not redone:
            assert (check_solved, verdict) == (("--", "pending") if failed else ("", ""))
            continue
        assert check_solved == solved_of(list(redone.values())) + (
            f" of {len(failed)}" if len(redone) < len(failed) else "")
        after = mean_accuracy([redone.get(r["seed"], r) for r in runs])
        assert verdict == ("pending" if len(redone) < len(failed) else "moves" if after >= SOLVED else "stands")


def test_part1_cells_quoted_in_the_text_match_csv():
    """Every \\solved, \\acc, \\stepsmedian and \\horizon the text uses names a cell of the sweep with the
    value the CSV gives (LaTeX stops on a missing one; this catches a stale one)."""
    import statistics as stats

    from part1.experiments.sweep import RECIPES

    table, checks, rows = sweep_runs()
    cells = dict(re.findall(r"\\csname (sweep/[^\\]+)\\endcsname\{(.*)\}\s*$",
                            (GENERATED / "part1_macros.tex").read_text(), re.M))
    used = re.findall(r"\\(solved|acc|stepsmedian|lost)\{([\w]+)\}\{(\w+)\}\{(\d+)\}", tex_body())
    used_horizons = re.findall(r"\\horizonT?\{(\w+)\}\{(\w+)\}", tex_body())
    assert used and used_horizons, "the text quotes no cell of the sweep"
    def run_key(r):  # a curve window or a run, to its run
        return tuple(r[k] for k in ("recipe", "model", "palindrome_length", "seed", "check"))

    first_good_window = {}  # the first window at length T with training accuracy >= 0.99, per run
    last_window = {}  # (step, training accuracy) of the last window, per run
    with open(SWEEP_CSV.with_name("sweep_curves.csv"), newline="") as f:
        for c in csv.DictReader(f):
            key = run_key(c)
            if c["length"] == c["palindrome_length"] and float(c["accuracy"]) >= SOLVED:
                first_good_window.setdefault(key, int(c["step"]))
            last_window[key] = max(last_window.get(key, (-1, 0.0)), (int(c["step"]), float(c["accuracy"])))

    def steps(r):  # a solved run's steps to its first good window, an unsolved run's steps trained
        return first_good_window.get(run_key(r), int(r["steps"])) if r["solved"] == "True" else int(r["steps"])

    for what, recipe, model, T in used:
        runs = table[recipe, model][int(T)]
        value = cells[f"sweep/{'steps' if what == 'stepsmedian' else what}/{recipe}/{model}/{T}/"[:-1]]
        won = [r for r in runs if float(r["eval_accuracy"]) >= SOLVED]
        expected = {"solved": solved_of(runs), "acc": f"{mean_accuracy(runs):.3f}",
                    "lost": f"{sum(last_window[run_key(r)][1] < SOLVED for r in won)} of {len(won)}",
                    "stepsmedian": f"{round(stats.median(steps(r) for r in runs)):,}".replace(",", "{,}")}[what]
        assert value == expected, (what, recipe, model, T)
    for what, recipe, model, T in re.findall(r"\\(checksolved|checksteps)\{(\w+)\}\{(\w+)\}\{(\d+)\}", tex_body()):
        failed = {r["seed"] for r in table[recipe, model][int(T)] if float(r["eval_accuracy"]) < SOLVED}
        runs = sorted((r for r in checks[recipe, model, int(T)] if r["seed"] in failed), key=lambda r: int(r["seed"]))
        expected = solved_of(runs) if what == "checksolved" else ", ".join(
            f"seed {r['seed']} {'solved' if r['solved'] == 'True' else 'stopped'} after "
            + f"{steps(r):,}".replace(",", "{,}") + " steps" for r in runs)
        assert cells[f"sweep/{what}/{recipe}/{model}/{T}"] == expected, (what, recipe, model, T)
    for recipe, model in used_horizons:
        expected = longest_mastered(table[recipe, model])
        assert cells[f"sweep/horizon/{recipe}/{model}/"] == str(expected or "none"), (recipe, model)
        following = [T for T in RECIPES[recipe][model]["lengths"] if expected is None or T > expected]
        lower = expected is not None and following and len(table[recipe, model].get(following[0], [])) < MAIN_SEEDS
        assert cells[f"sweep/horizonrel/{recipe}/{model}/"] == ("\\geq" if lower else "="), (recipe, model)
    defined = macros(GENERATED / "part1_macros.tex")
    assert defined["PartOneRuns"] == f"{len(rows):,}".replace(",", "{,}")


def test_single_runs_quoted_in_the_text_match_csv():
    """Every \\run{...}{field} and \\checkrun{...}{field} the text uses is defined with the CSV's value,
    and every \\minafter{recipe/model/T} is the lowest window accuracy after the first at 0.99, rounded down."""
    import math

    _, _, rows = sweep_runs()
    defined = dict(re.findall(r"\\csname ([^\\]+)\\endcsname\{(.*)\}\s*$", (GENERATED / "report_counts.tex").read_text(), re.M))
    by_key = {(("checkrun" if r["check"] == "True" else "run"), r["recipe"], r["model"], r["palindrome_length"],
               r["seed"]): r for r in rows}
    used = re.findall(r"\\(run|checkrun)\{(\w+)/(\w+)/(\d+)/(\d+)\}\{(\w+)\}", tex_body())
    assert used, "the text quotes no single run"
    for kind, recipe, model, T, seed, field in used:
        r = by_key[kind, recipe, model, T, seed]
        expected = {"scored": thousands(int(r["scored_step"])), "steps": thousands(int(r["steps"])),
                    "length": r["final_length"], "acc": f"{float(r['eval_accuracy']):.3f}",
                    "last": f"{float(r['train_accuracy']):.2f}"}[field]
        assert defined[f"{kind}/{recipe}/{model}/{T}/{seed}/{field}"] == expected, (kind, recipe, model, T, seed, field)
    lowest, reached = {}, set()
    with open(SWEEP_CSV.with_name("sweep_curves.csv"), newline="") as f:
        for c in csv.DictReader(f):
            run = (c["recipe"], c["model"], c["palindrome_length"], c["seed"])
            if c["check"] == "True" or c["length"] != c["palindrome_length"]:
                continue
            if float(c["accuracy"]) >= SOLVED:
                reached.add(run)
            if run in reached:
                lowest[run[:3]] = min(lowest.get(run[:3], 1.0), float(c["accuracy"]))
    used = re.findall(r"\\minafter\{(\w+)/(\w+)/(\d+)\}", tex_body())
    assert used
    for key in used:
        assert defined["minafter/" + "/".join(key)] == f"{math.floor(100 * lowest[key]) / 100:.2f}", key


def test_gradient_macros_match_grads_over_time_csv():
    """The decay per step and the gradient at t = 1 and at the last step of every model the text quotes,
    the tuned initialisations included, from part1/results/grads_over_time.csv."""
    from report.make_tables import GRAD_MODELS, sci

    with open(ROOT / "part1" / "results" / "grads_over_time.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    defined = macros(GENERATED / "report_counts.tex")
    used = set(re.findall(r"\\ReportGrad(Untrained|Trained)(\w+?)(First|Last|Decay|Ratio|Min|MinAt)\b", tex_body()))
    assert {short for _, short, _ in used} >= {"Rnn", "Lstm", "RnnIdentity", "LstmChrono"}
    names = {short: model for model, short in GRAD_MODELS.items()}
    for tag, short, what in used:
        points = sorted((int(r["t"]), float(r["grad_norm"])) for r in rows
                        if r["model"] == names[short] and r["trained"] == str(tag == "Trained"))
        (t1, g1), (t2, g2) = points[0], points[-1]
        t_min, g_min = min(points, key=lambda p: p[1])
        expected = {"First": sci(g1), "Last": sci(g2), "Ratio": sci(g1 / g2), "Min": sci(g_min), "MinAt": str(t_min),
                    "Decay": f"{(g1 / g2) ** (1 / (t2 - t1)):.2f}"}[what]
        assert defined[f"ReportGrad{tag}{short}{what}"] == expected, (tag, short, what)
    # the tuned initialisations pass far more of the message back to t = 1 than the template's
    first = {(r["model"], r["trained"]): float(r["grad_norm"]) for r in rows if r["t"] == "1"}
    assert first["RNN W_hh=I", "False"] > 1e6 * first["RNN", "False"]
    assert first["LSTM chrono", "False"] > 1e6 * first["LSTM", "False"]


def test_report_counts_match_a_fresh_lstm():
    from part1.lstm import LSTM

    defined = macros(GENERATED / "report_counts.tex")
    d, n, k = (int(defined[f"ReportLstm{x}"]) for x in "DNK")
    model = LSTM(10, d, n, k)
    total = sum(p.numel() for p in model.parameters())
    cell = total - model.W_ph.numel() - model.b_p.numel()
    assert int(defined["ReportLstmTotalParamsRaw"]) == total
    assert int(defined["ReportLstmCellParamsRaw"]) == cell == 4 * (n * d + n * n + n)
    assert defined["ReportLstmTotalParams"].replace("\\,", "") == str(total)


# ----- part 2: the committed run in part2/results/grimm -----

needs_part2_run = pytest.mark.skipif(not (PART2_RUN / "checkpoint.pt").is_file(),
                                     reason="no committed part-2 run")
UNTEX = {r"\textbackslash{}": "\\", r"\{": "{", r"\}": "}", r"\$": "$", r"\&": "&", r"\#": "#",
         r"\%": "%", r"\_": "_", r"\textasciicircum{}": "^", r"\textasciitilde{}": "~"}


def untex(cell):
    r"""The sample a \texttt{...} cell quotes: TeX escapes undone, then \n and \" as JSON reads them."""
    text = re.fullmatch(r"\\texttt\{(.*)\}", cell, re.S)[1]
    text = re.sub("|".join(map(re.escape, UNTEX)), lambda m: UNTEX[m[0]], text)
    return json.loads(f'"{text}"')


def thousands(n):
    return f"{n:,}".replace(",", "\\,")


def samples_by_step():
    """{step: [(kind, text), ...]} read from samples.txt."""
    samples, step = {}, None
    for line in (PART2_RUN / "samples.txt").read_text(encoding="utf-8").splitlines():
        if line.startswith("step "):
            step = int(line.split()[1])
            samples[step] = []
        elif line.strip():
            kind, quoted = line.split(None, 1)
            samples[step].append((kind, json.loads(quoted)))
    return samples


def table_cells(name):
    """The data rows (between \\midrule or \\toprule and \\bottomrule) of a booktabs table, as cells."""
    body = (GENERATED / name).read_text(encoding="utf-8").split("\\midrule", 1)[1]
    body = body.split("\\bottomrule")[0].replace("\\midrule", "")
    return [[c.strip() for c in row.split(" & ")] for row in body.split("\\\\") if row.strip()]


@needs_part2_run
def test_part2_macros_match_the_committed_run():
    with open(PART2_RUN / "metrics.csv", newline="") as f:
        final = [r for r in csv.DictReader(f) if r["val_loss"]][-1]
    weights = torch.load(PART2_RUN / "checkpoint.pt", weights_only=True)["model"]
    n_params = sum(w.numel() for w in {w.data_ptr(): w for w in weights.values()}.values())
    defined = macros(GENERATED / "part2_results.tex")
    assert defined["PartTwoValLoss"] == f"{float(final['val_loss']):.3f}"
    assert defined["PartTwoValAccuracy"] == f"{100 * float(final['val_accuracy']):.1f}"
    assert defined["PartTwoSteps"] == thousands(int(final["step"]))
    assert defined["PartTwoMinutes"] == f"{float(final['seconds']) / 60:.0f}"
    assert defined["PartTwoParams"] == thousands(n_params)
    assert defined["PartTwoLastSampleStep"] == thousands(max(samples_by_step()))


@needs_part2_run
def test_part2_hyperparameter_table_matches_the_checkpoint():
    ckpt = torch.load(PART2_RUN / "checkpoint.pt", weights_only=True)
    options = ckpt["options"]
    cells = table_cells("part2_hyperparameters.tex")  # hyperparameter & value & why
    assert all(len(row) == 3 and row[2] for row in cells), "every hyperparameter has its reason"
    rows = {name: value for name, value, _ in cells}
    why = {name: reason for name, _, reason in cells}
    assert rows["sequence length $T$"] == str(options["seq_length"])
    assert rows["layers $\\times$ units"] == \
        f"{options['lstm_num_layers']} $\\times$ {options['lstm_num_hidden']}"
    assert rows["batch size"] == str(options["batch_size"])
    assert rows["training steps"] == str(ckpt["step"])
    assert rows["arithmetic, seed"].endswith(f", {options['seed']}")
    assert rows["parameters"] == macros(GENERATED / "part2_results.tex")["PartTwoParams"]
    # one schedule: the template's step decay times the linear decay to 0 at the last step
    assert rows["learning rate at step $s$"] == (
        f"${options['learning_rate']:g}\\cdot{options['learning_rate_decay']:g}^{{\\lfloor s/"
        f"{options['learning_rate_step']}\\rfloor}}(1-\\frac{{s}}{{{ckpt['step']}}})$")
    # the reasons quote the fixed-step ablation: mean final validation loss of each group of runs
    ablation = defaultdict(list)
    for path in (ROOT / "part2" / "results" / "benchmark" / "fixed_1800").glob("*/metrics.csv"):
        with open(path, newline="") as f:
            final = [r for r in csv.DictReader(f) if r["val_loss"]][-1]
        ablation[re.sub(r"_s\d+$", "", path.parent.name)].append(float(final["val_loss"]))
    loss = {name: f"{statistics.mean(values):.3f}" for name, values in ablation.items()}
    assert f"{loss['default']} against {loss['lr4e-3']} with 4e-3" in why["learning rate at step $s$"]
    assert f"without the linear decay to 0, {loss['no_linear']}" in why["learning rate at step $s$"]
    assert f"{loss['default']} against {loss['no_unigram']} when random" in why["read-out bias at start"]


@needs_part2_run
def test_part2_sample_tables_quote_samples_txt():
    samples = samples_by_step()
    step = None
    quoted = defaultdict(list)
    for cells in table_cells("part2_samples.tex"):
        step = int(cells[0]) if cells[0] else step
        quoted[step] += [untex(cell) for cell in cells[1:] if cell]
    assert len(quoted) >= 3 and min(quoted) == min(samples) and max(quoted) == max(samples)
    for step, texts in quoted.items():
        assert texts == [text for kind, text in samples[step] if kind == "greedy"], step
    long_rows = table_cells("part2_long_samples.tex")
    assert long_rows and all(
        untex(cell) in [text for kind, text in samples[int(step)] if kind == "greedy_long"]
        for step, _, _, cell in long_rows)
    last = max(samples)
    assert [(tau, untex(cell)) for tau, cell in table_cells("part2_temperature.tex")] == \
        [(f"$\\tau={kind[4:]}$", text) for kind, text in samples[last] if kind.startswith("tau=")]


@needs_part2_run
def test_part2_completions_are_decoded_again_from_the_checkpoint():
    from part2.experiments.report_outputs import PROMPTS
    from part2.generate import beam_search, decode, encode, generate, load_checkpoint, log_prob

    model, vocab, _ = load_checkpoint(PART2_RUN / "checkpoint.pt")
    rows = table_cells("part2_completions.tex")  # per prompt: its row, then one row per decoding
    assert rows[0][0] == "prompt" and rows[1][0].startswith("greedy (")
    assert macros(GENERATED / "part2_results.tex")["PartTwoPrompts"] == str(len(PROMPTS))
    assert [untex(cell) for label, cell in rows if label == "prompt"] == list(PROMPTS)
    for label, cell in rows:
        if label == "prompt":
            prompt_text = untex(cell)
            prompt = torch.tensor(encode(vocab, prompt_text))
            continue
        method, score = re.fullmatch(r"(.*) \((-?[\d.]+)\)", label).groups()
        text = prompt_text + untex(cell)
        length = len(text) - len(prompt_text)
        if method == "greedy":
            ids = generate(model, prompt[None], length)[0]
            expected = log_prob(model, prompt, ids)
        else:
            ids, expected = beam_search(model, prompt, length, int(re.fullmatch(r"beam, \$B=(\d+)\$", method)[1]))
        assert prompt_text + decode(vocab, ids.tolist()) == text, method
        assert float(score) == pytest.approx(expected, abs=0.006), method


# ----- part 3: part3/results/*.json -----

def part3_results(name):
    return json.loads((PART3_RESULTS / name).read_text())


def test_part3_figure2_results_are_what_the_code_computes_and_the_snippet_shows():
    from part3 import figure2

    res = part3_results("figure2.json")
    assert res == json.loads(json.dumps(figure2.run()))  # nothing random: recomputed exactly
    defined = macros(GENERATED / "part3_figure2.tex")

    def matrix(name):
        body = re.search(r"\\begin\{array\}\{c+\}(.*)\\end\{array\}", defined[name])[1]
        return [row.split(" & ") for row in body.split(" \\\\ ")]
    assert matrix("PartThreeAtilde") == [[str(x).strip() for x in row] for row in res["adj_tilde"]]
    assert matrix("PartThreeAhat") == [[f"{x:.2f}" for x in row] for row in res["adj_hat"]]
    assert defined["PartThreeCtoEUpdates"] == str(res["updates_by_propagation"]) == \
        str(res["updates_by_shortest_path"])
    assert defined["PartThreeCtoEPath"] == "--".join(res["shortest_path"])


def test_part3_karate_macros_match_the_results():
    res = part3_results("karate.json")
    accs, defined = res["accuracies"], macros(GENERATED / "part3_karate.tex")
    mean, sd = statistics.mean(accs), statistics.stdev(accs)  # the sample sd, as every table of the report
    assert defined["PartThreeKarateAccuracyMean"] == f"{mean:.3f}"
    assert defined["PartThreeKarateAccuracyStd"] == f"{sd:.3f}"
    assert defined["PartThreeKarateAccuracy"] == f"\\ensuremath{{{mean:.3f} \\pm {sd:.3f}}}"
    assert defined["PartThreeKarateSeeds"] == str(len(accs)) == str(len(res["config"]["seeds"]))
    assert defined["PartThreeKarateEpochs"] == str(res["config"]["epochs"])
    assert defined["PartThreeKarateUnlabelled"] == str(len(res["labels"]) - len(res["config"]["labelled"]))


def test_part3_karate_spread_is_the_sample_sd(tmp_path):
    """On seeds where the two differ at three decimals: karate.json and its table give the sample sd
    (n - 1), as every other table does, not the population one."""
    from part3 import train
    from part3.experiments.report_outputs import write_karate_tex

    res = train.run(range(3), hidden=4, epochs=5, lr=0.01, weight_decay=5e-4, dropout=0.5)
    accs = res["accuracies"]
    assert f"{statistics.stdev(accs):.3f}" != f"{statistics.pstdev(accs):.3f}"
    assert res["accuracy_std"] == pytest.approx(statistics.stdev(accs))
    results = tmp_path / "karate.json"
    results.write_text(json.dumps(res))
    assert macros(write_karate_tex(results, tmp_path))["PartThreeKarateAccuracyStd"] == \
        f"{statistics.stdev(accs):.3f}"


NUMBER = r"(-?\d+(?:\.(\d+))?)(?:\{\\cdot\}10\^\{(-?\d+)\})?"


def printed(text):
    """[(value, half a unit of its last printed digit)] of every number in a generated cell."""
    return [(float(m[1]) * 10 ** int(m[3] or 0), 0.5 * 10 ** (-len(m[2] or "") + int(m[3] or 0)))
            for m in re.finditer(NUMBER, text)]


def assert_printed(text, value, what):
    (shown, half_unit), *_ = printed(text)
    assert abs(shown - value) <= half_unit * 1.001, (what, text, value)


def energy_cell_matches(cell, per_seed, what):
    """A mean over the seeds where H != 0, or H=0 where there is none; (n) where not all."""
    alive = [v for v in per_seed if v is not None]
    if not alive:
        assert cell == "$H=0$", what
        return
    assert_printed(cell, statistics.mean(alive), what)
    assert (f"^{{({len(alive)})}}" in cell) == (len(alive) < len(per_seed)), what


def accuracy_cell_matches(cell, per_seed, what):
    (mean, half), (sd, _) = printed(cell)
    assert abs(mean - 100 * statistics.mean(per_seed)) <= half * 1.001, (what, cell)
    assert abs(sd - 100 * statistics.stdev(per_seed)) <= half * 1.001, (what, cell)  # n - 1


def test_part3_oversmoothing_table_matches_the_results():
    res = part3_results("oversmoothing.json")
    text = (GENERATED / "part3_oversmoothing_table.tex").read_text()
    table = text[text.index(r"\toprule"):text.index(r"\bottomrule")]
    header, *blocks = table.split(r"\midrule")
    assert [int(d) for d in header.split(r"\\")[0].split("&")[1:]] == res["depths"]
    rows = [[[c.strip() for c in line.rstrip(r"\ ").split("&")]
             for line in block.strip().splitlines()[1:]] for block in blocks]
    variants = ["plain", "plain_no_decay", "linear_no_decay", "residual", "initial"]
    energy, dead, accuracy = rows
    assert [r[0] for r in energy] == [r"$\hat A^{L-1}X$", "plain", "plain, no decay",
                                      "linear, no decay", "residual", "GCNII"]
    for i, cell in enumerate(energy[0][1:]):
        assert_printed(cell, res["propagation_only"][i], "propagation only")
    for row, variant in zip(energy[1:], variants, strict=True):
        for i, cell in enumerate(row[1:]):
            per_seed = res[variant]["trained"]["energy"]["per_seed"][i]
            assert len(per_seed) == len(res["seeds"])
            energy_cell_matches(cell, per_seed, (variant, res["depths"][i]))
    for row, (variant, stage) in zip(dead, [("plain", "init"), ("plain", "trained"),
                                            ("plain_no_decay", "trained")], strict=True):
        for i, cell in enumerate(row[1:]):
            assert_printed(cell, statistics.mean(res[variant][stage]["dead"]["per_seed"][i]),
                           (variant, stage))
    for row, variant in zip(accuracy, variants, strict=True):
        for i, cell in enumerate(row[1:]):
            accuracy_cell_matches(cell, res[variant]["trained"]["accuracy"]["per_seed"][i],
                                  (variant, res["depths"][i]))


def test_part3_oversmoothing_macros_match_the_results():
    res = part3_results("oversmoothing.json")
    defined = macros(GENERATED / "part3_oversmoothing.tex")
    assert defined["PartThreeOSSeeds"] == str(len(res["seeds"]))
    assert defined["PartThreeOSEpochs"] == str(res["config"]["epochs"])
    assert_printed(defined["PartThreeOSLambdaTwo"], res["lambda_2"], "lambda_2")
    assert float(defined["PartThreeOSAlpha"]) == res["config"]["gcnii_alpha"]
    assert float(defined["PartThreeOSLambda"]) == res["config"]["gcnii_lambda"]
    mantissa, exponent = re.fullmatch(r"\$([\d.]+)\{\\cdot\}10\^\{(-?\d+)\}\$",
                                      defined["PartThreeOSWeightDecay"]).groups()
    assert float(mantissa) * 10 ** int(exponent) == pytest.approx(res["config"]["weight_decay"])
    words = {2: "Two", 4: "Four", 8: "Eight", 16: "Sixteen", 32: "ThirtyTwo", 64: "SixtyFour"}
    names = {"plain": "Plain", "plain_no_decay": "PlainNoDecay", "linear_no_decay": "Linear",
             "residual": "Residual", "initial": "Initial"}
    checked = 0
    for i, depth in enumerate(res["depths"]):
        word = words[depth]
        assert_printed(defined["PartThreeOSProp" + word], res["propagation_only"][i], depth)
        for variant, name in names.items():
            init, trained = res[variant]["init"], res[variant]["trained"]
            what = (variant, depth)
            energy_cell_matches(defined[f"PartThreeOS{name}EnergyInit{word}"],
                                init["energy"]["per_seed"][i], what)
            energy_cell_matches(defined[f"PartThreeOS{name}Energy{word}"],
                                trained["energy"]["per_seed"][i], what)
            accuracy_cell_matches(defined[f"PartThreeOS{name}Acc{word}"],
                                  trained["accuracy"]["per_seed"][i], what)
            for short, stats in (("DeadInit", init["dead"]), ("Dead", trained["dead"])):
                assert_printed(defined[f"PartThreeOS{name}{short}{word}"],
                               statistics.mean(stats["per_seed"][i]), what)
            for short, stats in (("LengthInit", init["length"]), ("Length", trained["length"])):
                length = statistics.mean(stats["per_seed"][i])
                shown = defined[f"PartThreeOS{name}{short}{word}"]
                if length == 0:
                    assert shown == "$0$", what
                else:  # the power of ten at or below the mean length
                    exponent = int(re.fullmatch(r"\$10\^\{(-?\d+)\}\$", shown)[1])
                    assert 10 ** exponent <= length * (1 + 1e-9) < 10 ** (exponent + 1), what
            checked += 1
    assert checked == len(res["depths"]) * len(names)


def test_part3_oversmoothing_double_budget_macros_match_its_results():
    """The budget check (twice the Adam steps) quoted in the report, from its own results."""
    res = part3_results("double_budget/oversmoothing.json")
    main = part3_results("oversmoothing.json")
    defined = macros(GENERATED / "part3_oversmoothing.tex")
    assert int(defined["PartThreeOSLongerEpochs"]) == res["config"]["epochs"] == 2 * main["config"]["epochs"]
    assert {k: v for k, v in res["config"].items() if k != "epochs"} == \
        {k: v for k, v in main["config"].items() if k != "epochs"}
    words = {16: "Sixteen", 32: "ThirtyTwo", 64: "SixtyFour"}
    names = {"plain": "Plain", "plain_no_decay": "PlainNoDecay", "linear_no_decay": "Linear",
             "residual": "Residual", "initial": "Initial"}
    for i, depth in enumerate(res["depths"]):
        for variant, name in names.items():
            trained = res[variant]["trained"]
            accuracy_cell_matches(defined[f"PartThreeOSLonger{name}Acc{words[depth]}"],
                                  trained["accuracy"]["per_seed"][i], (variant, depth))
            alive = sum(e is not None for e in trained["energy"]["per_seed"][i])
            assert defined[f"PartThreeOSLonger{name}Alive{words[depth]}"] == str(alive)


def test_part3_oversmoothing_dead_and_alive_are_consistent():
    """Energy is left out exactly where H is zero: every unit dead, length 0."""
    for res in (part3_results("oversmoothing.json"), part3_results("double_budget/oversmoothing.json")):
        for variant, stage in itertools.product(
                ("plain", "plain_no_decay", "linear_no_decay", "residual", "initial"), ("init", "trained")):
            stats = res[variant][stage]
            for energies, dead, lengths in zip(stats["energy"]["per_seed"], stats["dead"]["per_seed"],
                                               stats["length"]["per_seed"], strict=True):
                for e, d, n in zip(energies, dead, lengths, strict=True):
                    assert (e is None) == (d == 1.0) == (n == 0.0), (variant, stage)


# ----- the report as printed: figure text size, references, page limit -----

STYLE = (REPORT / "neurips_lookalike.sty").read_text()  # the page layout (geometry's options)
TEXT_WIDTH_IN = float(re.search(r"textwidth=([\d.]+)in", STYLE)[1])
TEXT_HEIGHT_IN = float(re.search(r"textheight=([\d.]+)in", STYLE)[1])
INCLUDED = re.findall(r"\\includegraphics(?:\[([^\]]*)\])?\{([^}#]+)\}", tex_body())
INCHES = {"in": 1.0, "cm": 1 / 2.54, "mm": 1 / 25.4, "pt": 1 / 72.27,
          r"\linewidth": TEXT_WIDTH_IN, r"\textwidth": TEXT_WIDTH_IN, r"\textheight": TEXT_HEIGHT_IN}


def length_in(value):
    """A LaTeX length such as 0.8\\linewidth, 4.2cm or \\textwidth, in inches."""
    number, unit = re.fullmatch(r"\s*([\d.]*)\s*(\\?[a-z]+)\s*", value).groups()
    return float(number or 1) * INCHES[unit]


def printed_width_in(options, aspect):
    """The width (inches) at which \\includegraphics[options] prints an image of width/height `aspect`."""
    keys = dict(option.split("=", 1) if "=" in option else (option.strip(), "")
                for option in options.split(",") if option.strip())
    keys = {k.strip(): v for k, v in keys.items()}
    width = length_in(keys["width"]) if "width" in keys else None
    height = length_in(keys["height"]) if "height" in keys else None
    if width is not None and height is not None:
        assert "keepaspectratio" in keys, "width and height without keepaspectratio distort the figure"
        return min(width, height * aspect)
    if width is not None:
        return width
    if height is not None:
        return height * aspect
    return None  # natural size


def test_the_printed_width_of_an_included_figure():
    assert printed_width_in(r"width=0.5\linewidth", 2) == pytest.approx(0.5 * TEXT_WIDTH_IN)
    assert printed_width_in("height=2.54cm", 3) == pytest.approx(3)
    assert printed_width_in(r"width=\linewidth,height=0.1\textheight,keepaspectratio", 2) == \
        pytest.approx(min(TEXT_WIDTH_IN, 0.2 * TEXT_HEIGHT_IN))


@pytest.mark.parametrize("options, name", INCLUDED, ids=[name for _, name in INCLUDED])
def test_every_figure_prints_its_text_at_8_pt_or_more(options, name):
    """Text drawn at s pt in a figure w inches wide prints at s * (printed width) / w: the smallest
    text of every figure (stored by report.figure_text.save) must print at 8 pt or more."""
    from PIL import Image

    from report.figure_text import SMALLEST_FONT

    path = REPORT / "figures" / name
    if not path.is_file() and not PART2_RUN.joinpath("metrics.csv").exists():
        pytest.skip("part 2's figure, guarded in the report until its run is committed")
    with Image.open(path) as png:
        (pixels_wide, pixels_high), info = png.size, png.info
    assert SMALLEST_FONT in info, f"{name} was not saved with report.figure_text.save"
    drawn_width = pixels_wide / round(info["dpi"][0])  # PNG stores dots per metre as an integer: 199.9996 for 200
    printed_width = printed_width_in(options or "", pixels_wide / pixels_high) or drawn_width
    smallest = float(info[SMALLEST_FONT])
    assert smallest * printed_width / drawn_width >= 8, \
        (f"{name}: {smallest} pt text drawn {drawn_width:.2f} in wide prints at "
         f"{smallest * printed_width / drawn_width:.1f} pt at {printed_width:.2f} in")


def long_sample_loop(text):
    """Brute force: (characters before, period) of the loop that starts earliest (shortest period
    first) and repeats with that period, over at least two periods, to the end of `text`."""
    for start in range(len(text)):
        for period in range(1, (len(text) - start) // 2 + 1):
            if all(text[i] == text[i + period] for i in range(start, len(text) - period)):
                return start, period
    return None


@needs_part2_run
def test_part2_long_samples_show_the_loop_each_ends_in():
    rows = table_cells("part2_long_samples.tex")
    assert rows
    for step, before, period, cell in rows:
        loop = long_sample_loop(untex(cell))
        assert (before, period) == (("--", "--") if loop is None else tuple(map(str, loop))), step


@needs_part2_run
def test_part2_long_sample_loop_count_matches_samples_txt():
    """\\PartTwoLongLooping of \\PartTwoLongStages: the stages whose 200-character greedy sample ends in a loop."""
    long_samples = [text for step, items in sorted(samples_by_step().items()) for kind, text in items
                    if kind == "greedy_long"]
    defined = macros(GENERATED / "part2_results.tex")
    assert defined["PartTwoLongStages"] == str(len(long_samples))
    assert defined["PartTwoLongLooping"] == str(sum(long_sample_loop(text) is not None for text in long_samples))
    assert int(defined["PartTwoLongLooping"]) < len(long_samples), "the text says some stages do not loop"


@needs_part2_run
def test_part2_quotes_in_the_text_are_in_the_tables_and_beams_do_better():
    """Every ``quote'' in the text of Part 2 is in one of its generated tables (samples are quoted
    as the model wrote them), and the log-probability rises with the beam width, as the text says."""
    part2 = tex_body().split(r"\section{Recurrent nets")[1].split(r"\section{Graph neural")[0]
    tables = "".join(untex(cell) for name in ("part2_samples.tex", "part2_long_samples.tex",
                                              "part2_temperature.tex", "part2_completions.tex")
                     for row in table_cells(name) for cell in row if cell.startswith(r"\texttt{"))
    quotes = [q.replace(r"\,", "").replace("`", "‘").strip()
              for q in re.findall(r"``(.*?)''", part2, re.S) if "\\Part" not in q]
    assert len(quotes) >= 10
    for quote in quotes:
        assert " ".join(quote.split()) in tables, quote
    # per prompt (blocks between \midrule): greedy lowest; how often wider beams kept rising, as the text says
    body = (GENERATED / "part2_completions.tex").read_text(encoding="utf-8").split("\\midrule", 1)[1]
    blocks = [[float(re.search(r"\((-?[\d.]+)\) &", row)[1]) for row in block.split("\\\\") if ") & " in row]
              for block in body.split("\\bottomrule")[0].split("\\midrule")]
    assert len(blocks) >= 3 and all(scores[0] == min(scores) for scores in blocks), "greedy is the least likely"
    rising = sum(scores == sorted(scores) for scores in blocks)
    assert macros(GENERATED / "part2_results.tex")["PartTwoBeamRising"] == str(rising)


# One build of the report in a scratch folder, for the checks that need LaTeX (skipped without it).
needs_latex = pytest.mark.skipif(not (shutil.which("latexmk") and shutil.which("pdftotext")),
                                 reason="latexmk and pdftotext are not installed")


@pytest.fixture(scope="module")
def built_report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    for item in ("report.tex", "neurips_lookalike.sty", "generated", "figures"):
        source = REPORT / item
        (shutil.copytree if source.is_dir() else shutil.copy)(source, folder / item)
    done = subprocess.run(["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", "report.tex"],
                          cwd=folder, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:]
    return folder


@needs_latex
@pytest.mark.timeout(600)
def test_every_reference_and_citation_resolves(built_report):
    log = (built_report / "report.log").read_text(errors="replace")
    undefined = re.findall(r"(?:Reference|Citation) `[^']*' on page \d+ undefined", log)
    assert not undefined and "There were undefined" not in log, undefined
    text = subprocess.run(["pdftotext", str(built_report / "report.pdf"), "-"], capture_output=True,
                          text=True, check=True).stdout
    assert "??" not in text, "an unresolved \\ref or \\cite prints ??"


@needs_latex
@pytest.mark.timeout(600)
def test_the_main_text_is_at_most_10_pages(built_report):
    aux = (built_report / "report.aux").read_text()
    page = int(re.search(r"\\newlabel\{main-end\}\{\{[^}]*\}\{(\d+)\}", aux)[1])
    assert page <= 10, f"the main text ends on page {page}: move what is extra to the appendix"


def floats_by_question():
    """{label: question} of every figure and table of the main text, by the heading it follows in report.tex."""
    body = tex_body().split(r"\label{main-end}")[0]
    found, question = {}, None
    for m in re.finditer(r"\\subsection\*\{Question (\d\.\d)|\\begin\{(?:figure|table)\}(.*?)\\end\{(?:figure|table)\}",
                         body, re.S):
        if m[1]:
            question = m[1]
        else:
            found[re.search(r"\\label\{([^}]+)\}", m[2])[1]] = question
    return found


@needs_latex
@pytest.mark.timeout(600)
def test_every_float_is_printed_within_its_question(built_report):
    """A figure or table written under Question X.Y prints after that heading and before the next."""
    aux = (built_report / "report.aux").read_text()
    text = subprocess.run(["pdftotext", str(built_report / "report.pdf"), "-"], capture_output=True,
                          text=True, check=True).stdout
    line_start = r"(?<![^\n\f])"  # a line's or a page's first character
    headings = [(m.start(), m[1]) for m in re.finditer(line_start + r"Question (\d\.\d)\b", text)]
    headings.append((re.search(line_start + r"References\n", text).start(), None))
    floats = floats_by_question()
    assert len(floats) >= 5
    for label, question in floats.items():
        number, kind = re.search(r"\\newlabel\{" + re.escape(label) + r"\}\{\{(\w+)\}\{\d+\}\{.*\}\{(figure|table)\.",
                                 aux).groups()
        caption = re.search(line_start + rf"{kind.capitalize()} {number}:", text)
        assert caption, f"no caption of {label} in the PDF"
        printed_under = max((h for h in headings if h[0] < caption.start()), default=(0, None))[1]
        assert printed_under == question, f"{label} is written in Question {question}, printed in {printed_under}"
