"""Part 2 as a user runs it: the scripts from the repository root, Ctrl-C, bad input, results."""
import csv
import math
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from part1 import common
from part2 import generate, train
from part2.experiments import export, plot, report_outputs
from tests.scripts import ROOT, run_python, run_script
from tests.test_part2 import NEXT, Bigram, story

SMALL = ["--seq_length", "16", "--lstm_num_hidden", "24", "--embedding_dim", "8",
         "--batch_size", "8", "--print_every", "2", "--eval_every", "4", "--sample_every", "4",
         "--num_threads", "1"]



@pytest.fixture(scope="module")
def book(tmp_path_factory):
    path = tmp_path_factory.mktemp("book") / "book.txt"
    path.write_text(story(), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def run(book, tmp_path_factory):
    """A short training run, as the committed results are made."""
    summary = tmp_path_factory.mktemp("run")
    train.main(["--txt_file", str(book), "--summary_path", str(summary), "--train_steps", "8",
                *SMALL])
    return summary


@pytest.mark.new_python
def test_train_and_generate_as_scripts_from_the_repository_root(book, tmp_path):
    result = run_python("part2/train.py", "--txt_file", book, "--summary_path", tmp_path,
                        "--train_steps", "4", *SMALL)
    assert result.returncode == 0, result.stderr
    assert "done after 4 steps" in result.stdout
    result = run_python("part2/generate.py", "--checkpoint", tmp_path / "checkpoint.pt",
                        "--prompt", "The king", "--length", "20", "--method", "beam", "--score")
    assert result.returncode == 0, result.stderr
    text, score = result.stdout.splitlines()
    assert text.startswith("The king") and len(text) == len("The king") + 20
    assert "log-probability" in score


def test_train_runs_as_a_module(book, tmp_path):
    result = run_script("part2.train", "--txt_file", book, "--summary_path", tmp_path,
                    "--train_steps", "2", *SMALL)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "checkpoint.pt").is_file()


@pytest.mark.skipif(not (ROOT / "assets" / "book.txt").is_file(),
                    reason="assets/book.txt is absent (python assets/download.py fetches it)")
def test_smoke_training_on_the_book_with_the_default_options(tmp_path):
    result = run_script("part2/train.py", "--txt_file", "assets/book.txt", "--summary_path",
                        tmp_path, "--train_steps", "5")
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "metrics.csv") as f:
        assert float(list(csv.DictReader(f))[-1]["val_loss"]) > 0


@pytest.mark.new_python
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])  # Ctrl-C, scancel, a closed terminal
def test_ctrl_c_saves_a_checkpoint_that_resumes(book, tmp_path, sig):
    proc = subprocess.Popen([sys.executable, "part2/train.py", "--txt_file", str(book),
                             "--summary_path", str(tmp_path), *SMALL], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=os.environ | {"OMP_NUM_THREADS": "1"})
    metrics = tmp_path / "metrics.csv"
    deadline = time.monotonic() + 120  # a busy machine starts python slowly
    while not (metrics.is_file() and len(metrics.read_text().splitlines()) > 3):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.2)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    (line,) = [line for line in err.splitlines() if "interrupted at step" in line]
    assert "Traceback" not in err and f"--resume --summary_path {tmp_path}" in line
    step = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["step"]
    assert step > 0
    train.main(["--txt_file", str(book), "--summary_path", str(tmp_path), "--resume",
                "--train_steps", str(step + 2), *SMALL])
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["step"] == step + 2


