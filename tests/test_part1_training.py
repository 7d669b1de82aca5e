"""Part 1 training rules on tiny configurations: when a run stops, the curriculum, divergence, the held-out
set, the sweep's plan (stop climbing, extra seeds, convergence check) and the tuned initialisations."""
import argparse
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from part1 import train as train_script
from part1.experiments import sweep

ROOT = Path(__file__).resolve().parent.parent


def config(**changes):
    base = vars(train_script.build_parser().parse_args([]))
    base.update({"num_hidden": 8, "batch_size": 16, "eval_size": 200, "device": "cpu", "input_length": 4})
    base.update(changes)
    return base


def test_a_run_at_chance_trains_its_whole_budget_however_short_the_patience():
    # A learning rate this small keeps the loss at ln 10: patience must not end the run.
    result, _ = train_script.train(config(input_length=9, learning_rate=1e-12, train_steps=400, min_steps=100,
                                          patience=100), progress=False)
    assert result["stop_reason"] == "budget"
    assert result["steps"] == result["steps_at_final_length"] == 400
    assert all(abs(p["loss"] - math.log(10)) < 0.1 for p in result["curve"])


def test_plateau_only_after_min_steps_once_the_loss_has_left_chance():
    # One hidden unit learns part of the task (loss well below ln 10) but can never solve it.
    result, _ = train_script.train(config(input_length=2, num_hidden=1, learning_rate=0.03, train_steps=5000,
                                          min_steps=300, patience=100), progress=False)
    assert result["stop_reason"] == "plateau"
    assert 300 <= result["steps"] < 5000
    assert min(p["loss"] for p in result["curve"]) < train_script.LEFT_CHANCE


def test_curriculum_grows_the_length_and_records_where_it_ended(monkeypatch):
    monkeypatch.setattr(train_script, "CURRICULUM_START", 2)
    result, _ = train_script.train(config(input_length=4, curriculum=True, learning_rate=0.01, num_hidden=16,
                                          train_steps=3000), progress=False)
    lengths = [p["length"] for p in result["curve"]]
    assert lengths[0] == 2 and lengths == sorted(lengths) and set(lengths) == {2, 3, 4, 5}
    assert result["stop_reason"] == "solved" and result["final_length"] == 5
    first_at_T = next(p["step"] for p in result["curve"] if p["length"] == 5)
    assert result["steps_at_final_length"] == result["steps"] - first_at_T + train_script.WINDOW


