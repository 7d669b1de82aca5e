"""The part 1 experiments: gradients over time, the resumable sweep."""
import csv

import pytest
import torch
import torch.nn as nn

from part1.dataset import PalindromeDataset
from part1.grads_over_time import hidden_state_grads
from part1.lstm import LSTM
from part1.vanilla_rnn import VanillaRNN
from tests.scripts import run_script

run = run_script  # the scripts as a user runs them, in this process


@pytest.mark.parametrize("model_class", [VanillaRNN, LSTM])
def test_kept_hidden_state_gradients_equal_autograd_grad(model_class):
    torch.manual_seed(0)
    model = model_class(6, 10, 7, 10).double()
    x, y = PalindromeDataset(7).sample_batch(5, torch.Generator().manual_seed(0))
    grads = hidden_state_grads(model, x, y)

    states = model.hidden_states(x)
    loss = nn.functional.cross_entropy(states[-1] @ model.W_ph.T + model.b_p, y, reduction="sum")
    expected = torch.stack(torch.autograd.grad(loss, states))
    assert grads.shape == (6, 5, 7)
    assert (grads - expected).abs().max() < 1e-12
    # Each palindrome's row is the gradient of its own loss: the first one's alone gives the same row.
    single = hidden_state_grads(model, x[:1], y[:1])
    assert (single[:, 0] - grads[:, 0]).abs().max() < 1e-12


def test_grads_over_time_script_writes_csv_and_figure(tmp_path):
    out, fig = tmp_path / "grads.csv", tmp_path / "grads.png"
    proc = run("part1/grads_over_time.py", "--palindrome_length", 12, "--batch_size", 4, "--num_hidden", 8,
               "--output", out, "--figure", fig)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(open(out)))
    # the template's initialisation, and the tuned recipe's (identity W_hh, chrono b_f) before training
    assert {r["model"] for r in rows} == {"RNN", "LSTM", "LSTM b_f=1", "RNN W_hh=I", "LSTM chrono"}
    assert sorted(int(r["t"]) for r in rows if r["model"] == "RNN") == list(range(1, 12))
    assert all(float(r["grad_norm"]) > 0 for r in rows) and fig.stat().st_size > 0
    missing = run("part1/grads_over_time.py", "--trained", "--rnn_checkpoint", tmp_path / "none.pt",
                  "--output", out, "--figure", fig)
    assert missing.returncode == 1 and "no checkpoint" in missing.stderr and "Traceback" not in missing.stderr


def test_sweep_appends_one_row_per_run_and_resumes(tmp_path):
    args = ["--recipes", "onehot", "--models", "RNN", "--lengths", 3, 4, "--seeds", 0, "--passes", "main",
            "--train_steps", 200,
            "--eval_size", 300, "--output", tmp_path / "acc.csv", "--curves", tmp_path / "curves.csv",
            "--checkpoints", tmp_path / "ckpt"]
    first = run("part1/experiments/sweep.py", *args)
    assert first.returncode == 0, first.stderr
    rows = list(csv.DictReader(open(tmp_path / "acc.csv")))
    assert [(r["model"], r["palindrome_length"], r["seed"]) for r in rows] == [("RNN", "3", "0"), ("RNN", "4", "0")]
    assert all(0 <= float(r["eval_accuracy"]) <= 1 and r["recipe"] == "onehot" for r in rows)
    # Which machine and PyTorch ran it: a seed reproduces its run only there.
    assert all(r["machine"].endswith(f", torch {torch.__version__}") and len(r["machine"]) > 14 for r in rows)
    assert (tmp_path / "ckpt" / "onehot_RNN_T4_seed0.pt").exists()
    again = run("part1/experiments/sweep.py", *args)
    assert "0 runs to do" in again.stdout
    assert len(list(csv.DictReader(open(tmp_path / "acc.csv")))) == 2
    curves = list(csv.DictReader(open(tmp_path / "curves.csv")))
    assert {r["palindrome_length"] for r in curves} == {"3", "4"}


def test_sweep_shards_split_the_runs(tmp_path):
    common = ["--recipes", "onehot", "--models", "RNN", "--lengths", 3, "--seeds", 0, 1, "--passes", "main",
              "--train_steps", 100,
              "--eval_size", 100, "--output", tmp_path / "acc.csv", "--curves", tmp_path / "c.csv",
              "--checkpoints", tmp_path / "ck"]
    assert run("part1/experiments/sweep.py", *common, "--shard", "1/2").returncode == 0
    rows = list(csv.DictReader(open(tmp_path / "acc.csv")))
    assert [r["seed"] for r in rows] == ["1"]
    bad = run("part1/experiments/sweep.py", *common, "--shard", "2/2")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_no_curriculum_run_reaches_its_length_before_the_curriculum_floor():
    # plot.curriculum_floor is quoted in the report as the earliest step a curriculum run can train at T.
    from part1.experiments.plot import curriculum_floor
    from part1.train import WINDOW

    first_at_T = {}
    with open("part1/results/sweep_curves.csv", newline="") as f:
        for c in csv.DictReader(f):
            key = (c["recipe"], c["model"], c["palindrome_length"], c["seed"], c["check"])
            if c["recipe"] in ("tuned", "curriculum") and c["length"] == c["palindrome_length"]:
                first_at_T.setdefault(key, int(c["step"]))
    assert first_at_T
    for key, step in first_at_T.items():
        assert step >= curriculum_floor(int(key[2])), key
    assert min(step - curriculum_floor(int(k[2])) for k, step in first_at_T.items()) < WINDOW  # the floor is reached
