"""Plot loss and accuracy curves (train and validation) of a run from its metrics.csv.

    python part2/experiments/plot.py part2/results/grimm     # writes report/figures/part2_grimm_curves.png
"""
from pathlib import Path

import matplotlib.pyplot as plt

from part1 import common
from report.figure_text import FIGURES, TEXT_WIDTH, print_style, save


def read_metrics(path):
    """Columns of metrics.csv as lists of (step, value), skipping empty cells."""
    rows = common.read_csv(path)
    if not rows:
        raise ValueError(f"{path} has no rows yet")
    return {name: [(int(r["step"]), float(r[name])) for r in rows if r[name]]
            for name in rows[0] if name != "step"}


def plot(run, out):
    m = read_metrics(Path(run) / "metrics.csv")
    with plt.rc_context(print_style(9)):
        fig, axes = plt.subplots(1, 2, figsize=(TEXT_WIDTH, 2.35))
        for ax, what, unit in ((axes[0], "loss", "cross-entropy (nats/char)"),
                               (axes[1], "accuracy", "next-character accuracy")):
            for split, label, style in (
                    ("train", "train (random windows)", dict(lw=0.6, alpha=0.6)),
                    ("val", "validation (whole split, state carried)", dict(marker="o", ms=3))):
                ax.plot(*zip(*m[f"{split}_{what}"], strict=True), label=label, **style)
            if what == "loss":  # runs from before the fresh-state evaluation lack these columns
                for name, label in (("val_loss_window", "validation, training-length windows, fresh state"),
                                    ("val_loss_window_256", "validation, 256-char windows, fresh state")):
                    if m.get(name):
                        ax.plot(*zip(*m[name], strict=True), label=label, marker=".", ms=3, lw=0.8)
            ax.set_xlabel("training step")
            ax.set_ylabel(unit)
            ax.grid(alpha=0.3)
        axes[0].set_ylim(top=min(4.5, axes[0].get_ylim()[1]))
        handles, labels = axes[0].get_legend_handles_labels()
        fig.tight_layout(rect=(0, 0, 1, 1 - 0.1 * ((len(labels) + 1) // 2)))
        fig.legend(handles, labels, loc="upper center", ncol=2, frameon=False)
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        save(fig, out)
    plt.close(fig)


def main(argv=None):
    p = common.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run", help="folder with metrics.csv (a --summary_path or part2/results/NAME)")
    p.add_argument("--out", default=None,
                   help="image file (default: report/figures/part2_NAME_curves.png)")
    args = p.parse_args(argv)
    out = args.out or FIGURES / f"part2_{Path(args.run).resolve().name}_curves.png"
    plot(args.run, out)
    print(out)


if __name__ == "__main__":
    common.run(main, "plot.py")