def test_an_interrupted_run_saves_its_state_and_continues_step_for_step(tmp_path, monkeypatch):
    # A curriculum run interrupted (Ctrl-C) mid-way, then continued, must equal the uninterrupted run.
    monkeypatch.setattr(train_script, "CURRICULUM_START", 2)
    options = config(input_length=4, curriculum=True, learning_rate=0.01, num_hidden=16, train_steps=3000)
    whole, whole_model = train_script.train(options, progress=False)
    state = tmp_path / "run.partial.pt"

    sample_batch, calls = train_script.PalindromeDataset.sample_batch, []

    def interrupt_at_step_750(self, *args, **kwargs):  # mid-window: the window's sums must be saved too
        calls.append(1)
        if len(calls) == 750:
            os.kill(os.getpid(), signal.SIGINT)
        return sample_batch(self, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(train_script.PalindromeDataset, "sample_batch", interrupt_at_step_750)
        first, _ = train_script.train(options, progress=False, state_path=state)
    assert first["stop_reason"] == "interrupted" and first["steps"] % 100 and state.exists()
    assert math.isnan(first["eval_accuracy"])  # scored when it ends, not now
    other = {**options, "seed": 1}  # another run's state is not used
    model = train_script.build_model(other, "cpu")
    optimizer, generator = torch.optim.RMSprop(model.parameters()), torch.Generator()
    assert train_script.RunState.restore(state, other, torch.device("cpu"), model, optimizer, generator) is None
    rest, rest_model = train_script.train(options, progress=False, state_path=state)
    assert state.exists()  # until its caller has saved the result (the sweep deletes it after its rows)
    assert rest["curve"] == whole["curve"]
    assert (rest["steps"], rest["stop_reason"], rest["eval_accuracy"]) == (whole["steps"], "solved", whole["eval_accuracy"])
    for name, value in whole_model.state_dict().items():
        assert torch.equal(rest_model.state_dict()[name], value), name


def test_a_run_that_learns_and_then_collapses_is_scored_with_its_best_weights(monkeypatch):
    # The model learns T = 5, then its weights are wiped at every step from step 1,200 on (a collapse);
    # the rule "solved" never fires, so the run ends on its budget at chance.
    class Collapsing(torch.optim.RMSprop):
        steps = 0

        def step(self, closure=None):
            super().step(closure)
            Collapsing.steps += 1
            if Collapsing.steps >= 1200:
                with torch.no_grad():
                    for group in self.param_groups:
                        for p in group["params"]:
                            p.zero_()

    monkeypatch.setattr(train_script, "SOLVED_WINDOWS", 10**6)
    monkeypatch.setattr(train_script.torch.optim, "RMSprop", Collapsing)
    result, model = train_script.train(config(num_hidden=16, learning_rate=0.01, train_steps=1500), progress=False)
    assert result["stop_reason"] == "budget" and result["steps"] == 1500
    assert result["curve"][-1]["accuracy"] < 0.5  # at chance when it stopped
    assert result["scored_step"] < 1200 and result["eval_accuracy"] >= 0.99
    assert any(p.abs().sum() > 0 for p in model.parameters())  # the model returned is the one scored


def test_a_stuck_curriculum_spends_the_budget_at_its_length():
    result, _ = train_script.train(config(input_length=19, curriculum=True, learning_rate=1e-12, train_steps=300),
                                   progress=False)
    assert result["stop_reason"] == "budget" and result["final_length"] == train_script.CURRICULUM_START
    assert result["steps_at_final_length"] == 300


def test_divergence_ends_the_run_with_one_line():
    result, _ = train_script.train(config(learning_rate=1000, train_steps=300), progress=False)
    assert result["stop_reason"] == "diverged" and result["steps"] == train_script.WINDOW
    proc = subprocess.run([sys.executable, "part1/train.py", "--model_type", "LSTM", "--learning_rate", "1000",
                           "--train_steps", "300", "--num_hidden", "8", "--num_threads", "1", "--input_length", "4", "--eval_size", "100",
                           "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and "diverged" in proc.stderr
    assert "held-out accuracy" not in proc.stdout


def test_held_out_set_does_not_depend_on_the_training_seed(monkeypatch):
    seen = []
    monkeypatch.setattr(train_script, "evaluate", lambda model, x, y: (seen.append((x, y)), (0.0, 0.0))[1])
    for seed, eval_seed in ((0, 2019), (1, 2019), (0, 7)):
        train_script.train(config(seed=seed, eval_seed=eval_seed, train_steps=1), progress=False)
    (x0, y0), (x1, y1), (x7, _) = seen
    assert torch.equal(x0, x1) and torch.equal(y0, y1)
    assert not torch.equal(x0, x7)


def test_tuned_initialisations():
    lstm = train_script.build_model(config(model_type="LSTM", input_length=199, chrono=True), "cpu")
    assert torch.equal(lstm.b_i, -lstm.b_f)
    assert 0 <= lstm.b_f.min() and lstm.b_f.max() <= math.log(199) and lstm.b_f.std() > 0.1
    rnn = train_script.build_model(config(model_type="RNN", identity_init=True), "cpu")
    assert torch.equal(rnn.W_hh, torch.eye(8))


def sweep_args(**changes):
    args = sweep.build_parser().parse_args(["--recipes", "onehot", "--models", "RNN", "--lengths", "5", "10", "15",
                                            "20"])
    for key, value in changes.items():
        setattr(args, key, value)
    return args


def row(T, seed, accuracy, check=False):
    return {"recipe": "onehot", "model": "RNN", "palindrome_length": str(T), "seed": str(seed),
            "check": str(check), "eval_accuracy": str(accuracy)}


def test_sweep_stops_climbing_after_two_lengths_where_every_seed_failed():
    rows = [row(5, s, 1.0) for s in range(3)] + [row(T, s, 0.1) for T in (10, 15) for s in range(3)]
    todo, skipped = sweep.plan(rows, sweep_args(passes=["main"]))
    assert todo == [] and skipped == {("onehot", "RNN", 20, (10, 15))}
    # One seed that solves T = 15 keeps the climb going.
    rows[-1] = row(15, 2, 1.0)
    todo, _ = sweep.plan(rows, sweep_args(passes=["main"]))
    assert todo == [("onehot", "RNN", 20, 0, False), ("onehot", "RNN", 20, 1, False), ("onehot", "RNN", 20, 2, False)]


def test_sweep_adds_seeds_near_the_horizon_and_checks_the_next_length_with_twice_the_budget():
    rows = [row(T, s, 1.0) for T in (5, 10) for s in range(3)] + [row(T, s, 0.1) for T in (15, 20) for s in range(3)]
    args = sweep_args()
    todo, _ = sweep.plan(rows, args)
    assert sorted(todo) == sorted([("onehot", "RNN", T, s, False) for T in (10, 15) for s in (3, 4)]
                                  + [("onehot", "RNN", 15, s, True) for s in range(3)])
    # One solved seed at a length past those swept (run apart from the main pass) does not move the horizon.
    apart = sweep.plan(rows[:9] + [row(30, 0, 1.0)], sweep_args(lengths=[5, 10, 15]))[0]
    assert sorted(apart) == sorted(todo)
    normal, check = (sweep.run_config(args, "onehot", "RNN", 15, 0, c) for c in (False, True))
    for key in ("train_steps", "min_steps", "patience"):
        assert check[key] == 2 * normal[key]
    assert normal["train_steps"] >= 10000 and normal["min_steps"] >= 10000


def test_sweep_checks_only_the_runs_that_failed_the_next_length():
    """A check repeats a failed run with twice the budget; a run that solved has nothing to check."""
    rows = [row(T, s, 1.0) for T in (5, 10) for s in range(5)] + [row(15, s, acc) for s, acc in
                                                                   enumerate((1.0, 0.2, 1.0, 0.1, 1.0))]
    rows += [row(20, s, 0.1) for s in range(3)]
    checks = [run for run in sweep.plan(rows, sweep_args(passes=["check"]))[0] if run[4]]
    assert checks == [("onehot", "RNN", 15, 1, True), ("onehot", "RNN", 15, 3, True)]


def test_sweep_shards_take_disjoint_runs():
    shares = [sweep.plan([], sweep_args(shard=(i, 3)))[0] for i in range(3)]
    assert sum(map(len, shares)) == len(set().union(*map(set, shares))) == 3 * 4
    with pytest.raises(argparse.ArgumentTypeError):
        sweep.shard("3/3")


def test_sweep_length_filters_split_the_main_pass_without_overlap():
    low = sweep.plan([], sweep_args(max_length=10))[0]
    high = sweep.plan([], sweep_args(min_length=15))[0]
    assert {run[2] for run in low} == {5, 10} and {run[2] for run in high} == {15, 20}
    assert sorted(low + high) == sorted(sweep.plan([], sweep_args())[0])
    # Lengths outside the filter still count as the main pass's: no near or check runs before they are done.
    rows = [row(T, s, 1.0) for T in (5, 10) for s in range(3)]
    assert sweep.plan(rows, sweep_args(max_length=10))[0] == []


def test_probe_reads_a_linearly_stored_digit_and_not_noise():
    from part1.experiments.probe import probe_accuracy

    generator = torch.Generator().manual_seed(0)
    digits = torch.randint(0, 10, (2, 400), generator=generator)
    noise = torch.randn(2, 2, 400, 16, generator=generator)
    # t = 1 stores the digit one-hot in the first 10 units; t = 2 holds noise only.
    features = noise.clone()
    features[:, 0, :, :10] += 6 * torch.nn.functional.one_hot(digits, 10)
    accuracy = probe_accuracy(features[0], digits[0], features[1], digits[1])
    assert accuracy[0] > 0.95 and accuracy[1] < 0.3


def saved_state(path, options, **changes):
    """A state as an interrupted run saves it, with `changes` to its saved dict."""
    device = torch.device("cpu")
    model = train_script.build_model(options, device)
    optimizer = torch.optim.RMSprop(model.parameters())
    train_script.RunState.fresh(5, device).save(path, options, device, model, optimizer, torch.Generator())
    if changes:
        torch.save({**torch.load(path, weights_only=True), **changes}, path)
    return path


class RunsCode:
    """Unpickled without weights_only, this creates the file `marker`: a file that runs code when loaded."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def test_a_state_that_would_run_code_or_is_truncated_is_refused_in_one_line(tmp_path):
    options = config(train_steps=200)
    marker = tmp_path / "code_ran"
    evil = tmp_path / "evil.partial.pt"
    torch.save({"options": train_script.run_options(options), "run": RunsCode(marker)}, evil)
    torch.load(evil, weights_only=False)  # the threat is real: loading it the old way runs its code
    assert marker.exists()
    marker.unlink()
    with pytest.raises(ValueError, match=r"evil.partial.pt: refused: it holds objects other than") as err:
        train_script.train(options, progress=False, state_path=evil)
    assert not marker.exists() and len(str(err.value).splitlines()) == 1
    truncated = saved_state(tmp_path / "cut.partial.pt", options)
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"cut.partial.pt: cannot be read as a saved run state") as err:
        train_script.train(options, progress=False, state_path=truncated)
    assert len(str(err.value).splitlines()) == 1
    foreign = tmp_path / "list.partial.pt"
    torch.save([1, 2, 3], foreign)
    with pytest.raises(ValueError, match=r"list.partial.pt: not a saved run state"):
        train_script.train(options, progress=False, state_path=foreign)


@pytest.mark.parametrize("changes", [{"code": "0123456789abcdef"}, {"version": train_script.STATE_VERSION + 1}],
                         ids=["other code", "other version"])
def test_a_state_saved_by_other_code_is_not_continued(tmp_path, changes):
    options = config(train_steps=200)
    path = saved_state(tmp_path / "run.partial.pt", options, **changes)
    with pytest.raises(ValueError, match=r"run.partial.pt: saved by other code, PyTorch or machine .* delete it"):
        train_script.train(options, progress=False, state_path=path)
    assert path.exists()  # left for the user to delete
    # Unchanged, the same state continues (from step 0 here); its caller deletes it once the result is saved.
    result, _ = train_script.train(options, progress=False, state_path=saved_state(path, options))
    assert result["steps"] == 200 and path.exists()


def test_a_state_saved_before_states_had_a_version_is_refused(tmp_path):
    options = config(train_steps=200)
    path = saved_state(tmp_path / "old.partial.pt", options)
    old = torch.load(path, weights_only=True)
    torch.save({k: v for k, v in old.items() if k not in ("version", "code", "commit")}, path)
    with pytest.raises(ValueError, match=r"commit unknown, state version 1; here .*, version 2"):
        train_script.train(options, progress=False, state_path=path)


def test_a_foreign_or_damaged_checkpoint_is_one_line_naming_the_file(tmp_path):
    model = train_script.build_model(config(), "cpu")
    good = tmp_path / "good.pt"
    train_script.save_checkpoint(good, config(), model)
    assert torch.equal(train_script.load_checkpoint(good)[0].W_ph, model.W_ph)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[:100])
    other = tmp_path / "other.pt"
    torch.save({"options": {**config(), "num_hidden": 9}, "model": model.state_dict()}, other)
    marker = tmp_path / "code_ran"
    evil = tmp_path / "evil.pt"
    torch.save({"options": config(), "model": RunsCode(marker)}, evil)
    for path, message in ((cut, "cannot be read"), (other, "not a checkpoint of part1/train.py"), (evil, "refused")):
        with pytest.raises(ValueError, match=f"{path.name}: {message}") as err:
            train_script.load_checkpoint(path)
        assert len(str(err.value).splitlines()) == 1
    assert not marker.exists()


def test_every_result_records_its_commit(tmp_path, monkeypatch):
    head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    result, _ = train_script.train(config(train_steps=1), progress=False)
    if head.returncode == 0:
        assert result["commit"] in (head.stdout.strip(), head.stdout.strip() + "+changes")
    monkeypatch.setattr(train_script, "ROOT", tmp_path)  # not a git checkout
    assert train_script.code_commit() == "unknown"


def test_the_progress_bar_counts_steps_without_a_total_the_run_may_never_reach():
    from tests.scripts import run_script

    proc = run_script("part1/train.py", "--input_length", "2", "--train_steps", "300", "--num_hidden", "8",
                      "--eval_size", "100", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert "step" in proc.stderr and "/300" not in proc.stderr and "%|" not in proc.stderr


def test_the_stopping_rules_verdict_on_a_window():
    rules = train_script.StoppingRules(config(input_length=19, train_steps=1000, min_steps=500, patience=200,
                                              curriculum=True))
    assert rules.first_length() == train_script.CURRICULUM_START == 10
    assert train_script.StoppingRules(config(input_length=19)).first_length() == 20

    def window(length, loss, accuracy, step=100, **counters):
        state = train_script.RunState.fresh(length, "cpu")
        state.step, state.curve = step, [{"step": step, "length": length, "loss": loss, "accuracy": accuracy}]
        for name, value in counters.items():
            setattr(state, name, value)
        return rules.judge(state)

    Verdict = train_script.Verdict
    assert window(10, math.nan, 1.0) == Verdict("diverged")
    assert window(10, 0.01, 0.99) == Verdict(grow=True)  # before T: the curriculum grows, nothing else counts
    assert window(10, 0.01, 0.98, step=1000) == Verdict("budget")
    assert window(20, 0.01, 0.99) == Verdict(candidate=True)
    assert window(20, 0.0, 1.0, solved_windows=train_script.SOLVED_WINDOWS) == Verdict("solved", candidate=True)
    # A plateau needs min_steps at the length, a loss that left chance, and patience spent since its best.
    stuck = {"best_loss": 1.0, "best_step": 300}
    assert window(20, 1.0, 0.5, step=500, **stuck) == Verdict("plateau")
    assert window(20, 1.0, 0.5, step=499, **stuck) == Verdict()
    assert window(20, 1.0, 0.5, step=600, best_loss=train_script.LEFT_CHANCE, best_step=300) == Verdict()
    assert window(20, 1.0, 0.5, step=600, best_loss=1.0, best_step=401) == Verdict()
    # The budget ends mid-window too: its partial window is still checked for divergence.
    state = train_script.RunState.fresh(20, "cpu")
    state.step, state.loss_sum = 1050, torch.tensor(50 * 2 * train_script.EXPLODED_LOSS)
    assert rules.at_budget(state) == "diverged"
    state.loss_sum.fill_(50.0)
    assert rules.at_budget(state) == "budget"
    state.step = 999
    assert rules.at_budget(state) is None