def test_export_makes_a_small_checkpoint_that_generates(run, tmp_path, capsys):
    export.main([str(run), str(tmp_path)])
    assert (tmp_path / "metrics.csv").read_text() == (run / "metrics.csv").read_text()
    full, small = (run / "checkpoint.pt").stat().st_size, (tmp_path / "checkpoint.pt").stat().st_size
    assert small < full / 4  # no optimizer state, half-precision weights
    original, vocab, _ = generate.load_checkpoint(run / "checkpoint.pt")
    exported, exported_vocab, _ = generate.load_checkpoint(tmp_path / "checkpoint.pt")
    assert exported_vocab == vocab
    small_weights = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["model"]
    for name, weight in original.state_dict().items():
        assert small_weights[name].dtype == torch.float16
        assert torch.equal(small_weights[name], weight.half()), name
    # float16 keeps 11 significant bits: the logits move by about 1e-3 of their size, no more.
    x = torch.tensor([generate.encode(vocab, story()[:200])])
    torch.testing.assert_close(exported(x), original(x), rtol=1e-2, atol=1e-2)
    generate.main(["--checkpoint", str(tmp_path / "checkpoint.pt"), "--prompt", "The ",
                   "--length", "15", "--num_samples", "3", "--temperature", "0.5"])
    out = capsys.readouterr().out
    samples = re.split(r"^--- sample (\d) ---\n", out, flags=re.M)
    assert samples[0] == "" and samples[1::2] == ["1", "2", "3"]  # where each sample begins
    assert all(s.startswith("The ") and len(s) == len("The ") + 15 + 1 for s in samples[2::2])


def generated(capsys, checkpoint, *argv):
    generate.main(["--checkpoint", str(checkpoint), *argv])
    return capsys.readouterr().out


def test_generate_prints_what_the_decoding_functions_give(run, capsys):
    model, vocab, _ = generate.load_checkpoint(run / "checkpoint.pt")
    prompt = torch.tensor(generate.encode(vocab, "The k"))
    out = generated(capsys, run / "checkpoint.pt", "--prompt", "The k", "--length", "12",
                    "--method", "beam", "--beam_size", "3", "--score")
    ids, score = generate.beam_search(model, prompt, 12, 3)
    assert out == (f"The k{generate.decode(vocab, ids.tolist())}\n"
                   f"[log-probability of the 12 new characters: {score:.3f}]\n")
    out = generated(capsys, run / "checkpoint.pt", "--prompt", "The k", "--length", "12",
                    "--method", "greedy", "--score")
    ids = generate.generate(model, prompt[None], 12)[0]
    assert out == (f"The k{generate.decode(vocab, ids.tolist())}\n[log-probability of the 12 new "
                   f"characters: {generate.log_prob(model, prompt, ids):.3f}]\n")


def test_generate_decodes_by_the_method_asked_for(monkeypatch, capsys):
    """On the bigram model where greedy decoding provably misses the best sequence."""
    monkeypatch.setattr(generate, "load_checkpoint", lambda path, device: (Bigram(NEXT), "abc", {}))
    beam = generated(capsys, "c.pt", "--prompt", "c", "--length", "4", "--method", "beam",
                     "--beam_size", "2", "--score")
    greedy = generated(capsys, "c.pt", "--prompt", "c", "--length", "4", "--method", "greedy", "--score")
    assert beam == f"cbbbb\n[log-probability of the 4 new characters: {math.log(0.3 * 0.98 ** 3):.3f}]\n"
    assert greedy == f"caaaa\n[log-probability of the 4 new characters: {math.log(0.5 * 0.34 ** 3):.3f}]\n"
    two = generated(capsys, "c.pt", "--prompt", "c", "--length", "4", "--method", "greedy", "--num_samples", "2")
    assert two == "--- sample 1 ---\ncaaaa\n--- sample 2 ---\ncaaaa\n"


def test_generate_samples_by_seed_and_starts_from_a_random_character_without_a_prompt(run, capsys):
    first = generated(capsys, run / "checkpoint.pt", "--length", "40", "--seed", "3")
    assert first == generated(capsys, run / "checkpoint.pt", "--length", "40", "--seed", "3")
    assert len(first) == 1 + 40 + 1 and "---" not in first  # one sample: no separator line
    others = {generated(capsys, run / "checkpoint.pt", "--length", "40", "--seed", str(seed))
              for seed in range(4, 8)}
    assert first not in others and len({text[0] for text in others | {first}}) > 1
    _, vocab, _ = generate.load_checkpoint(run / "checkpoint.pt")
    assert set(first[:-1]) <= set(vocab)


