"""The README's headline results are typed text: each number must be the one in the file it names."""
import csv
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def headlines(part, file):
    """The rows of the headline table for `part` that cite `file`."""
    table = ROOT.joinpath("README.md").read_text().split("## Headline results")[1].split("\n## ")[0]
    rows = [line for line in table.splitlines() if line.startswith(f"| {part} |") and f"`{file}`" in line]
    assert rows, f"no headline row of part {part} cites {file}"
    return rows


def headline(part, file):
    (row,) = headlines(part, file)
    return row


def horizon(recipe, model):
    summary = ROOT.joinpath("part1/results/sweep_summary.md").read_text()
    section = summary.split(f"## {recipe}, {model}:")[1]
    return re.search(r"Horizon: T (= \d+|>= \d+)", section).group(1)


def test_part1_headlines_are_the_sweep_summary_horizons():
    template, tuned = headlines(1, "part1/results/sweep_summary.md")
    assert f"vanilla RNN T {horizon('onehot', 'RNN')}, LSTM T {horizon('onehot', 'LSTM')}" in template
    assert f"RNN T {horizon('tuned', 'RNN')}, LSTM T {horizon('tuned', 'LSTM')}" in tuned


def test_part2_headline_is_the_last_metrics_row():
    row = headline(2, "part2/results/grimm/metrics.csv")
    last = list(csv.DictReader(open(ROOT / "part2/results/grimm/metrics.csv")))[-1]
    assert f"after {int(last['step']):,} steps" in row
    assert f"validation loss {float(last['val_loss']):.4f}" in row
    assert f"validation accuracy {float(last['val_accuracy']):.4f}" in row
    assert f"(`val_loss` {last['val_loss']}, `val_accuracy` {last['val_accuracy']})" in row


def test_part3_headlines_are_the_saved_results():
    figure2 = json.loads(ROOT.joinpath("part3/results/figure2.json").read_text())
    row = headline(3, "part3/results/figure2.json")
    path = "-".join(figure2["shortest_path"])
    assert f"reaches E after {figure2['updates_by_propagation']} updates (shortest path {path})" in row
    karate = json.loads(ROOT.joinpath("part3/results/karate.json").read_text())
    row = headline(3, "part3/results/karate.json")
    assert (f"{karate['accuracy_mean']:.4f} ± {karate['accuracy_std']:.4f} "
            f"(mean ± sample sd over {len(karate['accuracies'])} seeds)") in row
