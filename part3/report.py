"""Figures and LaTeX snippets for the report, drawn only from the saved results in part3/results.

Nothing here trains or propagates: run without arguments, it redraws every part-3 figure and
rewrites every part-3 snippet from whatever results files exist.
"""
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import networkx as nx  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from part3 import cli  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "part3" / "results"
FIGURES_DIR = ROOT / "report" / "figures"
TEX_DIR = ROOT / "report" / "generated"
FACTION_COLOURS = ("tab:blue", "tab:orange")


def _load(results_path):
    return json.loads(Path(results_path).read_text())


def _save(fig, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)
    return path


def _write_tex(path, source, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    header = f"% Generated from {source} by part3/report.py; do not edit by hand.\n"
    path.write_text(header + "\n".join(lines) + "\n")
    return path


def _latex_matrix(rows, fmt):
    body = r" \\ ".join(" & ".join(fmt(x) for x in row) for row in rows)
    return r"\left(\begin{array}{" + "c" * len(rows[0]) + "}" + body + r"\end{array}\right)"


# ----- Figure 2 (Question 3.2) -----

def plot_figure2(results_path, fig_dir):
    """Draw the graph with a shortest path from source to target, and the spread of the signal."""
    res = _load(results_path)
    graph = nx.Graph(res["edges"])
    pos = nx.spring_layout(graph, seed=2)  # fixed seed: the same picture every time
    path_edges = set(zip(res["shortest_path"], res["shortest_path"][1:], strict=False))
    on_path = [(u, v) in path_edges or (v, u) in path_edges for u, v in graph.edges]
    ends = (res["source"], res["target"])
    fig, ax = plt.subplots(figsize=(4, 3.2))
    nx.draw_networkx(graph, pos, ax=ax, node_color=["tab:red" if v in ends else "lightgrey"
                                                    for v in graph.nodes],
                     edge_color=["tab:red" if p else "grey" for p in on_path],
                     width=[2.5 if p else 1.0 for p in on_path], node_size=600)
    ax.set_title(f"Figure 2: shortest path {' – '.join(res['shortest_path'])}", fontsize=9)
    ax.axis("off")
    graph_png = _save(fig, Path(fig_dir) / "figure2_graph.png")

    spread = res["signal_per_layer"]
    fig, ax = plt.subplots(figsize=(5, 0.6 * len(spread) + 1))
    reached = ListedColormap(["white", "#f4a582"])
    ax.imshow([[s > 0 for s in row] for row in spread], cmap=reached, vmin=0, vmax=1,
              aspect="auto")
    for k, row in enumerate(spread):
        for j, s in enumerate(row):
            ax.text(j, k, f"{s:.2f}", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(res["nodes"])), res["nodes"])
    ax.set_yticks(range(len(spread)), [f"k = {k}" for k in range(len(spread))])
    ax.set_xlabel("node")
    ax.set_ylabel("updates (Eq. 14) applied")
    ax.set_title(f"Signal starting at {res['source']} only (shaded: reached): "
                 f"{res['target']} is reached "
                 f"after {res['updates_by_propagation']} updates", fontsize=9)
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
    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    for ax, key, title in zip(axes, ("embedding_before", "embedding_after"),
                              ("before training (random W)", "after training"), strict=True):
        points = res[key]
        for c, name in enumerate(res["factions"]):
            members = [i for i, y in enumerate(res["labels"]) if y == c]
            ax.scatter([points[i][0] for i in members], [points[i][1] for i in members],
                       c=FACTION_COLOURS[c], label=name, s=40)
        for i in leaders:
            ax.scatter(*points[i], s=160, facecolors="none", edgecolors="black")
            ax.annotate(str(i), points[i], xytext=(5, 5), textcoords="offset points")
        if key == "embedding_after":
            classes = range(len(res["factions"]))
            wrong = [i for i, y in enumerate(res["labels"])
                     if max(classes, key=lambda c: points[i][c]) != y]
            ax.scatter([points[i][0] for i in wrong], [points[i][1] for i in wrong], s=90,
                       marker="x", c="black", label=f"misclassified: {wrong}")
            ax.legend(fontsize=8)
        ax.set_title(title)
        ax.set_xlabel(f"output (logit) for {res['factions'][0]}")
        ax.set_ylabel(f"output (logit) for {res['factions'][1]}")
    axes[0].legend(title="faction (circled: labelled)")
    fig.suptitle(f"Karate club, GCN output per member (seed {res['embedding_seed']}); "
                 f"accuracy on unlabelled members {res['accuracy_mean']:.3f} ± "
                 f"{res['accuracy_std']:.3f} over {len(res['accuracies'])} seeds", fontsize=9)
    return [_save(fig, Path(fig_dir) / "karate_embeddings.png")]


