r"""Numbers the report quotes that no part's own script writes, computed from code and saved results.

    python report/make_tables.py        # writes report/generated/report_counts.tex

* The LSTM's parameter count (Question 1.5b), counted on a freshly built part1.lstm.LSTM and checked
  against the formula 4(nd + n^2 + n) for the cell and nK + K for the read-out.
* The gradient magnitudes of Question 1.7, read from part1/results/grads_over_time.csv.
* Single runs of the part-1 sweep that the text quotes (part1/results/sweep_runs.csv), one macro per
  field, read in the report as \run{recipe/model/T/seed}{field} (\checkrun for the convergence check),
  and per recipe, model and length how low the training accuracy fell once it had reached 0.99 there
  (part1/results/sweep_curves.csv), read as \minafter{recipe/model/T}.

Nothing here trains; it takes about a second after start-up.
"""
import argparse
import csv
import math
from pathlib import Path

from part1.common import read_csv
from part1.experiments.sweep import read_curves
from part1.lstm import LSTM
from part1.vanilla_rnn import VanillaRNN

ROOT = Path(__file__).resolve().parent.parent

GENERATED = ROOT / "report" / "generated"
GRADS_CSV = ROOT / "part1" / "results" / "grads_over_time.csv"
SWEEP_CSV = ROOT / "part1" / "results" / "sweep_runs.csv"
CURVES_CSV = ROOT / "part1" / "results" / "sweep_curves.csv"
D, N, K, T = 10, 128, 10, 10  # one-hot digits, the template's hidden units, ten classes
READOUT = ("W_ph", "b_p")
# Rows of grads_over_time.csv -> the macro-name part that stands for them.
GRAD_MODELS = {"RNN": "Rnn", "LSTM": "Lstm", "LSTM b_f=1": "LstmForgetBias", "RNN W_hh=I": "RnnIdentity",
               "LSTM chrono": "LstmChrono"}


def thousands(n):
    return f"{n:,}".replace(",", "\\,")


def parameter_counts(d=D, n=N, k=K):
    """(cell, read-out, total) parameters of part1's LSTM and the total of its VanillaRNN, by count."""
    lstm = LSTM(T, d, n, k)
    cell = sum(p.numel() for name, p in lstm.named_parameters() if name not in READOUT)
    readout = sum(p.numel() for name, p in lstm.named_parameters() if name in READOUT)
    rnn = sum(p.numel() for p in VanillaRNN(T, d, n, k).parameters())
    if cell != 4 * (n * d + n * n + n) or readout != n * k + k:
        raise AssertionError(f"part1.lstm.LSTM has {cell} cell and {readout} read-out parameters, "
                             f"not 4(nd + n^2 + n) = {4 * (n * d + n * n + n)} and nK + K = {n * k + k}")
    return cell, readout, cell + readout, rnn


def sci(x):
    """x as LaTeX scientific notation, e.g. 3.1 \\times 10^{-21} (for math mode)."""
    if x == 0:
        return "0"
    exponent = math.floor(math.log10(abs(x)))
    mantissa = x / 10 ** exponent
    if exponent in (-1, 0, 1):
        return f"{x:.2f}"
    return f"{mantissa:.1f} \\times 10^{{{exponent}}}"


