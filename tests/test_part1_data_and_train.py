"""Palindrome data invariants, and train.py run as a user runs it."""
import json

import numpy as np
import pytest
import torch

from part1.dataset import PalindromeDataset, encode_digits
from tests.scripts import run_python, run_script


@pytest.mark.parametrize("T", [2, 3, 5, 10, 11, 100])
def test_batches_are_palindromes_whose_target_is_the_first_digit(T):
    inputs, targets = PalindromeDataset(T).sample_batch(500, torch.Generator().manual_seed(T))
    assert inputs.shape == (500, T - 1) and targets.shape == (500,)
    full = torch.cat([inputs, targets[:, None]], dim=1)
    assert torch.equal(full, full.flip(1))
    assert torch.equal(targets, inputs[:, 0])
    assert inputs.min() >= 0 and inputs.max() <= 9
    if T > 2:  # the middle digits are drawn, not constant
        assert len(torch.unique(inputs[:, 0])) == 10


def test_same_seed_same_data_and_evaluation_set_has_its_own_seed():
    data = PalindromeDataset(9)
    a = data.sample_batch(64, torch.Generator().manual_seed(1))
    b = data.sample_batch(64, torch.Generator().manual_seed(1))
    c = data.sample_batch(64, torch.Generator().manual_seed(2))
    assert torch.equal(a[0], b[0]) and not torch.equal(a[0], c[0])
    e1, e2 = data.evaluation_set(1000, seed=7), data.evaluation_set(1000, seed=7)
    assert torch.equal(e1[0], e2[0]) and not torch.equal(e1[0][:64], a[0])


@pytest.mark.parametrize("T", [2, 3, 6, 7])
def test_template_interface_still_works(T):
    np.random.seed(T)
    data = PalindromeDataset(T)
    assert len(data) > 10**9  # drawn on the fly, as many as asked for
    pairs = [data[i] for i in range(200)]
    for x, y in pairs:
        assert x.shape == (T - 1,) and x.dtype == np.float32 and y == int(x[0]) and isinstance(y, int)
    full = np.stack([data.generate_palindrome() for _ in range(200)])
    assert full.shape == (200, T) and np.array_equal(full, full[:, ::-1])
    assert set(np.unique(full[:, 0])) == set(range(10))  # every digit is drawn
    assert set(np.unique(full[:, T // 2 - (T % 2 == 0)])) == set(range(10))  # the middle too


def test_a_palindrome_needs_two_digits():
    PalindromeDataset(2)
    with pytest.raises(ValueError, match="T >= 2"):
        PalindromeDataset(1)


def test_encoding():
    x = torch.tensor([[3, 0, 9]])
    one_hot = encode_digits(x, 10)
    assert one_hot.shape == (1, 3, 10) and torch.equal(one_hot.argmax(-1), x) and one_hot.sum() == 3
    assert torch.equal(encode_digits(x, 1)[..., 0], x.float())
    with pytest.raises(ValueError, match="input_dim must be 1 .* or 10 .*, got 3"):
        encode_digits(x, 3)


# The RNN in a new Python, as a user starts it; the LSTM as a module, in this process.
@pytest.mark.parametrize("model_type,run", [
    pytest.param("RNN", lambda *a: run_python("part1/train.py", *a), marks=pytest.mark.new_python),
    ("LSTM", lambda *a: run_script("part1.train", *a)),
], ids=["RNN-script", "LSTM-module"])
def test_train_end_to_end(tmp_path, model_type, run):
    out = tmp_path / "run.json"
    ckpt = tmp_path / "model.pt"
    proc = run("--model_type", model_type, "--input_length", "4", "--train_steps", "300",
               "--eval_size", "500", "--device", "cpu", "--quiet",
               "--output", str(out), "--checkpoint", str(ckpt))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert result["palindrome_length"] == 5 and result["options"]["model_type"] == model_type
    assert 1 <= result["steps"] <= 300 and len(result["curve"]) == result["steps"] // 100
    assert 0.0 <= result["eval_accuracy"] <= 1.0
    # 300 steps already learn T = 5 far beyond chance (0.1).
    assert result["eval_accuracy"] > 0.5
    last_line = proc.stdout.strip().splitlines()[-1]
    assert last_line.startswith("held-out accuracy:") and f"{result['eval_accuracy']:.4f}" in last_line
    assert set(torch.load(ckpt)["model"]) >= {"W_ph", "b_p"}


@pytest.mark.parametrize("args,message", [
    (["--model_type", "GRU"], "invalid choice"),
    (["--input_length", "0"], "--input_length"),
    (["--batch_size", "0"], "--batch_size"),
    (["--num_hidden", "-3"], "--num_hidden"),
    (["--train_steps", "0"], "--train_steps"),
    (["--device", "cuda:7"] if not torch.cuda.is_available() else ["--device", "cuda:999"], "not available"),
    (["--device", "banana"], "unknown device"),
    (["--learning_rate", "0"], "--learning_rate"),
])
def test_bad_input_names_the_option(args, message):
    proc = run_script("part1/train.py", *args)
    assert proc.returncode == 2
    assert message in proc.stderr.strip().splitlines()[-1]  # one line: tests/test_bad_input.py


def test_a_diverged_run_leaves_an_earlier_checkpoint_as_it_was(tmp_path):
    checkpoint = tmp_path / "model.pt"
    checkpoint.write_bytes(b"a good model")
    proc = run_script("part1/train.py", "--input_length", 4, "--learning_rate", 1000, "--train_steps", 200,
                      "--min_steps", 200, "--quiet", "--checkpoint", checkpoint)
    assert proc.returncode == 1 and "diverged" in proc.stderr and len(proc.stderr.splitlines()) == 1
    assert checkpoint.read_bytes() == b"a good model"
