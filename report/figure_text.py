"""Save a report figure with the size of its smallest text, so that a test can check it in print.

A figure drawn w inches wide whose smallest text is s points, included in the report at width W,
prints that text at s * W / w points. `save` stores s in the PNG (text chunk SMALLEST_FONT), beside
the DPI; tests/test_report.py reads both, the pixel width, and the width report.tex includes the
figure at, and asks for 8 pt or more.

The plotting scripts of every part use it, and take from it where the report's figures and
generated tables go and the style that makes the text print at a given size:

    from report.figure_text import FIGURES, TEXT_WIDTH, print_style, save
"""
from pathlib import Path

import matplotlib
import matplotlib.text

matplotlib.use("Agg")  # figures are only written to files: no window, no display needed

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "report" / "figures"
GENERATED = ROOT / "report" / "generated"  # numbers and tables, as LaTeX, that report.tex inputs
TEXT_WIDTH = 5.5  # inches: figures are drawn at the width report.tex includes them at


def print_style(points):
    """rcParams under which every text of a figure drawn TEXT_WIDTH wide prints at `points`."""
    keys = ("font.size", "axes.titlesize", "axes.labelsize", "legend.fontsize", "legend.title_fontsize",
            "xtick.labelsize", "ytick.labelsize", "figure.titlesize")
    return dict.fromkeys(keys, points)

SMALLEST_FONT = "Smallest font (pt)"


def smallest_font(fig):
    """The smallest font size (points) of any visible, non-empty text of `fig`, tick labels included."""
    fig.draw_without_rendering()  # tick labels get their text only when the figure is drawn
    sizes = [t.get_fontsize() for t in fig.findobj(matplotlib.text.Text)
             if t.get_visible() and t.get_text().strip() and t.get_figure() is not None]
    return min(sizes)


def save(fig, path, dpi=200, **kwargs):
    """fig.savefig(path, dpi=dpi, ...) with the smallest font size written into the PNG."""
    fig.savefig(path, dpi=dpi, metadata={SMALLEST_FONT: "%.2f" % smallest_font(fig)}, **kwargs)
