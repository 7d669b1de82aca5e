"""Summarise the last mutation run (mutmut's mutants/ folder) into tests/mutation/report.md.

    mutmut run && python tests/mutation/report.py "mutmut run"

Killed: a test failed on the mutant; timeout: it ran past its time limit (a mutant that loops
forever). Survived: every test passed. Each survivor is in tests/mutation/equivalent.txt with one line on
why it changes no behaviour; a survivor missing from that file is listed in the report as a gap.
"""
import json
import platform
import sys
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from mutmut.stats import status_by_exit_code

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CAUGHT = {"killed", "segfault"}


def equivalents():
    """{mutant name: reason} from equivalent.txt ("name: reason" lines, # comments)."""
    lines = (HERE / "equivalent.txt").read_text(encoding="utf-8").splitlines()
    pairs = (line.split(": ", 1) for line in lines if line.strip() and not line.startswith("#"))
    return {name.strip(): reason.strip() for name, reason in pairs}


def main(command):
    reasons = equivalents()
    rows, gaps = [], []
    for meta in sorted((ROOT / "mutants").glob("part*/*.py.meta")):
        statuses = Counter()
        for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            status = status_by_exit_code[code]
            if status in CAUGHT:
                statuses["killed"] += 1
            elif status == "timeout":
                statuses["timeout"] += 1
            elif status == "survived" and name in reasons:
                statuses["equivalent"] += 1
            elif status == "not checked":
                statuses["not checked"] += 1
            else:
                statuses["other"] += 1
                gaps.append(f"{name} ({status})")
        rows.append((meta.relative_to(ROOT / "mutants").as_posix().removesuffix(".meta"), statuses))
    total = Counter()
    for _, statuses in rows:
        total.update(statuses)
    n = sum(total.values())
    lines = [
        "# Mutation testing report",
        "",
        f"Made by `python tests/mutation/report.py` after `{command}`, "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, mutmut on Python {platform.python_version()}.",
        "Configuration: `[tool.mutmut]` in pyproject.toml. Killed: a test failed on the mutant.",
        "Timeout: the mutant ran past its CPU- or wall-time limit (caught: it would hang). Equivalent: every test",
        "passed and tests/mutation/equivalent.txt says why the mutant changes no behaviour. Other:",
        "survived without a reason, or had no test. Not checked: the run ended before the mutant's turn.",
        "",
        "| module | mutants | killed | timeout | equivalent | other | not checked | caught of checked non-equivalent |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for module, s in [*rows, ("**all**", total)]:
        m = sum(s.values())
        checked = m - s["equivalent"] - s["not checked"]
        lines.append(f"| {module} | {m} | {s['killed']} | {s['timeout']} | {s['equivalent']} | {s['other']} | "
                     f"{s['not checked']} | {(s['killed'] + s['timeout']) / max(1, checked):.1%} |")
    caught = total["killed"] + total["timeout"]
    lines += ["", f"Caught (killed or timed out): {caught} of {n} mutants ({caught / max(1, n):.1%}); of the "
              f"{n - total['not checked']} checked, {caught / max(1, n - total['not checked']):.1%}; with the "
              f"{total['equivalent']} equivalent ones left out, "
              f"{caught / max(1, n - total['not checked'] - total['equivalent']):.1%}.", ""]
    lines += ["## Survived without a reason, or had no test", ""] + [f"- {gap}" for gap in gaps] if gaps else \
        ["Every checked mutant is caught or listed as equivalent."]
    (HERE / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines[9:9 + len(rows) + 4]))
    return 1 if total["not checked"] or gaps else 0


if __name__ == "__main__":
    sys.exit(main(" ".join(sys.argv[1:]) or "mutmut run"))
