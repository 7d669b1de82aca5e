"""The part 1 experiments: gradients over time, the resumable sweep."""
import csv
import re

import pytest
import torch
import torch.nn as nn

from part1.dataset import PalindromeDataset
from part1.experiments import plot
from part1.grads_over_time import hidden_state_grads
from part1.lstm import LSTM
from part1.vanilla_rnn import VanillaRNN
from tests.scripts import ROOT, run_script

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
    from part1.train import code_commit

    assert {r["commit"] for r in rows} == {code_commit()}  # the code each row was made with
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


def run_row(T, seed, accuracy, check=False, recipe="onehot", model="RNN"):
    return {"recipe": recipe, "model": model, "palindrome_length": str(T), "seed": str(seed), "check": str(check),
            "eval_accuracy": f"{accuracy:.4f}", "solved": str(accuracy >= 0.99)}


def test_rules_solved_failed_and_the_horizon():
    from part1.experiments import rules

    assert rules.solved(run_row(5, 0, 0.99)) and not rules.solved(run_row(5, 0, 0.9899))
    assert rules.failed_seeds([run_row(5, s, a) for s, a in ((2, 0.1), (0, 0.5), (1, 1.0))]) == [0, 2]
    rows = [run_row(T, s, 1.0) for T in (5, 10) for s in range(3)] + [run_row(10, 3, 0.97)]  # mean 0.9925
    rows += [run_row(15, s, a) for s, a in enumerate((1.0, 1.0, 0.96))]  # mean 0.9867: not mastered
    rows += [run_row(20, 0, 1.0), run_row(20, 0, 0.1, check=True)]  # one seed: its main pass is under way
    table = rules.by_length(rows, "onehot", "RNN")
    assert sorted(table) == [5, 10, 15, 20] and len(table[10]) == 4  # the check run is not in the table
    assert rules.horizon(table) == 10
    assert rules.horizon(table, min_seeds=1) == 20
    assert rules.horizon({5: [run_row(5, 0, 0.5)] * 3}) is None
    assert rules.first_past([20, 5, 10, 15], 10) == 15 and rules.first_past([5, 10], 10) is None
    assert rules.first_past([10, 5], None) == 5


def test_rules_stop_climbing_after_two_lengths_where_every_main_seed_failed():
    from part1.experiments import rules

    table = {5: [run_row(5, s, 1.0) for s in range(3)], 10: [run_row(10, s, 0.1) for s in range(3)],
             15: [run_row(15, s, 0.2) for s in range(3)]}
    assert rules.stopped_climbing(table, [5, 10, 15, 20], 20) == (10, 15)
    assert rules.stopped_climbing(table, [5, 10, 15, 20], 15) is None  # only one failed length below 15
    table[15] = table[15][:2]  # a seed still to run at T = 15
    assert rules.stopped_climbing(table, [5, 10, 15, 20], 20) is None
    table[15].append(run_row(15, 2, 0.995))  # one seed solved it
    assert rules.stopped_climbing(table, [5, 10, 15, 20], 20) is None


def test_rules_convergence_check_verdict():
    from part1.experiments import rules

    runs = [run_row(15, s, a) for s, a in enumerate((1.0, 0.5, 1.0))]
    assert rules.check_verdict([run_row(15, s, 1.0) for s in range(3)], []) == ({}, None)  # nothing failed
    assert rules.check_verdict(runs, []) == ({}, "pending")
    solved_check = run_row(15, 0, 0.2, check=True)  # the check of a run that solved does not count
    assert rules.check_verdict(runs, [solved_check]) == ({}, "pending")
    moved = run_row(15, 1, 0.98, check=True)  # mean (1 + 0.98 + 1) / 3 >= 0.99
    assert rules.check_verdict(runs, [moved, solved_check]) == ({1: moved}, "moves")
    assert rules.check_verdict(runs, [run_row(15, 1, 0.9, check=True)])[1] == "stands"


