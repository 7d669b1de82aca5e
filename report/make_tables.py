"""Numbers the report quotes that no part's own script writes, computed from code and saved results.

    python report/make_tables.py        # writes report/generated/report_counts.tex

* The LSTM's parameter count (Question 1.5b), counted on a freshly built part1.lstm.LSTM and checked
  against the formula 4(nd + n^2 + n) for the cell and nK + K for the read-out.
* The gradient magnitudes of Question 1.7, read from part1/results/grads_over_time.csv.
* Words comparing the accuracy horizons of part 1 (longer than, ...), from accuracy_vs_length.csv.

Nothing here trains; it takes about a second after start-up.
"""
import argparse
import csv
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from part1.lstm import LSTM  # noqa: E402
from part1.plot import accuracy_by_length, horizon, read_csv  # noqa: E402
from part1.vanilla_rnn import VanillaRNN  # noqa: E402

GENERATED = ROOT / "report" / "generated"
GRADS_CSV = ROOT / "part1" / "results" / "grads_over_time.csv"
ACCURACY_CSV = ROOT / "part1" / "results" / "accuracy_vs_length.csv"
RECIPES = ("onehot", "raw", "tuned")
MODELS = ("RNN", "LSTM")
# (macro name, (recipe, model), (recipe, model)): "the first horizon is <longer than> the second"
COMPARISONS = (
    ("ReportCmpOnehotLstmRnn", ("onehot", "LSTM"), ("onehot", "RNN")),
    ("ReportCmpRawLstmRnn", ("raw", "LSTM"), ("raw", "RNN")),
    ("ReportCmpTunedLstmRnn", ("tuned", "LSTM"), ("tuned", "RNN")),
    ("ReportCmpRnnTunedOnehot", ("tuned", "RNN"), ("onehot", "RNN")),
    ("ReportCmpLstmTunedOnehot", ("tuned", "LSTM"), ("onehot", "LSTM")),
    ("ReportCmpRnnRawOnehot", ("raw", "RNN"), ("onehot", "RNN")),
    ("ReportCmpLstmRawOnehot", ("raw", "LSTM"), ("onehot", "LSTM")),
)
D, N, K, T = 10, 128, 10, 10  # one-hot digits, the template's hidden units, ten classes
READOUT = ("W_ph", "b_p")
# Rows of grads_over_time.csv -> the macro-name part that stands for them.
GRAD_MODELS = {"RNN": "Rnn", "LSTM": "Lstm", "LSTM b_f=1": "LstmForgetBias"}


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
                for what in ("First", "Last", "Ratio", "Decay", "Min", "MinAt", "LastOverMin"):
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
            macros[name + "LastOverMin"] = f"{g2 / g_min:,.0f}".replace(",", "\\,")
    macros["ReportGradLength"] = str(max((int(r["t"]) for r in rows), default=0) + 1)
    macros["ReportGradsTrained"] = "1" if any(r["trained"] == "True" for r in rows) else "0"
    macros["ReportGradsForgetBias"] = "1" if any(r["model"] == "LSTM b_f=1" for r in rows) else "0"
    return macros


def horizons(path=ACCURACY_CSV):
    """{(recipe, model): (horizon or 0, longest swept T)} from the sweep's CSV, for swept pairs only,
    with part1/plot.py's definition of the horizon."""
    if not path.exists():
        return {}
    table = accuracy_by_length(read_csv(path))
    return {key: (horizon(by_length) or 0, max(by_length)) for key, by_length in table.items()}


def horizon_macros(path=ACCURACY_CSV):
    """Words for the text: each horizon as a phrase, and comparisons between horizons."""
    found = horizons(path)
    macros = {}
    for recipe in RECIPES:
        for model in MODELS:
            name = f"ReportHorizonPhrase{recipe.capitalize()}{model.capitalize()}"
            if (recipe, model) not in found:
                macros[name] = "not yet measured"
                continue
            h, longest = found[recipe, model]
            if h == 0:
                macros[name] = "below the shortest length swept"
            elif h == longest:
                macros[name] = f"at least $T={h}$ (the longest length swept so far)"
            else:
                macros[name] = f"$T={h}$"
    for name, a, b in COMPARISONS:
        if a not in found or b not in found:
            macros[name] = "not yet comparable with"
        else:
            ha, hb = found[a][0], found[b][0]
            macros[name] = "longer than" if ha > hb else "shorter than" if ha < hb else "the same as"
    return macros


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
    macros.update(horizon_macros())
    out.mkdir(parents=True, exist_ok=True)
    lines = ["% Generated by report/make_tables.py from part1/lstm.py, part1/vanilla_rnn.py, "
             "part1/results/grads_over_time.csv and part1/results/accuracy_vs_length.csv; do not edit.",
             "% The ReportGrad* macros need math mode."]
    lines += [f"\\newcommand{{\\{name}}}{{{value}}}" for name, value in macros.items()]
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