def test_generate_samples_differ_by_seed_for_the_same_prompt(run, capsys):
    texts = {generated(capsys, run / "checkpoint.pt", "--prompt", "The ", "--length", "30", "--seed", str(seed))
             for seed in range(4)}
    greedy = generated(capsys, run / "checkpoint.pt", "--prompt", "The ", "--length", "30", "--method", "greedy")
    assert len(texts) == 4 and greedy not in texts  # sampled, not the most likely characters


def test_generate_help_says_what_it_does(capsys):
    with pytest.raises(SystemExit):
        generate.parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"{generate.__doc__.splitlines()[0]} options:" in text  # the first line, then the options


@pytest.mark.parametrize("script", [train, generate], ids=["train", "generate"])
def test_help_states_every_options_default(script, capsys):
    with pytest.raises(SystemExit):
        script.parse_args(["--help"])
    options = capsys.readouterr().out.split("options:\n", 1)[1]
    entries = re.split(r"\n(?=  -)", options.strip("\n"))[1:]  # after -h, one entry per option
    assert len(entries) >= 10  # generate.py has 10 options, train.py 30
    for entry in entries:
        text = " ".join(entry.split())
        assert "default" in text or "(required)" in text, text
        assert "default: None" not in text, text


def test_temperature_is_said_to_multiply_the_logits_in_help_and_sample_header(run, capsys):
    with pytest.raises(SystemExit):
        generate.parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "τ MULTIPLIES the logits" in text and "τ = 0.5 here is their T = 2" in text
    out = generated(capsys, run / "checkpoint.pt", "--prompt", "The ", "--length", "5",
                    "--temperature", "0.5")
    assert len(out) == len("The ") + 5 + 1  # stdout holds only the text
    generate.main(["--checkpoint", str(run / "checkpoint.pt"), "--length", "5", "--temperature", "0.5"])
    err = capsys.readouterr().err
    assert err == ("[sampling: τ = 0.5 multiplies the logits, softmax(τ·logits) as the assignment "
                   "defines it (more random; nanoGPT's temperature T = 1/τ = 2)]\n")


def test_generate_options_and_their_defaults():
    args = generate.parse_args(["--checkpoint", "c.pt"])
    assert (args.prompt, args.length, args.method, args.temperature, args.beam_size,
            args.num_samples, args.seed, args.score, args.device) == \
        (None, 200, "sample", 1.0, 5, 1, 0, False, "cpu")


def test_plot_and_report_snippets_come_from_the_saved_run(run, tmp_path):
    plot.main([str(run), "--out", str(tmp_path / "curves.png")])
    assert (tmp_path / "curves.png").stat().st_size > 0
    report_outputs.main([str(run), "--out", str(tmp_path), "--prompt", "The king"])
    macros = (tmp_path / "part2_results.tex").read_text()
    with open(run / "metrics.csv") as f:
        final = list(csv.DictReader(f))[-1]
    assert f"\\newcommand{{\\PartTwoValLoss}}{{{float(final['val_loss']):.3f}}}" in macros
    samples = (tmp_path / "part2_samples.tex").read_text()
    first_greedy = (run / "samples.txt").read_text(encoding="utf-8").splitlines()[1].split(None, 1)[1]
    assert report_outputs.tex(first_greedy[1:-1]) in samples  # quoted verbatim
    assert "beam, $B=" in (tmp_path / "part2_completions.tex").read_text()