def test_the_sweep_and_the_tables_use_the_same_rules():
    from part1.experiments import plot, rules, sweep

    defaults = sweep.build_parser().parse_args([])
    assert tuple(defaults.seeds) == rules.MAIN_SEEDS and tuple(defaults.near_seeds) == rules.NEAR_SEEDS
    assert plot.MAIN_SEEDS == len(rules.MAIN_SEEDS) and plot.FIVE_SEEDS == ("0", "1", "2", "3", "4")
    # The tables' horizon and next length are where the sweep puts its near seeds and its checks.
    lengths = sweep.RECIPES["onehot"]["RNN"]["lengths"]
    rows = [run_row(T, s, 1.0) for T in lengths[:3] for s in range(3)]
    rows += [run_row(T, s, a) for T in lengths[3:5] for s, a in enumerate((0.1, 1.0, 0.2))]
    rows += [run_row(T, s, 0.1) for T in lengths[5:] for s in range(3)]
    todo, _ = sweep.plan(rows, sweep.build_parser().parse_args(["--recipes", "onehot", "--models", "RNN"]))
    table = plot.sweep_table(rows)
    [horizon] = plot.horizon_rows(table, plot.check_table(rows))
    assert (horizon["horizon"], horizon["next"]) == (lengths[2], lengths[3])
    assert sorted(todo) == sorted([("onehot", "RNN", T, s, False) for T in lengths[2:4] for s in (3, 4)]
                                  + [("onehot", "RNN", lengths[3], s, True) for s in (0, 2)])
    assert horizon["check"]["verdict"] == "pending" and horizon["check"]["solved"] == "--"


def test_sweep_rows_gain_a_commit_column_and_old_files_keep_their_rows(tmp_path):
    from part1 import common
    from part1.experiments import sweep

    path = tmp_path / "runs.csv"
    old_columns = [c for c in sweep.COLUMNS if c != "commit"]
    sweep.append_rows(path, old_columns, [{c: f"old {c}" for c in old_columns}])
    sweep.append_rows(path, sweep.COLUMNS, [{c: f"new {c}" for c in sweep.COLUMNS}])
    old, new = common.read_csv(path)
    assert list(old) == sweep.COLUMNS
    assert old == {c: "not recorded" if c == "commit" else f"old {c}" for c in sweep.COLUMNS}
    assert new == {c: f"new {c}" for c in sweep.COLUMNS}
    with pytest.raises(ValueError, match=r"runs.csv: columns \['commit'\] are not"):
        sweep.append_rows(path, old_columns, [{c: "x" for c in old_columns}])  # a file of a newer sweep


def test_a_damaged_saved_state_or_checkpoint_stops_the_script_in_one_line(tmp_path):
    partial = tmp_path / "ckpt" / "onehot_RNN_T3_seed0.partial.pt"
    partial.parent.mkdir()
    partial.write_bytes(b"PK\x03\x04 half a file")
    proc = run("part1/experiments/sweep.py", "--recipes", "onehot", "--models", "RNN", "--lengths", 3, "--seeds", 0,
               "--passes", "main", "--train_steps", 100, "--eval_size", 100, "--output", tmp_path / "acc.csv",
               "--curves", tmp_path / "c.csv", "--checkpoints", tmp_path / "ckpt")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.splitlines() == [proc.stderr.strip()] and str(partial) in proc.stderr
    assert not (tmp_path / "acc.csv").exists()
    broken = tmp_path / "rnn.pt"
    broken.write_bytes(b"not a checkpoint")
    proc = run("part1/grads_over_time.py", "--trained", "--rnn_checkpoint", broken, "--output", tmp_path / "g.csv",
               "--figure", tmp_path / "g.png")
    assert proc.returncode == 1 and proc.stderr.splitlines() == [proc.stderr.strip()] and str(broken) in proc.stderr


