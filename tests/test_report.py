"""The report: every question answered under its heading, every figure and snippet it uses present,
and the generated numbers in agreement with the results they come from. Needs no LaTeX.

The part-1 checks recompute the tables from part1/results/accuracy_vs_length.csv here, on their
own, rather than with part1/plot.py's helpers: a failure means the snippets are older than the
CSV (run `python part1/plot.py`, or `make -C report`).
"""
import csv
import re
import statistics
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "report"
TEX = (REPORT / "report.tex").read_text()
GENERATED = REPORT / "generated"
ACCURACY_CSV = ROOT / "part1" / "results" / "accuracy_vs_length.csv"
PART2_RUN = ROOT / "part2" / "results" / "grimm"
QUESTIONS = ["1.1", "1.2", "1.3", "1.4", "1.5", "1.6", "1.7", "2.1", "2.2", "2.3",
             "3.1", "3.2", "3.3", "3.4"]
SOLVED = 0.99  # the report's definition of a mastered length (mean held-out accuracy over seeds)


def tex_body():
    """report.tex without comments (a % not preceded by a backslash starts one)."""
    return "\n".join(re.sub(r"(?<!\\)%.*", "", line) for line in TEX.splitlines())


def macros(path):
    """{name: value} of the \\newcommand{\\name}{value} lines of a generated file."""
    return dict(re.findall(r"\\newcommand\{\\(\w+)\}\{(.*)\}\s*$", path.read_text(), re.M))


def accuracies():
    """{(recipe, model): {T: [held-out accuracy per seed]}} straight from the CSV."""
    table = defaultdict(lambda: defaultdict(list))
    with open(ACCURACY_CSV, newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        table[r["recipe"], r["model"]][int(r["palindrome_length"])].append(float(r["eval_accuracy"]))
    return table, rows


def longest_mastered(by_length):
    """The longest swept T with mean accuracy >= SOLVED; None if there is none."""
    return max((T for T, accs in by_length.items() if sum(accs) / len(accs) >= SOLVED), default=None)


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
    # guarded snippets are written by part2/report.py: once the run is committed they must be there
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


def test_part1_accuracy_table_matches_csv():
    table, _ = accuracies()
    lines = (GENERATED / "part1_accuracy_table.tex").read_text()
    recipes = re.findall(r"\\multicolumn\{2\}\{c\}\{(\w+)\}", lines)
    assert recipes, "no recipes in part1_accuracy_table.tex"
    assert set(recipes) == {recipe for recipe, _ in table}, "the table's recipes differ from the CSV's"
    rows = tabular_rows(GENERATED / "part1_accuracy_table.tex")
    lengths = sorted({T for key in table for T in table[key]})
    assert [int(r[0]) for r in rows] == lengths
    for row in rows:
        T = int(row[0])
        cells = row[1:]
        assert len(cells) == 2 * len(recipes)
        for k, cell in enumerate(cells):
            accs = table.get((recipes[k // 2], ("RNN", "LSTM")[k % 2]), {}).get(T)
            if not accs:
                assert cell == "", f"T={T}: {cell!r} in the table but no runs in the CSV"
                continue
            match = re.fullmatch(r"([\d.]+)(?: \$\\pm\$ ([\d.]+))?", cell)
            assert match, f"T={T}: cannot read cell {cell!r}"
            assert abs(float(match[1]) - statistics.mean(accs)) <= 0.0005 + 1e-9, f"T={T}: mean of {accs}"
            sd = statistics.pstdev(accs)
            if match[2] is None:
                assert sd < 0.0005 + 1e-9
            else:
                assert abs(float(match[2]) - sd) <= 0.0005 + 1e-9, f"T={T}: spread of {accs}"


def test_part1_horizons_and_macros_match_csv():
    table, rows = accuracies()
    horizon_rows = tabular_rows(GENERATED / "part1_horizons.tex")
    assert {r[0] for r in horizon_rows} == {recipe for recipe, _ in table}
    defined = macros(GENERATED / "part1_macros.tex")
    for recipe, _description, rnn, lstm in horizon_rows:
        for model, cell in (("RNN", rnn), ("LSTM", lstm)):
            expected = longest_mastered(table[recipe, model]) if (recipe, model) in table else None
            assert cell == (str(expected) if expected else "--"), f"{recipe} {model}"
            macro = defined[f"PartOneHorizon{recipe.capitalize()}{model.capitalize()}"]
            assert macro == (str(expected) if expected else "none"), f"{recipe} {model}"
    assert int(defined["PartOneRuns"]) == len(rows)
    assert int(defined["PartOneSeeds"]) == len({r["seed"] for r in rows})


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