def fails_cleanly(main, prog, argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        common.run(lambda: main(argv), prog)
    err = capsys.readouterr().err
    assert exit_info.value.code not in (0, None)
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "error" in lines[0], err
    return exit_info.value.code, lines[0]


@pytest.mark.parametrize("make, needle", [
    (lambda p: None, "No such file"),
    (lambda p: p.write_text(""), "empty"),
    (lambda p: p.write_bytes(bytes(range(256)) * 4), "not UTF-8"),
    (lambda p: p.write_text("Once upon a time."), "too short"),
    (lambda p: p.mkdir(), "directory"),
])
def test_train_rejects_a_bad_book(tmp_path, capsys, make, needle):
    path = tmp_path / "book.txt"
    make(path)
    code, line = fails_cleanly(train.main, "train.py", ["--txt_file", str(path), "--summary_path",
                                                        str(tmp_path / "s")], capsys)
    assert code == 1 and needle in line


@pytest.mark.parametrize("argv", [["--seq_length", "0"], ["--learning_rate", "0"],
                                  ["--learning_rate", "-1e-3"], ["--batch_size", "x"],
                                  ["--dropout_keep_prob", "0"]])
def test_train_rejects_bad_options(book, capsys, argv):
    code, _ = fails_cleanly(train.main, "train.py", ["--txt_file", str(book), *argv], capsys)
    assert code == 2


def test_resume_without_a_checkpoint_or_with_a_corrupt_one(book, tmp_path, capsys):
    argv = ["--txt_file", str(book), "--summary_path", str(tmp_path), "--resume"]
    assert "no checkpoint" in fails_cleanly(train.main, "train.py", argv, capsys)[1]
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    assert "not a training checkpoint" in fails_cleanly(train.main, "train.py", argv, capsys)[1]


@pytest.mark.parametrize("argv, code", [
    (["--temperature", "0"], 2), (["--temperature", "-1"], 2), (["--beam_size", "0"], 2),
    (["--length", "0"], 2), (["--method", "topk"], 2), (["--prompt", "The king ~"], 1),
    (["--prompt", ""], 1), (["--num_samples", "0"], 2), (["--seed", "-1"], 2),
    (["--device", "cuda:7"], 1), (["--device", "tpu"], 1),
])
def test_generate_rejects_bad_options(run, capsys, argv, code):
    got, line = fails_cleanly(generate.main, "generate.py",
                              ["--checkpoint", str(run / "checkpoint.pt"), *argv], capsys)
    assert got == code
    if argv == ["--prompt", ""]:
        assert line == "generate.py: error: --prompt is empty; leave it out to start from a random character"


def test_generate_rejects_a_missing_or_corrupt_checkpoint(tmp_path, capsys):
    argv = ["--checkpoint", str(tmp_path / "none.pt")]
    assert "no such checkpoint" in fails_cleanly(generate.main, "generate.py", argv, capsys)[1]
    argv = ["--checkpoint", str(tmp_path)]
    assert "is a directory" in fails_cleanly(generate.main, "generate.py", argv, capsys)[1]
    (tmp_path / "bad.pt").write_bytes(os.urandom(100))
    argv = ["--checkpoint", str(tmp_path / "bad.pt")]
    assert "not a readable part-2 checkpoint" in fails_cleanly(generate.main, "generate.py",
                                                               argv, capsys)[1]
    torch.save({"model": {}}, tmp_path / "other.pt")  # a checkpoint of something else
    argv = ["--checkpoint", str(tmp_path / "other.pt")]
    assert fails_cleanly(generate.main, "generate.py", argv, capsys)[1].endswith(
        "other.pt is not a readable part-2 checkpoint (KeyError)")  # it lacks the vocabulary


# one run per output folder, and a resume that continues only the run it saved

TINY = ["--seq_length", "16", "--lstm_num_hidden", "8", "--embedding_dim", "4", "--batch_size", "4",
        "--print_every", "2", "--eval_every", "4", "--sample_every", "4", "--train_steps", "4"]


def test_a_fresh_run_refuses_a_folder_with_an_earlier_run_unless_overwrite(book, tmp_path, capsys):
    argv = ["--txt_file", str(book), "--summary_path", str(tmp_path), *TINY]
    train.main(argv)
    capsys.readouterr()
    before = {name: (tmp_path / name).read_bytes() for name in train.RUN_FILES}
    code, line = fails_cleanly(train.main, "train.py", argv, capsys)
    assert code == 1 and "holds an earlier run" in line and "--resume" in line and "--overwrite" in line
    assert {name: (tmp_path / name).read_bytes() for name in train.RUN_FILES} == before  # nothing touched
    train.main([*argv, "--overwrite", "--seed", "1"])
    metrics = (tmp_path / "metrics.csv").read_text().splitlines()
    assert metrics[0].startswith("step,") and sum(line.startswith("step,") for line in metrics) == 1


def test_a_second_run_on_the_same_folder_is_refused_while_the_first_runs(book, tmp_path, capsys):
    argv = ["--txt_file", str(book), "--summary_path", str(tmp_path), *TINY]
    with common.OutputLock(tmp_path):  # another process holds the folder
        code, line = fails_cleanly(train.main, "train.py", argv, capsys)
    assert code == 1 and "in use by another run" in line and not (tmp_path / "metrics.csv").exists()


def test_resume_refuses_another_or_an_edited_book_and_an_incomplete_checkpoint(book, tmp_path, capsys):
    train.main(["--txt_file", str(book), "--summary_path", str(tmp_path), *TINY])
    capsys.readouterr()
    resume = ["--summary_path", str(tmp_path), "--resume", "--train_steps", "8"]
    other = tmp_path.parent / "other_book.txt"
    other.write_text(book.read_text(encoding="utf-8"), encoding="utf-8")
    assert "trained on" in fails_cleanly(train.main, "train.py", [*resume, "--txt_file", str(other)], capsys)[1]
    book.write_text(book.read_text(encoding="utf-8").replace("the", "teh", 1), encoding="utf-8")
    assert "has changed since" in fails_cleanly(train.main, "train.py", resume, capsys)[1]
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    del ckpt["rng"]
    torch.save(ckpt, tmp_path / "checkpoint.pt")
    assert "no rng" in fails_cleanly(train.main, "train.py", resume, capsys)[1]


def test_resume_refuses_weights_that_do_not_fit_the_checkpoints_options(book, tmp_path, capsys):
    train.main(["--txt_file", str(book), "--summary_path", str(tmp_path), *TINY])
    capsys.readouterr()
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    ckpt["model"] = {name: weight[:1] for name, weight in ckpt["model"].items()}
    torch.save(ckpt, tmp_path / "checkpoint.pt")
    before = {name: (tmp_path / name).read_bytes() for name in train.RUN_FILES}
    resume = ["--txt_file", str(book), "--summary_path", str(tmp_path), "--resume", "--train_steps", "8"]
    code, line = fails_cleanly(train.main, "train.py", resume, capsys)
    assert code == 1 and "does not match its own options (Error(s) in loading state_dict" in line
    assert {name: (tmp_path / name).read_bytes() for name in train.RUN_FILES} == before
    code, line = fails_cleanly(train.main, "train.py", [*resume, "--overwrite"], capsys)
    assert code == 2 and "not allowed with argument --resume" in line


def test_a_utf16_book_without_byte_order_mark_is_refused(tmp_path, capsys):
    path = tmp_path / "book.txt"
    path.write_bytes(story().encode("utf-16-le"))
    code, line = fails_cleanly(train.main, "train.py", ["--txt_file", str(path), "--summary_path",
                                                        str(tmp_path / "run"), *TINY], capsys)
    assert code == 1 and "NUL characters" in line and not (tmp_path / "run").exists()


@pytest.mark.parametrize("option", ["--lstm_num_hidden", "--batch_size"])
def test_a_size_that_cannot_fit_is_refused_before_allocating(book, tmp_path, capsys, option):
    argv = ["--txt_file", str(book), "--summary_path", str(tmp_path / "run"), option, str(10**12)]
    code, line = fails_cleanly(train.main, "train.py", argv, capsys)
    assert code == 1 and "more than this machine's" in line and not (tmp_path / "run").exists()