def test_grads_over_time_writes_the_same_bytes_on_rerun_in_a_fixed_row_order(tmp_path):
    out, fig = tmp_path / "grads.csv", tmp_path / "grads.png"
    # Rows of the other kind (trained) first, as an earlier --trained run leaves them.
    trained = [f"{model},True,{t},{1 / t:.3e}" for model in ("LSTM", "RNN") for t in (2, 1)]
    out.write_text("\n".join(["model,trained,t,grad_norm", *trained]) + "\n")
    args = ("part1/grads_over_time.py", "--palindrome_length", 6, "--batch_size", 3, "--num_hidden", 4,
            "--output", out, "--figure", fig)
    assert run(*args).returncode == 0
    first = out.read_bytes()
    assert run(*args).returncode == 0
    assert out.read_bytes() == first
    rows = list(csv.DictReader(open(out)))
    assert [(r["model"], r["trained"], r["t"]) for r in rows] == (
        [(m, "False", str(t)) for m in ("RNN", "LSTM", "LSTM b_f=1", "RNN W_hh=I", "LSTM chrono")
         for t in range(1, 6)]
        + [(m, "True", str(t)) for m in ("RNN", "LSTM") for t in (1, 2)])
    assert all(re.fullmatch(r"\d\.\d{3}e[-+]\d\d", r["grad_norm"]) for r in rows)  # 4 digits: see measure()


def test_grads_over_time_measures_in_float64_and_leaves_the_model_alone():
    from part1.grads_over_time import measure

    torch.manual_seed(0)
    model = VanillaRNN(30, 10, 16, 10)
    x, y = PalindromeDataset(31).sample_batch(8, torch.Generator().manual_seed(0))
    norms = measure(model, x, y)
    assert norms.dtype == torch.float64 and model.W_hh.dtype == torch.float32
    assert torch.allclose(norms, hidden_state_grads(model.double(), x, y).norm(dim=2).mean(dim=1), rtol=0, atol=0)


def sweep_args(tmp_path, *more):
    return ["--recipes", "onehot", "--models", "RNN", "--lengths", 3, 4, "--seeds", 0, "--passes", "main",
            "--train_steps", 200, "--eval_size", 300, "--output", tmp_path / "acc.csv",
            "--curves", tmp_path / "curves.csv", "--checkpoints", tmp_path / "ckpt", *more]


