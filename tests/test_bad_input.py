"""One contract for bad input, every script of every part: exactly one line on stderr, no
traceback, exit code 2 for a bad option and 1 for a file that cannot be read or written."""
import re
from pathlib import Path

import pytest

from tests.scripts import ROOT, run_script

MISSING = "no/such/place"
# (script, arguments, exit code); every script has a bad option, every script that reads or
# writes a file a bad file. Nothing here gets far enough to write into the repository.
CASES = [
    ("part1/train.py", ["--no_such_option"], 2),
    ("part1/train.py", ["--input_length", "0"], 2),
    ("part1/train.py", ["--model_type", "GRU"], 2),
    ("part1/train.py", ["--learning_rate", "x"], 2),
    ("part1/train.py", ["--num_classes", "2"], 2),
    ("part1/train.py", ["--learning_rate", "1e6"], 2),
    ("part1/train.py", ["--forget_bias", "inf"], 2),
    ("part1/train.py", ["--num_hidden", "1000000000000"], 1),  # refused before allocating
    ("part1/train.py", ["--num_classes", "1000000000000"], 1),
    ("part1/train.py", ["--eval_size", "1000000000000"], 1),
    ("part1/experiments/sweep.py", ["--lengths", "1"], 2),
    ("part1/experiments/sweep.py", ["--shard", "2/2"], 2),
    ("part1/experiments/plot.py", ["--results", MISSING], 1),
    ("part1/experiments/plot.py", ["--no_such_option"], 2),
    ("part1/grads_over_time.py", ["--batch_size", "0"], 2),
    ("part1/grads_over_time.py", ["--batch_size", "10000000000000"], 1),  # an allocation that fails
    ("part1/grads_over_time.py", ["--trained", "--rnn_checkpoint", f"{MISSING}.pt"], 1),
    ("part1/experiments/benchmark.py", ["--lengths", "x"], 2),
    ("part1/experiments/benchmark.py", ["--batch_size", "0"], 2),
    ("part1/experiments/benchmark.py", ["--num_hidden", "-1"], 2),
    ("part1/experiments/probe.py", ["--units", "x"], 2),
    ("part1/experiments/probe.py", ["--train_size", "0"], 2),
    ("part1/experiments/probe.py", ["--checkpoints", f"{MISSING}.pt"], 1),
    ("part2/train.py", ["--seq_length", "0"], 2),
    ("part2/train.py", ["--txt_file", f"{MISSING}.txt", "--summary_path", MISSING], 1),
    ("part2/generate.py", ["--checkpoint", f"{MISSING}.pt", "--temperature", "0"], 2),
    ("part2/generate.py", ["--checkpoint", f"{MISSING}.pt"], 1),
    ("part2/generate.py", ["--checkpoint", f"{MISSING}.pt", "--temperature", "inf"], 2),
    ("part2/generate.py", ["--checkpoint", f"{MISSING}.pt", "--length", "10000000"], 2),
    ("part2/generate.py", ["--checkpoint", f"{MISSING}.pt", "--beam_size", "1000000"], 2),
    ("part2/train.py", ["--max_time", "inf"], 2),
    ("part2/train.py", ["--weight_decay", "inf"], 2),
    ("part2/experiments/export.py", [MISSING], 2),
    ("part2/experiments/export.py", [MISSING, MISSING], 1),
    ("part2/experiments/plot.py", [MISSING], 1),
    ("part2/experiments/plot.py", [], 2),
    ("part2/experiments/report_outputs.py", [MISSING], 1),
    ("part2/experiments/report_outputs.py", [], 2),
    ("part2/experiments/benchmark.py", [], 2),
    ("part2/experiments/benchmark.py", [MISSING], 1),
    ("part3/figure2.py", ["--no_such_option"], 2),
    ("part3/figure2.py", ["--out_dir", "part3/figure2.py"], 1),  # a file where a folder should be
    ("part3/train.py", ["--epochs", "-1"], 2),
    ("part3/train.py", ["--dropout", "1.5"], 2),
    ("part3/train.py", ["--dropout", "nan"], 2),
    ("part3/train.py", ["--lr", "inf"], 2),
    ("part3/train.py", ["--weight_decay", "-1"], 2),
    ("part3/train.py", ["--hidden", "10000000000000"], 1),  # an allocation that fails
    ("part3/experiments/oversmoothing.py", ["--depths", "1", "4"], 2),
    ("part3/experiments/oversmoothing.py", ["--lr", "0"], 2),
    ("part3/experiments/oversmoothing.py", ["--depths", "1000000000000"], 2),  # a layer each: no end
    ("part3/experiments/report_outputs.py", ["--results_dir", MISSING], 1),
    ("part3/experiments/report_outputs.py", ["--fig_dir"], 2),
]


@pytest.mark.parametrize("script, argv, code", CASES, ids=[f"{s}-{' '.join(a)}" for s, a, _ in CASES])
def test_bad_input_is_one_line_on_stderr_and_an_exit_code(script, argv, code):
    result = run_script(script, *argv)
    assert result.returncode == code, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{Path(script).name}: error: ") and "Traceback" not in lines[0]


def test_every_script_is_in_the_contract():
    scripts = {str(path.relative_to(ROOT)) for path in ROOT.glob("part*/**/*.py")
               if re.search(r'^if __name__ == "__main__":', path.read_text(), re.M)}
    assert scripts == {script for script, _, _ in CASES}
    assert {script for script, _, code in CASES if code == 2} == scripts  # a bad option for each
