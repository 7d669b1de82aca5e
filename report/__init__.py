"""The report's helpers (figure_text), importable from every part: from report.figure_text import save."""