def test_a_run_under_way_in_another_sweep_is_left_to_it(tmp_path):
    from part1.common import OutputLock

    (tmp_path / "ckpt").mkdir()
    with OutputLock(tmp_path / "ckpt", "onehot_RNN_T3_seed0.lock"):  # another process runs T = 3
        proc = run("part1/experiments/sweep.py", *sweep_args(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert [r["palindrome_length"] for r in csv.DictReader(open(tmp_path / "acc.csv"))] == ["4"]
    assert "under way in another process" in proc.stdout
    again = run("part1/experiments/sweep.py", *sweep_args(tmp_path))  # the other one is gone: T = 3 runs
    assert sorted(r["palindrome_length"] for r in csv.DictReader(open(tmp_path / "acc.csv"))) == ["3", "4"]
    assert again.returncode == 0


def test_an_interrupted_sweep_exits_non_zero_and_keeps_a_finished_runs_state_until_its_row(tmp_path, monkeypatch):
    import os
    import signal

    from part1.experiments import sweep

    def main(*more):  # sweep.main in this process, so that its functions can be patched; the exit code
        try:
            sweep.main([str(a) for a in sweep_args(tmp_path, *more)])
        except SystemExit as e:
            return e.code
        except KeyboardInterrupt:
            return 130  # as common.run makes it
        return 0

    state = tmp_path / "ckpt" / "onehot_RNN_T3_seed0.partial.pt"
    sample_batch, calls = sweep.train_script.PalindromeDataset.sample_batch, []

    def interrupted_at_step_50(self, *args, **kwargs):  # Ctrl-C during training: the state is saved
        calls.append(1)
        if len(calls) == 50:
            os.kill(os.getpid(), signal.SIGINT)
        return sample_batch(self, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(sweep.train_script.PalindromeDataset, "sample_batch", interrupted_at_step_50)
        assert main() == 130 and state.exists()

    def killed_before_the_rows(*args):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(sweep, "record", killed_before_the_rows)
        assert main() == 130
    assert state.exists() and not (tmp_path / "acc.csv").exists()  # trained, not recorded: the state stays
    assert main() == 0
    assert not state.exists() and len(list(csv.DictReader(open(tmp_path / "acc.csv")))) == 2


def test_a_curve_written_twice_counts_once_the_last_time(tmp_path):
    from part1.experiments.sweep import CURVE_COLUMNS, read_curves

    path = tmp_path / "curves.csv"
    key = {"recipe": "onehot", "model": "RNN", "palindrome_length": 3, "seed": 0, "check": False}
    other = {**key, "seed": 1}
    points = [{**key, "step": s, "length": 3, "loss": 1.0, "accuracy": a} for s, a in ((100, 0.1), (200, 0.2))]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, CURVE_COLUMNS)
        writer.writeheader()
        writer.writerows(points)  # the run killed before its row: run again, its curve written again
        writer.writerow({**other, "step": 100, "length": 3, "loss": 2.0, "accuracy": 0.5})
        writer.writerows({**p, "accuracy": p["accuracy"] + 0.5} for p in points)
    rows = read_curves(path)
    assert [(r["seed"], r["step"], r["accuracy"]) for r in rows] == [("0", "100", "0.6"), ("0", "200", "0.7"),
                                                                     ("1", "100", "0.5")]


@pytest.mark.parametrize("name", ["acc.csv", "curves.csv"])
@pytest.mark.parametrize("content", [b"a,b\n1,2\n", b"\x8f\x00garbage\xff\n"], ids=["other columns", "binary"])
def test_a_results_file_that_is_not_the_sweeps_is_one_line_and_left_alone(tmp_path, content, name):
    path = tmp_path / name  # refused before any run, so no run's weights are written either
    path.write_bytes(content)
    proc = run("part1/experiments/sweep.py", *sweep_args(tmp_path))
    assert proc.returncode == 1 and len(proc.stderr.splitlines()) == 1 and str(path) in proc.stderr
    assert path.read_bytes() == content and not (tmp_path / "ckpt").exists()


def test_plotting_refuses_a_results_file_without_runs(tmp_path):
    (tmp_path / "sweep_runs.csv").write_text("")
    proc = run("part1/experiments/plot.py", "--results", tmp_path, "--figures", tmp_path / "figures",
               "--generated", tmp_path / "generated")
    assert proc.returncode == 1 and proc.stderr.strip().endswith("no runs yet (part1/experiments/sweep.py writes them)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep_runs.csv"]  # no empty figure or table


def test_the_report_benchmark_table_holds_every_ratio_of_benchmark_md_under_its_cpu_and_setting(tmp_path):
    """Each CPU's 1-thread and 2-thread sections become one block of the LaTeX table, side by side:
    every main-table row of benchmark.md appears there once, its cells in its setting's columns."""
    markdown = (ROOT / "part1" / "results" / "benchmark.md").read_text()
    path = tmp_path / "table.tex"
    plot.write_benchmark_table(markdown, path)
    table = path.read_text().splitlines()
    expected = {}  # (cpu, model, T) -> cells of every setting, in the order of the file
    cpu = None
    for line in markdown.splitlines():
        cells = [c.strip().strip("*") for c in line.strip().strip("|").split("|")]
        if line.startswith("## "):
            cpu = line[3:].split(" · ")[0]
        elif line.startswith("|") and len(cells) == 7 and cells[1].isdigit():
            expected.setdefault((cpu, cells[0], cells[1]), []).extend(cells[2:6])
    assert expected
    rows = [line for line in table if line.endswith(r"\\") and line.split(" & ")[0] in ("RNN", "LSTM")]
    assert len(rows) == len(expected)
    for (cpu, model, T), cells in expected.items():
        block = table[[i for i, line in enumerate(table) if rf"\emph{{{cpu}}}" in line][0]:]
        assert f"{model} & {T} & " + " & ".join(cells) + r" \\" in block
