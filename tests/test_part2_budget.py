"""Part 2: defaults that follow the budget, the fresh-state evaluation, divergence,
bfloat16, weight tying, and books as they come (byte-order mark, CRLF, Gutenberg, non-ASCII)."""
import csv
import math
import random
import re

import pytest
import torch
import torch.nn.functional as F

from part1 import common
from part2 import generate, train
from part2.dataset import TextDataset
from part2.experiments import benchmark
from part2.model import TextGenerationModel
from tests.test_part2 import small_model, story

SMALL = ["--seq_length", "16", "--lstm_num_hidden", "24", "--embedding_dim", "8",
         "--batch_size", "8", "--print_every", "2", "--eval_every", "5", "--sample_every", "5",
         "--num_threads", "1"]


@pytest.fixture
def book(tmp_path):
    path = tmp_path / "book.txt"
    path.write_text(story(), encoding="utf-8")
    return path


def fails_with_one_line(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        common.run(lambda: train.main(argv), "train.py")
    err = capsys.readouterr().err
    assert exit_info.value.code not in (0, None) and "Traceback" not in err
    # One line says what happened (a progress bar may stand before it).
    lines = [line for line in err.splitlines() if "train.py" in line]
    assert len(lines) == 1 and err.endswith(lines[0] + "\n"), err
    return lines[0]


def final_row(summary):
    with open(summary / "metrics.csv") as f:
        return list(csv.DictReader(f))[-1]


# defaults that follow --max_time

@pytest.mark.parametrize("argv, hidden, keep, max_time, first_eval", [
    ([], 256, 0.8, 600, 100),  # a run given no limit stops after 10 minutes
    (["--train_steps", "200"], 192, 1.0, None, 0), (["--max_time", "70"], 192, 1.0, 70, 0),
    (["--max_time", "600"], 256, 0.8, 600, 100),
    (["--max_time", "900", "--train_steps", "50"], 256, 0.8, 900, 100),
    (["--max_time", "600", "--lstm_num_hidden", "64", "--dropout_keep_prob", "0.5",
      "--first_eval", "7"], 64, 0.5, 600, 7),
])
def test_defaults_follow_the_budget_and_stay_overridable(argv, hidden, keep, max_time, first_eval):
    args = train.parse_args(argv)
    train.apply_budget_defaults(args)
    assert (args.lstm_num_hidden, args.dropout_keep_prob) == (hidden, keep)
    assert (args.max_time, args.first_eval) == (max_time, first_eval)


def test_help_names_the_budget_defaults(capsys):
    with pytest.raises(SystemExit):
        train.parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "default: 192 with --max_time up to 300 s" in text and "256 for longer budgets" in text


# evaluation from a fresh state

def test_window_loss_reads_each_window_from_a_zero_state(book):
    ds = TextDataset(book, seq_length=9)
    torch.manual_seed(0)
    model = small_model(ds.vocab_size, 16, embedding_dim=4).eval()
    x, y = ds.val_windows(9)
    assert torch.equal(x.flatten(), ds.val_data[:x.numel()])  # consecutive, each character once
    assert torch.equal(y.flatten(), ds.val_data[1:x.numel() + 1])
    assert len(ds.val_data) - 1 - x.numel() < 9
    losses = [F.cross_entropy(model(xi[None])[0], yi, reduction="sum") for xi, yi in zip(x, y, strict=True)]
    expected = sum(losses).item() / y.numel()
    assert train.evaluate_windows(model, ds, "cpu", 9, batch=7) == pytest.approx(expected, rel=1e-5)


def test_every_evaluation_holds_both_kinds(book, tmp_path):
    train.main(["--txt_file", str(book), "--summary_path", str(tmp_path), "--train_steps", "7",
                *SMALL])
    with open(tmp_path / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    evaluations = [r for r in rows if r["val_loss"]]
    assert [r["step"] for r in evaluations] == ["5", "7"]
    for row in evaluations:
        for name in ("val_loss", "val_loss_window", "val_loss_window_256"):
            assert 0 < float(row[name]) < math.log(len(set(story())))


# divergence

def test_a_huge_learning_rate_stops_with_one_line(book, tmp_path, capsys):
    line = fails_with_one_line(["--txt_file", str(book), "--summary_path", str(tmp_path),
                                "--train_steps", "50", "--learning_rate", "1000", *SMALL], capsys)
    assert "diverged" in line and "--learning_rate" in line


def test_divergence_keeps_the_last_good_checkpoint(book, tmp_path, capsys, monkeypatch):
    forward, calls = TextGenerationModel.forward, []

    def nan_from_step_8(self, x):
        logits = forward(self, x)
        if self.training:
            calls.append(1)
            if len(calls) >= 8:
                logits = logits * float("nan")
        return logits

    monkeypatch.setattr(TextGenerationModel, "forward", nan_from_step_8)
    line = fails_with_one_line(["--txt_file", str(book), "--summary_path", str(tmp_path),
                                "--train_steps", "20", *SMALL], capsys)
    assert "step 8" in line and "nan" in line and "checkpoint (step 5)" in line
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert ckpt["step"] == 5
    assert all(torch.isfinite(w).all() for w in ckpt["model"].values())


# bfloat16 and weight tying

def test_auto_precision_uses_bfloat16_only_where_the_cpu_computes_it(monkeypatch):
    cpu = torch.device("cpu")
    for flags, expected in (("fpu avx2 avx512f", False), ("avx512f avx512_bf16", True),
                            ("amx_bf16 amx_tile", True)):
        monkeypatch.setattr(train.Path, "read_text", lambda self, flags=flags: f"flags : {flags}\n")
        assert train.native_bfloat16(cpu) is expected
    assert not train.native_bfloat16(torch.device("cuda"))


def test_bfloat16_training_differs_from_float32_and_resumes_bit_for_bit(book, tmp_path):
    if missing := train.missing_bfloat16(torch.device("cpu")):
        pytest.skip(f"bfloat16 LSTM training needs AVX-512 on x86 ({missing})")
    argv = ["--txt_file", str(book), "--precision", "bfloat16", "--no-linear_decay",
            "--train_steps", "10", *SMALL]
    train.main([*argv, "--summary_path", str(tmp_path / "straight")])
    train.main([*argv, "--summary_path", str(tmp_path / "split"), "--train_steps", "5"])
    train.main(["--txt_file", str(book), "--summary_path", str(tmp_path / "split"), "--resume",
                "--train_steps", "10"])
    a = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=True)
    assert a["options"]["precision"] == "bfloat16" and a["step"] == b["step"] == 10
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    train.main([*argv, "--summary_path", str(tmp_path / "float32"), "--precision", "float32"])
    c = torch.load(tmp_path / "float32" / "checkpoint.pt", weights_only=True)
    assert not torch.equal(a["model"]["lstm.weight_hh_l0"], c["model"]["lstm.weight_hh_l0"])


@pytest.mark.parametrize("flags, missing", [
    ("fpu sse2 avx avx2 fma", "avx512bw, avx512vl, avx512dq"),  # AMD Zen 3, most laptops
    ("avx2 avx512f avx512dq", "avx512bw, avx512vl"),
])
def test_bfloat16_on_a_cpu_without_avx512_is_refused_in_one_line_before_anything_is_saved(
        book, tmp_path, capsys, monkeypatch, flags, missing):
    monkeypatch.setattr(train.Path, "read_text", lambda self: f"flags\t\t: {flags}\n")
    monkeypatch.setattr(train.platform, "machine", lambda: "x86_64")
    assert train.missing_bfloat16(torch.device("cpu")) == f"the CPU lacks {missing} (AVX-512)"
    line = fails_with_one_line(["--txt_file", str(book), "--summary_path", str(tmp_path / "s"),
                                "--precision", "bfloat16", *SMALL], capsys)
    assert f"--precision bfloat16 cannot train an LSTM on this machine: the CPU lacks {missing}" in line
    assert "use --precision float32" in line and not (tmp_path / "s").exists()
    args = train.parse_args(["--precision", "auto"])
    train.choose_precision(args, torch.device("cpu"))  # auto never picks what is refused
    assert args.precision == "float32"


def test_tied_weights_share_one_matrix_and_need_equal_sizes(book, tmp_path, capsys):
    model = small_model(20, 12, embedding_dim=12, tie_weights=True)
    assert model.output.weight is model.embedding.weight
    assert sum(p.numel() for p in model.parameters()) < sum(
        p.numel() for p in small_model(20, 12, embedding_dim=12).parameters())
    line = fails_with_one_line(["--txt_file", str(book), "--summary_path", str(tmp_path),
                                "--tie_weights", *SMALL], capsys)
    assert "--embedding_dim equal to --lstm_num_hidden" in line


# what a run shows, and when

def rows_of(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_metrics_rows_are_on_disk_as_soon_as_written(book, tmp_path, monkeypatch):
    """Read metrics.csv during the run, then kill the run without letting it close its files."""
    batch, seen = TextDataset.batch, []

    def read_then_crash_at_step_13(self, *args):
        if len(seen) == 12:
            raise MemoryError("killed")  # not an error train.py knows: no saving, no flushing
        seen.append([r["step"] for r in rows_of(tmp_path / "metrics.csv")])
        return batch(self, *args)

    monkeypatch.setattr(TextDataset, "batch", read_then_crash_at_step_13)
    with pytest.raises(MemoryError):
        train.main(["--txt_file", str(book), "--summary_path", str(tmp_path), "--train_steps", "50",
                    *SMALL, "--print_every", "3", "--eval_every", "100"])
    assert seen[3] == ["3"] and seen[11] == ["3", "6", "9"]  # seen[k]: after k steps
    assert [r["step"] for r in rows_of(tmp_path / "metrics.csv")] == ["3", "6", "9", "12"]


def test_a_run_shows_its_validation_loss_and_samples_early_and_at_the_end(book, tmp_path, capsys):
    train.main(["--txt_file", str(book), "--summary_path", str(tmp_path), "--train_steps", "9",
                *SMALL, "--eval_every", "100", "--sample_every", "100", "--first_eval", "3"])
    out = capsys.readouterr().out
    assert re.findall(r"^step (\d+) \(\d+ s\): val loss [\d.]+ nats/char", out, re.M) == ["3", "9"]
    assert re.findall(r"^samples at step (\d+) \(τ = 0.5 multiplies the logits.*T = 1/τ = 2\)\):$", out, re.M) == ["3", "9"]
    assert out.count("  tau=0.5     ") == 2 and out.rstrip().splitlines()[-1].startswith("done after 9")
    samples = (tmp_path / "samples.txt").read_text(encoding="utf-8")
    assert re.findall(r"^step (\d+)$", samples, re.M) == ["3", "9"]
    assert [r["step"] for r in rows_of(tmp_path / "metrics.csv") if r["val_loss"]] == ["3", "9"]


def test_a_short_run_by_the_default_sampling_interval_still_leaves_samples(book, tmp_path):
    """A run of fewer steps than --sample_every (1000) writes its samples at the end."""
    train.main(["--txt_file", str(book), "--summary_path", str(tmp_path), "--train_steps", "4",
                "--lstm_num_hidden", "16", "--embedding_dim", "8", "--batch_size", "4",
                "--num_threads", "1"])
    samples = (tmp_path / "samples.txt").read_text(encoding="utf-8")
    assert samples.startswith("step 4\n") and samples.count("greedy ") == 5


@pytest.mark.parametrize("argv, total, unit", [
    ([], 600, "s"), (["--max_time", "70"], 70, "s"), (["--train_steps", "200"], 200, "step"),
    (["--train_steps", "200", "--max_time", "70"], None, "step"),  # which stops first is unknown
])
def test_the_progress_bar_ends_where_the_run_stops(argv, total, unit):
    args = train.parse_args(argv)
    train.apply_budget_defaults(args)
    with train.progress_bar(args, train.RunState()) as bar:
        assert (bar.total, bar.unit) == (total, unit)


# books as they come

def messy_book(n_chars=120_000):
    """A Gutenberg-style book: byte-order mark, CRLF line ends, licence header and footer,
    letters outside ASCII."""
    rng = random.Random(0)
    words = "Frühling Müßiggang café naïve señor Øresund Ελλάδα «quoted» — über straße".split()
    words += story(200).split()
    lines, size = [], 0
    while size < n_chars:
        line = " ".join(rng.choice(words) for _ in range(rng.randint(4, 12)))
        lines.append(line)
        size += len(line) + 2
    header = ("The Project Gutenberg eBook of A Test\r\nLicence text that must go.\r\n"
              "*** START OF THE PROJECT GUTENBERG EBOOK A TEST ***\r\n")
    footer = "\r\n*** END OF THE PROJECT GUTENBERG EBOOK A TEST ***\r\nMore licence.\r\n"
    return ("\ufeff" + header + "\r\n".join(lines) + footer).encode("utf-8")


def test_a_messy_utf8_book_trains_generates_and_resumes(tmp_path, capsys):
    path = tmp_path / "book.txt"
    path.write_bytes(messy_book())
    assert 100_000 < path.stat().st_size < 10_000_000
    summary = tmp_path / "run"
    # The defaults, except a short run and one thread.
    base = ["--txt_file", str(path), "--summary_path", str(summary), "--num_threads", "1",
            "--eval_every", "3", "--sample_every", "3"]
    train.main([*base, "--train_steps", "3"])
    train.main([*base, "--train_steps", "5", "--resume"])
    ckpt = torch.load(summary / "checkpoint.pt", weights_only=True)
    assert ckpt["step"] == 5
    vocab = ckpt["vocab"]
    assert "ß" in vocab and "Ε" in vocab and "\r" not in vocab and "\ufeff" not in vocab
    assert "*" not in vocab  # the licence markers are gone
    capsys.readouterr()
    for method in ("greedy", "sample", "beam"):
        generate.main(["--checkpoint", str(summary / "checkpoint.pt"), "--prompt", "Müßiggang ",
                       "--length", "20", "--method", method])
        out = capsys.readouterr().out
        assert out.startswith("Müßiggang ") and len(out.rstrip("\n")) >= len("Müßiggang ") + 20


def test_a_missing_default_book_names_the_download_script(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = fails_with_one_line(["--summary_path", str(tmp_path / "s")], capsys)
    assert "assets/book.txt" in line and "python assets/download.py" in line


# benchmark tables

def test_benchmark_table_groups_seeds_and_reports_mean_and_spread(book, tmp_path):
    for seed in (0, 1):
        train.main(["--txt_file", str(book), "--summary_path", str(tmp_path / f"runs/small_s{seed}"),
                    "--train_steps", "4", "--seed", str(seed), *SMALL])
    table = benchmark.table(tmp_path / "runs").splitlines()
    assert len(table) == 3 and table[2].startswith("| `small` | 2 | 4 |")
    finals = [final_row(tmp_path / f"runs/small_s{seed}") for seed in (0, 1)]
    for name in ("val_loss", "val_loss_window", "val_loss_window_256"):
        a, b = (float(f[name]) for f in finals)
        assert f"{a:.3f} / {b:.3f} (**{(a + b) / 2:.3f}** ± {abs(a - b) / 2 ** 0.5:.3f})" in table[2]
