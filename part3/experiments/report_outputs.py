"""Figures and LaTeX snippets for the report, drawn only from the saved results in part3/results.

Nothing here trains or propagates: run without arguments, it redraws every part-3 figure and
rewrites every part-3 snippet from whatever results files exist.
"""
import json
import math
import statistics
from pathlib import Path

import matplotlib.pyplot as plt
import networkx as nx
from matplotlib.colors import ListedColormap

from part1 import common
from report.figure_text import FIGURES, GENERATED, ROOT, TEXT_WIDTH, print_style, save

RESULTS_DIR = ROOT / "part3" / "results"
FACTION_COLOURS = ("tab:blue", "tab:orange")
# 9 pt in print (tests/test_report.py checks every figure's printed text size).
PRINT_STYLE = print_style(9)


def _load(results_path):
    return json.loads(Path(results_path).read_text())


def _save(fig, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    save(fig, path, bbox_inches="tight")
    plt.close(fig)
    return path


def _write_tex(path, source, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    header = f"% Generated from {source} by part3/experiments/report_outputs.py; do not edit by hand.\n"
    path.write_text(header + "\n".join(lines) + "\n")
    return path


def _latex_matrix(rows, fmt):
    body = r" \\ ".join(" & ".join(fmt(x) for x in row) for row in rows)
    return r"\left(\begin{array}{" + "c" * len(rows[0]) + "}" + body + r"\end{array}\right)"


# ----- Figure 2 (Question 3.2) -----

def plot_figure2(results_path, fig_dir):
    """Draw the graph with a shortest path from source to target, and the spread of the signal
    (no titles: the report's caption says what they show)."""
    res = _load(results_path)
    graph = nx.Graph(res["edges"])
    pos = nx.spring_layout(graph, seed=2)  # fixed seed: the same picture every time
    path_edges = set(zip(res["shortest_path"], res["shortest_path"][1:], strict=False))
    on_path = [(u, v) in path_edges or (v, u) in path_edges for u, v in graph.edges]
    ends = (res["source"], res["target"])
    with plt.rc_context(PRINT_STYLE):
        fig, ax = plt.subplots(figsize=(1.9, 1.5))
        nx.draw_networkx(graph, pos, ax=ax, node_color=["tab:red" if v in ends else "lightgrey"
                                                        for v in graph.nodes],
                         edge_color=["tab:red" if p else "grey" for p in on_path],
                         width=[2.5 if p else 1.0 for p in on_path], node_size=300, font_size=9)
        ax.axis("off")
        graph_png = _save(fig, Path(fig_dir) / "figure2_graph.png")

        spread = res["signal_per_layer"]
        fig, ax = plt.subplots(figsize=(3.3, 0.27 * len(spread) + 0.55))
        reached = ListedColormap(["white", "#f4a582"])
        ax.imshow([[s > 0 for s in row] for row in spread], cmap=reached, vmin=0, vmax=1,
                  aspect="auto")
        for k, row in enumerate(spread):
            for j, s in enumerate(row):
                ax.text(j, k, f"{s:.2f}", ha="center", va="center")
        ax.set_xticks(range(len(res["nodes"])), res["nodes"])
        ax.set_yticks(range(len(spread)), [f"k = {k}" for k in range(len(spread))])
        ax.set_xlabel("node")
        ax.set_ylabel("updates k")
        spread_png = _save(fig, Path(fig_dir) / "figure2_spread.png")
    return [graph_png, spread_png]


def write_figure2_tex(results_path, tex_dir):
    res = _load(results_path)
    return _write_tex(Path(tex_dir) / "part3_figure2.tex", Path(results_path).name, [
        "% Rows and columns in the order " + ", ".join(res["nodes"]) + "; the matrices need math"
        r" mode: $\tilde{A} = \PartThreeAtilde$.",
        r"\newcommand{\PartThreeAtilde}{" + _latex_matrix(res["adj_tilde"], lambda x: f"{x:g}")
        + "}",
        r"\newcommand{\PartThreeAhat}{" + _latex_matrix(res["adj_hat"], lambda x: f"{x:.2f}")
        + "}",
        r"\newcommand{\PartThreeCtoEUpdates}{" + str(res["updates_by_propagation"]) + "}",
        r"\newcommand{\PartThreeCtoEPath}{" + "--".join(res["shortest_path"]) + "}",
    ])


# ----- Karate club -----

def plot_karate(results_path, fig_dir):
    """The 2-D output of the GCN for every member, before and after training."""
    res = _load(results_path)
    leaders = res["config"]["labelled"]
    with plt.rc_context(PRINT_STYLE):
        fig, axes = plt.subplots(1, 2, figsize=(TEXT_WIDTH, 2.9))
        for ax, key, title in zip(axes, ("embedding_before", "embedding_after"),
                                  ("(a) before training (random W)", "(b) after training"), strict=True):
            points = res[key]
            for c, name in enumerate(res["factions"]):
                members = [i for i, y in enumerate(res["labels"]) if y == c]
                ax.scatter([points[i][0] for i in members], [points[i][1] for i in members],
                           c=FACTION_COLOURS[c], label=f"faction {name}", s=20)
            for i in leaders:
                ax.scatter(*points[i], s=90, facecolors="none", edgecolors="black")
                ax.annotate(str(i), points[i], xytext=(4, 4), textcoords="offset points")
            if key == "embedding_after":
                classes = range(len(res["factions"]))
                wrong = [i for i, y in enumerate(res["labels"])
                         if max(classes, key=lambda c: points[i][c]) != y]
                ax.scatter([points[i][0] for i in wrong], [points[i][1] for i in wrong], s=50,
                           marker="x", c="black", label=f"misclassified: {wrong}")
            ax.set_title(title)
            ax.set_xlabel(f"logit for {res['factions'][0]}")
            ax.set_ylabel(f"logit for {res['factions'][1]}")
        handles, labels = axes[1].get_legend_handles_labels()
        fig.tight_layout(rect=(0, 0, 1, 0.9))
        fig.legend(handles, labels, loc="upper center", ncol=3, frameon=False)
        return [_save(fig, Path(fig_dir) / "karate_embeddings.png")]


def write_karate_tex(results_path, tex_dir):
    res = _load(results_path)
    mean = res["accuracy_mean"]
    # one seed (a quick run) has no spread: its accuracy alone
    std = "n/a" if res["accuracy_std"] is None else f"{res['accuracy_std']:.3f}"
    accuracy = f"{mean:.3f} \\pm {std}" if std != "n/a" else f"{mean:.3f}"
    return _write_tex(Path(tex_dir) / "part3_karate.tex", Path(results_path).name, [
        r"\newcommand{\PartThreeKarateAccuracy}{\ensuremath{" + accuracy + "}}",
        r"\newcommand{\PartThreeKarateAccuracyMean}{" + f"{mean:.3f}" + "}",
        r"\newcommand{\PartThreeKarateAccuracyStd}{" + std + "}",
        r"\newcommand{\PartThreeKarateSeeds}{" + str(len(res["accuracies"])) + "}",
        r"\newcommand{\PartThreeKarateEpochs}{" + str(res["config"]["epochs"]) + "}",
        r"\newcommand{\PartThreeKarateUnlabelled}{" + str(res["n_unlabelled"]) + "}",
    ])


# ----- Over-smoothing (Question 3.1b) -----

# variant: (label, matplotlib format, colour); the order of the legends and the table
OVERSMOOTHING_VARIANTS = {
    "plain": ("plain σ(ÂHW)", "o-", "C0"),
    "plain_no_decay": ("plain, no weight decay", "v--", "C4"),
    "linear_no_decay": ("linear ÂHW, no weight decay", "^:", "C2"),
    "residual": ("residual H + σ(ÂHW)", "s-", "C1"),
    "initial": ("initial residual (GCNII)", "D-", "C3"),
}
OVERSMOOTHING_TEX = {
    "plain": r"plain $\sigma(\hat AHW)$",
    "plain_no_decay": "plain, no weight decay",
    "linear_no_decay": r"linear $\hat AHW$, no weight decay",
    "residual": r"residual $H+\sigma(\hat AHW)$",
    "initial": "initial residual (GCNII)",
}


def _depth_axis(ax, depths):
    ax.set_xscale("log", base=2)
    ax.set_xticks(depths, [str(d) for d in depths])
    ax.minorticks_off()
    ax.set_xlabel("GCN layers L")


def _errorbar(ax, depths, stats, variant):
    """Mean ± sample std over the seeds where the value is defined; no point where none is."""
    points = [(d, m, s or 0) for d, m, s in zip(depths, stats["mean"], stats["std"], strict=True)
              if m is not None]
    label, fmt, colour = OVERSMOOTHING_VARIANTS[variant]
    if points:
        d, m, s = zip(*points, strict=True)
        ax.errorbar(d, m, yerr=s, fmt=fmt, color=colour, capsize=2, ms=4, label=label)
    else:  # keep the legend entry
        ax.plot([], [], fmt, color=colour, ms=4, label=label)


def _mean_and_seeds(ax, depths, stats, variant):
    """Mean over the seeds where the value is defined (line) and every seed (dots): on a log
    axis a std as large as the mean would reach below zero."""
    label, fmt, colour = OVERSMOOTHING_VARIANTS[variant]
    points = [(d, m) for d, m in zip(depths, stats["mean"], strict=True) if m is not None]
    ax.plot(*zip(*points, strict=True), fmt, color=colour, ms=4, label=label)
    seeds = [(d, v) for d, values in zip(depths, stats["per_seed"], strict=True) for v in values
             if v is not None and v > 0]
    ax.plot(*zip(*seeds, strict=True), ".", color=colour, ms=2.5, alpha=0.6)


def plot_oversmoothing(results_path, fig_dir):
    """Smoothing (relative Dirichlet energy), dead signal and accuracy against depth; and the
    energy and length of every layer of the deepest networks at initialisation."""
    res = _load(results_path)
    depths = res["depths"]
    with plt.rc_context(PRINT_STYLE):
        fig, axes = plt.subplots(2, 2, figsize=(TEXT_WIDTH, 5.0), sharex=True)
        for ax, stage in zip(axes[0], ("init", "trained"), strict=True):
            for variant in OVERSMOOTHING_VARIANTS:
                _mean_and_seeds(ax, depths, res[variant][stage]["energy"], variant)
            ax.plot(depths, res["propagation_only"], ":", color="grey",
                    label=r"$\hat{A}^{L-1}X$ (no W, no σ)")
            ax.axhline(res["lambda_2"], color="grey", lw=0.8, ls="--")
            ax.annotate(r"$\lambda_2$", (depths[-1], res["lambda_2"]), xytext=(0, 2),
                        textcoords="offset points", ha="right", va="bottom", color="grey")
            ax.set_yscale("log")
            ax.set_ylabel("relative Dirichlet energy")
        axes[0][0].set_title("(a) energy of H at initialisation")
        axes[0][1].set_title("(b) energy of H after training")
        dead = [d for d, n in zip(depths, res["plain"]["trained"]["energy"]["n"], strict=True)
                if n == 0]
        if dead:
            axes[0][1].annotate(f"plain: H = 0 for L ≥ {min(dead)}", (0.03, 0.04),
                                xycoords="axes fraction", color=OVERSMOOTHING_VARIANTS["plain"][2])
        ax = axes[1][0]
        for variant, stage, style, label in (
                ("plain", "init", ":", "at initialisation"), ("plain", "trained", "-", "trained"),
                ("plain_no_decay", "trained", "--", "trained, no decay")):
            _, fmt, colour = OVERSMOOTHING_VARIANTS[variant]
            ax.plot(depths, res[variant][stage]["dead"]["mean"], fmt[0] + style, ms=4,
                    color=colour, label=label)
        ax.set_ylabel("fraction of zero units in H")
        ax.set_ylim(-0.05, 1.05)
        ax.set_title("(c) dead units of plain GCNs' H")  # line styles: in the caption
        ax = axes[1][1]
        for variant in OVERSMOOTHING_VARIANTS:
            _errorbar(ax, depths, res[variant]["trained"]["accuracy"], variant)
        ax.axhline(0.5, color="grey", lw=0.8, ls=":")
        ax.set_ylabel("accuracy, unlabelled")
        ax.set_title("(d) accuracy after training")
        for ax in axes.flat:
            _depth_axis(ax, depths)
        for ax in axes[0]:
            ax.set_xlabel("")  # the x axis is shared: labelled under the lower row
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.tight_layout(rect=(0, 0, 1, 0.88))
        fig.legend(handles, labels, loc="upper center", ncol=2, frameon=False)
        main_png = _save(fig, Path(fig_dir) / "oversmoothing.png")

        layers = res["layers"]
        fig, axes = plt.subplots(1, 2, figsize=(TEXT_WIDTH, 2.8))
        for ax, name, ylabel in zip(axes, ("energy", "length"),
                                    ("relative Dirichlet energy", r"mean length of $h_i$"),
                                    strict=True):
            # at initialisation weight decay has not acted: plain_no_decay is plain
            for variant in ("plain", "linear_no_decay", "residual", "initial"):
                label, fmt, colour = OVERSMOOTHING_VARIANTS[variant]
                per_layer = zip(*layers[variant]["init"][name], strict=True)
                ax.plot(range(1, layers["depth"]), [statistics.mean(v) for v in per_layer],
                        fmt[1:], color=colour, label=label.replace(", no weight decay", ""))
            ax.set_yscale("log")
            ax.set_xlabel(f"layer l of the {layers['depth']}-layer GCN")
            ax.set_ylabel(ylabel)
        axes[0].set_title(r"(a) energy of $H^l$")
        axes[1].set_title(r"(b) size of $H^l$")
        handles, labels = axes[0].get_legend_handles_labels()
        fig.tight_layout(rect=(0, 0, 1, 0.8))
        fig.legend(handles, labels, loc="upper center", ncol=2, frameon=False)
        layers_png = _save(fig, Path(fig_dir) / "oversmoothing_layers.png")
    return [main_png, layers_png]


def _energy(stats, i):
    """Mean over the seeds where H ≠ 0, three decimals or two digits times a power of ten (their
    number as a superscript where not all; "$H=0$" where none)."""
    mean, n = stats["mean"][i], stats["n"][i]
    if mean is None:
        return r"$H=0$"
    if mean == 0 or mean >= 0.01:
        text = f"{mean:.3f}"
    else:
        exponent = math.floor(math.log10(mean))
        text = f"{mean / 10**exponent:.1f}" + r"{\cdot}10^{" + str(exponent) + "}"
    return "$" + text + ("" if n == len(stats["per_seed"][i]) else f"^{{({n})}}") + "$"


def _percent(stats, i):
    """Mean ± sample std over the seeds, in percent (the mean alone for a single seed)."""
    std = stats["std"][i]
    return f"${100 * stats['mean'][i]:.1f}" + ("" if std is None else f"\\pm {100 * std:.1f}") + "$"


def _power_of_ten(x):
    return "$0$" if x == 0 else f"$10^{{{math.floor(math.log10(x))}}}$"


# macro part: (stage, metric, how the value is written)
OVERSMOOTHING_MACROS = {
    "EnergyInit": ("init", "energy", _energy),
    "Energy": ("trained", "energy", _energy),
    "Acc": ("trained", "accuracy", _percent),
    "DeadInit": ("init", "dead", lambda stats, i: f"{stats['mean'][i]:.2f}"),
    "Dead": ("trained", "dead", lambda stats, i: f"{stats['mean'][i]:.2f}"),
    "LengthInit": ("init", "length", lambda stats, i: _power_of_ten(stats["mean"][i])),
    "Length": ("trained", "length", lambda stats, i: _power_of_ten(stats["mean"][i])),
}
VARIANT_MACRO_NAMES = {"plain": "Plain", "plain_no_decay": "PlainNoDecay",
                       "linear_no_decay": "Linear", "residual": "Residual", "initial": "Initial"}
# python part3/experiments/oversmoothing.py --epochs 400 --depths 16 32 64 --out-dir part3/results/double_budget
DOUBLE_BUDGET = Path("double_budget") / "oversmoothing.json"
DEPTH_WORDS = {2: "Two", 4: "Four", 8: "Eight", 16: "Sixteen", 32: "ThirtyTwo", 64: "SixtyFour"}


def write_oversmoothing_tex(results_path, tex_dir):
    """part3_oversmoothing_table.tex, the table, and part3_oversmoothing.tex, one macro per
    variant, depth and statistic, e.g. \\PartThreeOSInitialAccSixtyFour (accuracy in percent,
    mean ± sample std). Returns both paths."""
    res = _load(results_path)
    depths, n_seeds = res["depths"], len(res["seeds"])

    def row(label, cells):
        return label + " & " + " & ".join(cells) + r" \\"

    def block(title, lines):
        return [r"\midrule", r"\multicolumn{" + str(len(depths) + 1) + r"}{l}{\emph{" + title
                + r"}} \\", *lines]

    def macro(name, value):
        return r"\newcommand{\PartThreeOS" + name + "}{" + value + "}"

    decay = res["config"]["weight_decay"]
    exponent = math.floor(math.log10(decay)) if decay > 0 else 0
    macros = [macro("Seeds", str(n_seeds)), macro("Epochs", str(res["config"]["epochs"])),
              macro("WeightDecay", f"${decay / 10**exponent:g}" + r"{\cdot}10^{" + str(exponent)
                    + "}$" if decay > 0 else "$0$"),
              macro("LambdaTwo", f"{res['lambda_2']:.3f}"),
              macro("Alpha", f"{res['config']['gcnii_alpha']:g}"),
              macro("Lambda", f"{res['config']['gcnii_lambda']:g}")]
    # Â^(L-1) X in the form of a statistic over one "seed"
    prop = {"mean": res["propagation_only"], "n": [1] * len(depths),
            "per_seed": [[x] for x in res["propagation_only"]]}
    for i, depth in enumerate(depths):
        if depth not in DEPTH_WORDS:  # a depth from --depths that the report does not quote
            continue
        word = DEPTH_WORDS[depth]
        macros.append(macro("Prop" + word, _energy(prop, i)))
        for variant, name in VARIANT_MACRO_NAMES.items():
            for short, (stage, metric, write) in OVERSMOOTHING_MACROS.items():
                macros.append(macro(name + short + word, write(res[variant][stage][metric], i)))
    # the budget check: the same experiment trained twice as long, if it has been run
    longer_path = Path(results_path).parent / DOUBLE_BUDGET
    if longer_path.is_file():
        longer = _load(longer_path)
        macros.append(macro("LongerEpochs", str(longer["config"]["epochs"])))
        for i, depth in enumerate(longer["depths"]):
            for variant, name in VARIANT_MACRO_NAMES.items():
                stats = longer[variant]["trained"]
                macros += [macro(f"Longer{name}Acc{DEPTH_WORDS[depth]}", _percent(stats["accuracy"], i)),
                           macro(f"Longer{name}Alive{DEPTH_WORDS[depth]}", str(stats["energy"]["n"][i]))]
    columns = range(len(depths))
    labels = {"plain": "plain", "plain_no_decay": "plain, no decay",
              "linear_no_decay": "linear, no decay", "residual": "residual", "initial": "GCNII"}
    energy = [row(labels[v], [_energy(res[v]["trained"]["energy"], i) for i in columns])
              for v in OVERSMOOTHING_VARIANTS]
    accuracy = [row(labels[v], [_percent(res[v]["trained"]["accuracy"], i) for i in columns])
                for v in OVERSMOOTHING_VARIANTS]
    dead = [row(label, [f"{x:.2f}" for x in res[v][stage]["dead"]["mean"]])
            for v, stage, label in (("plain", "init", "plain, initialised"),
                                    ("plain", "trained", "plain"),
                                    ("plain_no_decay", "trained", "plain, no decay"))]
    header = [
        f"% {n_seeds} seeds, after training unless said. Energy: tr(H^T (I - A_hat) H) / ||H||^2"
        " of the last",
        "% hidden representation H, mean over the seeds where H != 0 (their number as a"
        " superscript",
        "% where not all; H=0: zero in every seed). Accuracy: percent, mean \\pm sample std"
        " (n - 1).",
    ]
    table = _write_tex(Path(tex_dir) / "part3_oversmoothing_table.tex", Path(results_path).name, [
        *header,
        r"\begin{tabular}{l" + "r" * len(depths) + "}",
        r"\toprule",
        "layers $L$ & " + " & ".join(str(d) for d in depths) + r" \\",
        *block("relative Dirichlet energy of $H$ (mean)", [
            row(r"$\hat A^{L-1}X$", [_energy(prop, i) for i in columns]), *energy]),
        *block("fraction of hidden units zero for every member (mean)", dead),
        *block(r"accuracy on the unlabelled members, \% (mean $\pm$ std)", accuracy),
        r"\bottomrule",
        r"\end{tabular}",
    ])
    return [_write_tex(Path(tex_dir) / "part3_oversmoothing.tex", Path(results_path).name,
                       header + macros), table]


# ----- all at once -----

MAKERS = {
    "figure2.json": (plot_figure2, write_figure2_tex),
    "karate.json": (plot_karate, write_karate_tex),
    "oversmoothing.json": (plot_oversmoothing, write_oversmoothing_tex),
}


def add_output_dirs(parser, results_file):
    """--out_dir, --fig_dir and --tex_dir, the folders a part-3 script writes its outputs to."""
    parser.add_argument("--out_dir", "--out-dir", type=Path, default=RESULTS_DIR,
                        help=f"where {results_file} goes")
    add_figure_dirs(parser)


def add_figure_dirs(parser):
    """--fig_dir and --tex_dir, where the figures and the LaTeX snippets go."""
    parser.add_argument("--fig_dir", "--fig-dir", type=Path, default=FIGURES,
                        help="where the figures go")
    parser.add_argument("--tex_dir", "--tex-dir", type=Path, default=GENERATED,
                        help="where the LaTeX snippets go")


def main(argv=None):
    parser = common.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results_dir", "--results-dir", type=Path, default=RESULTS_DIR,
                        help="where the results are read")
    add_figure_dirs(parser)
    args = parser.parse_args(argv)
    found = [name for name in MAKERS if (args.results_dir / name).is_file()]
    if not found:
        raise ValueError(f"no results in {args.results_dir}: run the part-3 scripts first")
    for name in found:
        plot, write_tex = MAKERS[name]
        written = write_tex(args.results_dir / name, args.tex_dir)
        print(f"{name}: wrote", *plot(args.results_dir / name, args.fig_dir),
              *(written if isinstance(written, list) else [written]))


if __name__ == "__main__":
    common.run(main, "report_outputs.py")
