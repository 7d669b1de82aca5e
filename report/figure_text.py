"""Save a report figure with the size of its smallest text, so that a test can check it in print.

A figure drawn w inches wide whose smallest text is s points, included in the report at width W,
prints that text at s * W / w points. `save` stores s in the PNG (text chunk SMALLEST_FONT), beside
the DPI; tests/test_report.py reads both, the pixel width, and the width report.tex includes the
figure at, and asks for 8 pt or more.

The plotting scripts of every part use it:  from report.figure_text import save
"""
import matplotlib.text

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