def gradient_macros(path=GRADS_CSV):
    """First, last and per-step decay of mean ||dL/dh^(t)|| for every (model, trained) in the CSV."""
    rows = list(csv.DictReader(open(path, newline=""))) if path.exists() else []
    macros = {}
    for model, short in GRAD_MODELS.items():
        for trained, tag in (("False", "Untrained"), ("True", "Trained")):
            points = sorted((int(r["t"]), float(r["grad_norm"])) for r in rows
                            if r["model"] == model and r["trained"] == trained)
            name = f"ReportGrad{tag}{short}"
            if len(points) < 2 or points[0][1] <= 0 or points[-1][1] <= 0:
                for what in ("First", "Last", "Ratio", "Decay", "Min", "MinAt"):
                    macros[name + what] = "\\text{n/a}"
                continue
            (t1, g1), (t2, g2) = points[0], points[-1]
            macros[name + "First"] = sci(g1)
            macros[name + "Last"] = sci(g2)
            macros[name + "Ratio"] = sci(g1 / g2)
            # the geometric-mean factor by which the gradient shrinks per step back in time
            macros[name + "Decay"] = f"{(g1 / g2) ** (1 / (t2 - t1)):.2f}"
            # where the curve is lowest (a trained curve is not a straight line)
            t_min, g_min = min(points, key=lambda p: p[1])
            macros[name + "Min"] = sci(g_min)
            macros[name + "MinAt"] = str(t_min)
    macros["ReportGradLength"] = str(max((int(r["t"]) for r in rows), default=0) + 1)
    macros["ReportGradsTrained"] = "1" if any(r["trained"] == "True" for r in rows) else "0"
    macros["ReportGradsForgetBias"] = "1" if any(r["model"] == "LSTM b_f=1" for r in rows) else "0"
    return macros


def run_macros(path=SWEEP_CSV):
    """Per sweep run: the step of the weights scored, the steps trained, the length reached, the held-out
    accuracy of the scored weights and the training accuracy of the last window (where a run ended)."""
    lines = []
    for r in read_csv(path, missing_ok=True):
        key = f"{'checkrun' if r['check'] == 'True' else 'run'}/{r['recipe']}/{r['model']}/{r['palindrome_length']}/{r['seed']}"
        fields = {"scored": thousands(int(r["scored_step"])), "steps": thousands(int(r["steps"])),
                  "length": r["final_length"], "acc": f"{float(r['eval_accuracy']):.3f}",
                  "last": f"{float(r['train_accuracy']):.2f}"}
        lines += [f"\\expandafter\\def\\csname {key}/{field}\\endcsname{{{value}}}" for field, value in fields.items()]
    return lines


def min_after_macros(path=CURVES_CSV, reached=0.99):
    """Per (recipe, model, T) of the main pass: the lowest window training accuracy at length T after the
    run's first window there at `reached` or more, over its seeds, rounded down ("stays above")."""
    lowest, seen = {}, set()
    for c in read_curves(path):
        if c["check"] == "True" or c["length"] != c["palindrome_length"]:
            continue
        run, accuracy = (c["recipe"], c["model"], c["length"], c["seed"]), float(c["accuracy"])
        if run not in seen and accuracy >= reached:
            seen.add(run)
        if run in seen:
            lowest[run[:3]] = min(lowest.get(run[:3], 1.0), accuracy)
    return [f"\\expandafter\\def\\csname minafter/{'/'.join(key)}\\endcsname{{{math.floor(100 * a) / 100:.2f}}}"
            for key, a in sorted(lowest.items())]


def write(out=GENERATED):
    cell, readout, total, rnn = parameter_counts()
    macros = {
        "ReportLstmD": str(D), "ReportLstmN": str(N), "ReportLstmK": str(K),
        "ReportLstmCellParams": thousands(cell),
        "ReportLstmReadoutParams": thousands(readout),
        "ReportLstmTotalParams": thousands(total),
        "ReportRnnTotalParams": thousands(rnn),
        "ReportLstmCellParamsRaw": str(cell),
        "ReportLstmTotalParamsRaw": str(total),
    }
    macros.update(gradient_macros())
    out.mkdir(parents=True, exist_ok=True)
    lines = ["% Generated by report/make_tables.py from part1/lstm.py, part1/vanilla_rnn.py, "
             "part1/results/grads_over_time.csv, part1/results/sweep_runs.csv, sweep_curves.csv; do not edit.",
             "% The ReportGrad* macros need math mode."]
    lines += [f"\\newcommand{{\\{name}}}{{{value}}}" for name, value in macros.items()]
    lines += run_macros() + min_after_macros()
    path = out / "report_counts.tex"
    path.write_text("\n".join(lines) + "\n")
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=GENERATED, help="folder for report_counts.tex")
    args = parser.parse_args(argv)
    print(write(args.out))


if __name__ == "__main__":
    main()