def write_karate_tex(results_path, tex_dir):
    res = _load(results_path)
    mean, std = res["accuracy_mean"], res["accuracy_std"]
    return _write_tex(Path(tex_dir) / "part3_karate.tex", Path(results_path).name, [
        r"\newcommand{\PartThreeKarateAccuracy}{\ensuremath{" + f"{mean:.3f} \\pm {std:.3f}" + "}}",
        r"\newcommand{\PartThreeKarateAccuracyMean}{" + f"{mean:.3f}" + "}",
        r"\newcommand{\PartThreeKarateAccuracyStd}{" + f"{std:.3f}" + "}",
        r"\newcommand{\PartThreeKarateSeeds}{" + str(len(res["accuracies"])) + "}",
        r"\newcommand{\PartThreeKarateEpochs}{" + str(res["config"]["epochs"]) + "}",
        r"\newcommand{\PartThreeKarateUnlabelled}{" + str(res["n_unlabelled"]) + "}",
    ])


# ----- Over-smoothing (Question 3.1b) -----

def plot_oversmoothing(results_path, fig_dir):
    """Spread of the node representations and accuracy against depth, with and without skips.

    Spread: mean pairwise distance between the last hidden representations scaled to unit length.
    """
    res = _load(results_path)
    depths = res["depths"]
    panels = (("spread_init", "at initialisation (random W)"),
              ("spread_trained", "after training"),
              ("accuracy", "accuracy on unlabelled members"))
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for ax, (metric, title) in zip(axes, panels, strict=True):
        for variant, style in (("plain", "o-"), ("residual", "s--")):
            stats = res[variant][metric]
            ax.errorbar(depths, stats["mean"], yerr=stats["std"], fmt=style, capsize=3,
                        label="residual H + σ(ÂHW)" if variant == "residual" else "plain σ(ÂHW)")
        ax.set_xscale("log", base=2)
        ax.set_xticks(depths, [str(d) for d in depths])
        ax.set_xlabel("GCN layers L")
        ax.set_title(title, fontsize=10)
    axes[0].plot(depths, res["propagation_only"], ":", color="grey",
                 label=r"$\hat{A}^{L-1}X$ (no W, no σ)")
    axes[0].legend(fontsize=8)
    for ax in axes[:2]:
        ax.set_ylabel("spread of node representations")
        ax.set_ylim(bottom=0)
    axes[2].set_ylabel("accuracy")
    axes[2].axhline(0.5, color="grey", lw=0.8, ls=":")
    axes[2].legend(fontsize=8)
    fig.suptitle(f"Over-smoothing on the karate club (mean ± std over {len(res['seeds'])} seeds)",
                 fontsize=10)
    return [_save(fig, Path(fig_dir) / "oversmoothing.png")]


def write_oversmoothing_tex(results_path, tex_dir):
    res = _load(results_path)
    rows = [
        f"{d} & "
        + " & ".join(f"{res[v][m]['mean'][i]:.2f}" for m in ("spread_trained", "accuracy")
                     for v in ("plain", "residual"))
        + r" \\"
        for i, d in enumerate(res["depths"])
    ]
    return _write_tex(Path(tex_dir) / "part3_oversmoothing.tex", Path(results_path).name, [
        f"% Means over {len(res['seeds'])} seeds, after training. Spread = mean pairwise distance",
        "% between the last hidden representations scaled to unit length (0: all nodes alike).",
        r"\begin{tabular}{rrrrr}",
        r"\hline",
        r" & \multicolumn{2}{c}{spread} & \multicolumn{2}{c}{accuracy} \\",
        r"layers & plain & residual & plain & residual \\",
        r"\hline",
        *rows,
        r"\hline",
        r"\end{tabular}",
    ])


# ----- all at once -----

MAKERS = {
    "figure2.json": (plot_figure2, write_figure2_tex),
    "karate.json": (plot_karate, write_karate_tex),
    "oversmoothing.json": (plot_oversmoothing, write_oversmoothing_tex),
}


def add_output_dirs(parser, results_file):
    """--out-dir, --fig-dir and --tex-dir, the folders a part-3 script writes its outputs to."""
    parser.add_argument("--out-dir", type=Path, default=RESULTS_DIR,
                        help=f"where {results_file} goes (default: part3/results)")
    parser.add_argument("--fig-dir", type=Path, default=FIGURES_DIR,
                        help="where the figures go (default: report/figures)")
    parser.add_argument("--tex-dir", type=Path, default=TEX_DIR,
                        help="where the LaTeX snippets go (default: report/generated)")


def main(argv=None):
    parser = cli.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR,
                        help="where the results are read (default: part3/results)")
    parser.add_argument("--fig-dir", type=Path, default=FIGURES_DIR,
                        help="where the figures go (default: report/figures)")
    parser.add_argument("--tex-dir", type=Path, default=TEX_DIR,
                        help="where the LaTeX snippets go (default: report/generated)")
    args = parser.parse_args(argv)
    found = [name for name in MAKERS if (args.results_dir / name).is_file()]
    if not found:
        raise ValueError(f"no results in {args.results_dir}: run the part-3 scripts first")
    for name in found:
        plot, write_tex = MAKERS[name]
        print(f"{name}: wrote", *plot(args.results_dir / name, args.fig_dir),
              write_tex(args.results_dir / name, args.tex_dir))


if __name__ == "__main__":
    cli.run(main, "report.py")
