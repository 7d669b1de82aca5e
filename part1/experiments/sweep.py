"""Accuracy versus palindrome length (Questions 1.3 and 1.6): many runs of train.py, one CSV row each.

    python part1/experiments/sweep.py                       # everything, resumable, most informative runs first
    python part1/experiments/sweep.py --dry_run             # the plan so far and an upper bound on its time
    python part1/experiments/sweep.py --shard 0/4           # a quarter of the runs (SLURM arrays)
    python part1/experiments/sweep.py --recipes onehot --lengths 5 10 --seeds 0   # a quick look
    python part1/experiments/sweep.py --models LSTM --min_length 75 --device cuda  # the long LSTM runs on a GPU

Every run trains until it is solved or has spent its step budget at its final length (train.py's
rule: nothing is called unsolved before --train_steps steps at the final length) and is scored on
10,000 held-out palindromes, with its best weights on the validation set if it stopped unsolved
(train.py; scored_step says which step's); its row says whether it solved (held-out accuracy >= 0.99). The sweep
goes in three passes, each planned afresh from the CSV after every run:

  main:  every recipe, model and length with --seeds (3 seeds), in order of information: first the
         PRIORITY runs, then by length. A recipe stops climbing in T once every seed failed at two
         successive lengths (the log says so; plot.py marks the lengths as not run).
  near:  --near_seeds more seeds (5 in all) at the horizon and the first length past it, once the
         main pass of that recipe and model is complete.
  check: the runs that did not solve the first length past the horizon, again with twice the budget
         (train_steps, min_steps and patience doubled): the convergence check. On the same machine and code a
         check run repeats its run step for step and then goes on. If the horizon moves with the
         check runs in place of those they repeat, the budget decided it.

The horizon of a recipe and model is the longest swept T whose mean held-out accuracy over the
seeds run at the normal budget is >= 0.99. A finished run (same recipe, model, T, seed and check)
is skipped, so an interrupted sweep resumes where it stopped: Ctrl-C (or SIGINT) ends the current run
after its current step and saves its state in --checkpoints, and the next sweep continues that run
step for step on the same kind of device. A run whose loss diverges is run
again with half the learning rate (at most 3 times; the row records the rate used). T is the
palindrome length; the model reads T - 1 digits.
"""
import argparse
import csv
import fcntl
import json
import shutil
import sys
import time
import zlib
from pathlib import Path

import torch

from part1 import common
from part1 import train as train_script
from part1.experiments import rules

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "part1" / "results"

TEMPLATE_LENGTHS = [5, 10, 15, 20, 25, 30, 40, 50, 75, 100]
# Each recipe changes train.py's defaults (the course template's: RMSprop, lr 1e-3, batch 128, 128 hidden
# units, clipping at 10) per model. "learning_rate" may map a length to the rate used from that length up
# ("you might need to adjust the learning rate", says the assignment).
RECIPES = {
    "onehot": {
        "about": "template recipe, one-hot digits",
        "RNN": {"options": {"input_dim": 10}, "lengths": TEMPLATE_LENGTHS},
        "LSTM": {"options": {"input_dim": 10}, "lengths": TEMPLATE_LENGTHS},
    },
    "raw": {
        "about": "template recipe, raw digit value as input (the template's input_dim 1)",
        "RNN": {"options": {"input_dim": 1}, "lengths": TEMPLATE_LENGTHS},
        "LSTM": {"options": {"input_dim": 1}, "lengths": TEMPLATE_LENGTHS},
    },
    "tuned": {
        "about": "one-hot, curriculum; RNN: identity W_hh, lr 3e-4; LSTM: chrono init",
        "RNN": {"options": {"input_dim": 10, "curriculum": True, "identity_init": True, "learning_rate": 3e-4},
                "lengths": [5, 10, 20, 30, 40, 50, 75, 100, 150, 200, 300, 500]},
        "LSTM": {"options": {"input_dim": 10, "curriculum": True, "chrono": True},
                 "lengths": [5, 10, 20, 30, 50, 75, 100, 150, 200, 300, 500]},
    },
    # Ablations of the LSTM recipes: one ingredient at a time.
    "curriculum": {
        "about": "LSTM ablation: one-hot, curriculum alone",
        "LSTM": {"options": {"input_dim": 10, "curriculum": True}, "lengths": [5, 10, 20, 30, 50, 75, 100, 150, 200]},
    },
    "forget_bias": {
        "about": "LSTM ablation: one-hot, forget-gate bias 1 alone",
        "LSTM": {"options": {"input_dim": 10, "forget_bias": 1.0}, "lengths": [5, 10, 20, 30, 50, 75, 100, 150, 200]},
    },
    "chrono": {
        "about": "LSTM ablation: one-hot, chrono init alone",
        "LSTM": {"options": {"input_dim": 10, "chrono": True}, "lengths": [5, 10, 20, 30, 50, 75, 100, 150, 200]},
    },
}
# The runs that answer the report's open questions first: the tuned LSTM at T = 200, the template LSTM
# where the old rule gave up after 1,600 steps at chance and the tuned RNN at T = 30, seed by seed, round
# robin; then the runs whose weights are committed to results/checkpoints/ (grads_over_time.py --trained
# and probe.py read them).
PRIORITY = [("tuned", "LSTM", 200), ("onehot", "LSTM", 20), ("tuned", "RNN", 30), ("onehot", "LSTM", 25),
            ("onehot", "LSTM", 30)]
COMMITTED = [("tuned", "LSTM", 100, 0), ("tuned", "RNN", 100, 0), ("tuned", "LSTM", 30, 0), ("tuned", "RNN", 30, 0),
             ("onehot", "RNN", 30, 0), ("onehot", "LSTM", 30, 0)]
TRAIN_STEPS, MIN_STEPS, PATIENCE = 10000, 10000, 2000  # budget per length (the public solutions' 10,000)
MAX_HALVINGS = 3  # a diverging run is retried with half the learning rate at most this often
LOG_EVERY = 1000  # steps between the progress lines of a run
COLUMNS = ["recipe", "model", "palindrome_length", "seed", "check", "solved", "eval_accuracy", "eval_loss", "steps",
           "scored_step", "steps_at_final_length", "final_length", "stop_reason", "train_steps", "min_steps", "patience",
           "train_loss", "train_accuracy", "wall_time", "input_dim", "learning_rate", "lr_halvings", "forget_bias",
           "chrono", "identity_init", "curriculum", "device", "machine", "commit"]
# The value of a column a row was written without (an older file's rows: see append_rows).
NOT_RECORDED = "not recorded"
CURVE_COLUMNS = ["recipe", "model", "palindrome_length", "seed", "check", "step", "length", "loss", "accuracy"]


def shard(text):
    try:
        index, count = (int(v) for v in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected i/n, got {text}") from None
    if not 0 <= index < count:
        raise argparse.ArgumentTypeError(f"expected i/n with 0 <= i < n, got {text}")
    return index, count


def append_rows(path, columns, rows):
    """Append under a file lock, so that shards running side by side can share one CSV. A file written
    before a column existed is first rewritten with it, its old rows saying NOT_RECORDED there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", newline="") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        header = next(csv.reader(f), None)
        writer = csv.DictWriter(f, columns)
        if header is not None and header != columns:
            if set(header) - set(columns):
                raise ValueError(f"{path}: columns {sorted(set(header) - set(columns))} are not the sweep's")
            f.seek(0)
            old = list(csv.DictReader(f))
            f.truncate(0)
            writer.writeheader()
            writer.writerows({c: r.get(c, NOT_RECORDED) for c in columns} for r in old)
            f.flush()
        common.append_csv_rows(path, columns, rows)  # whole rows in one write, under this lock


def read_curves(path):
    """The rows of sweep_curves.csv, each run's curve once: a run killed between writing its curve and its
    row is run again, and then only its last curve counts (a step that does not grow starts a new curve)."""
    rows = common.read_csv(path, missing_ok=True)
    missing = [c for c in ("recipe", "model", "palindrome_length", "seed", "check", "step") if rows and c not in rows[0]]
    if missing:
        raise ValueError(f"{path}: not a sweep curves file (no column {', '.join(missing)})")
    curves = {}
    for row in rows:
        key = run_key(row)
        if key in curves and int(row["step"]) <= int(curves[key][-1]["step"]):
            curves[key] = []
        curves.setdefault(key, []).append(row)
    return [row for rows in curves.values() for row in rows]


def read_runs(path):
    """The rows of sweep_runs.csv ([] before the first run); a file that is not one is a ValueError."""
    rows = common.read_csv(path, missing_ok=True)
    missing = [c for c in ("recipe", "model", "palindrome_length", "seed", "check", "eval_accuracy")
               if rows and c not in rows[0]]
    if missing:
        raise ValueError(f"{path}: not a sweep results file (no column {', '.join(missing)})")
    return rows


def run_key(row):
    return row["recipe"], row["model"], int(row["palindrome_length"]), int(row["seed"]), row["check"] == "True"


def main_runs(recipes, models, seeds, lengths):
    """The main pass in order: PRIORITY runs seed by seed, then by length, recipe and model."""
    selected = {(recipe, model, T) for recipe in recipes for model in models if model in RECIPES[recipe]
                for T in (lengths or RECIPES[recipe][model]["lengths"])}
    first = [(recipe, model, T, seed) for seed in seeds for recipe, model, T in PRIORITY
             if (recipe, model, T) in selected]
    first += [run for run in COMMITTED if run[:3] in selected and run[3] in seeds and run not in first]
    order = {recipe: k for k, recipe in enumerate(RECIPES)}
    rest = [(recipe, model, T, seed) for recipe, model, T in sorted(selected, key=lambda k: (k[2], order[k[0]], k[1]))
            for seed in seeds if (recipe, model, T, seed) not in first]
    return [(*run, False) for run in first + rest]


def plan(rows, args):
    """The runs still to do for this shard, most informative first, and the lengths skipped (for the log)."""
    done = {run_key(r) for r in rows}
    index, count = args.shard
    todo, skipped, pending = [], set(), set()
    for k, run in enumerate(main_runs(args.recipes, args.models, args.seeds, args.lengths)):
        recipe, model, T = run[:3]
        if run in done:
            continue
        lengths = args.lengths or RECIPES[recipe][model]["lengths"]
        reason = rules.stopped_climbing(rules.by_length(rows, recipe, model), lengths, T, args.seeds)
        if reason:
            skipped.add((recipe, model, T, reason))
            continue
        pending.add((recipe, model))  # also outside --min_length/--max_length: its main pass is not complete
        if args.min_length <= T <= args.max_length and k % count == index:
            todo.append(run)
    # The near and check passes of a recipe and model wait for its main pass; shards split them by a hash.
    for recipe in args.recipes:
        for model in args.models:
            if model not in RECIPES[recipe] or (recipe, model) in pending:
                continue
            runs = rules.by_length(rows, recipe, model)
            # As in the tables: a length with fewer runs than the main pass (run apart, say) is not a horizon.
            h = rules.horizon(runs, len(args.seeds))
            past = rules.first_past(args.lengths or RECIPES[recipe][model]["lengths"], h)
            extra = []
            if "near" in args.passes:
                extra += [(recipe, model, T, seed, False) for T in (h, past) if T for seed in args.near_seeds]
            if "check" in args.passes and past:
                extra += [(recipe, model, past, seed, True) for seed in rules.failed_seeds(runs.get(past, []))]
            todo += [run for run in extra if run not in done and zlib.crc32(repr(run).encode()) % count == index]
    return todo, skipped


def run_config(args, recipe, model_type, T, seed, check):
    defaults = vars(train_script.build_parser().parse_args([]))
    options = dict(RECIPES[recipe][model_type]["options"])
    rate = options.pop("learning_rate", defaults["learning_rate"])
    if isinstance(rate, dict):
        rate = [lr for from_T, lr in sorted(rate.items()) if from_T <= T][-1]
    scale = 2 if check else 1
    return {**defaults, **options, "model_type": model_type, "input_length": T - 1, "seed": seed,
            "learning_rate": rate, "train_steps": scale * args.train_steps, "min_steps": scale * args.min_steps,
            "patience": scale * args.patience, "eval_size": args.eval_size, "device": args.device,
            "num_threads": args.num_threads, "output": None, "checkpoint": None}


def step_seconds(model, T):
    """Rough seconds per training step on one core of the development machine (batch 128, 128 hidden units)."""
    return {"RNN": 0.8e-3, "LSTM": 2.0e-3}[model] * T


def build_parser():
    parser = common.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--models", nargs="+", default=["RNN", "LSTM"], choices=["RNN", "LSTM"])
    parser.add_argument("--lengths", nargs="+", type=int, help="palindrome lengths T (>= 2); default: each recipe's own")
    parser.add_argument("--min_length", type=int, default=2,
                        help="run only the main-pass lengths T >= this (e.g. to give the long runs to a GPU)")
    parser.add_argument("--max_length", type=int, default=10**9, help="run only the main-pass lengths T <= this")
    parser.add_argument("--seeds", nargs="+", type=int, default=list(rules.MAIN_SEEDS), help="seeds of the main pass")
    parser.add_argument("--near_seeds", nargs="*", type=int, default=list(rules.NEAR_SEEDS),
                        help="more seeds at the horizon and the first length past it")
    parser.add_argument("--passes", nargs="+", default=["main", "near", "check"], choices=["main", "near", "check"])
    parser.add_argument("--train_steps", type=int, default=TRAIN_STEPS, help="step budget per length (train.py)")
    parser.add_argument("--min_steps", type=int, default=MIN_STEPS, help="see train.py --min_steps")
    parser.add_argument("--patience", type=int, default=PATIENCE, help="see train.py --patience")
    parser.add_argument("--eval_size", type=int, default=10000)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--num_threads", type=int, default=1,
                        help="torch threads per run (1 is fastest per core when several shards share a machine)")
    parser.add_argument("--shard", type=shard, default=(0, 1), help="i/n: run only the i-th of n shares of the runs")
    parser.add_argument("--output", type=Path, default=RESULTS / "sweep_runs.csv")
    parser.add_argument("--curves", type=Path, default=RESULTS / "sweep_curves.csv")
    parser.add_argument("--checkpoints", type=Path, default=ROOT / "part1" / "checkpoints",
                        help="folder for each run's trained weights")
    parser.add_argument("--dry_run", action="store_true", help="print the plan and an upper bound on its time, run nothing")
    return parser


def train_with_halvings(config, name, state_path):
    """train.py's run, logged every LOG_EVERY steps; a run that diverges again with half the learning rate
    (at most MAX_HALVINGS times). Returns (result, model, halvings)."""
    start, halvings = time.time(), 0

    def log(point):
        if point["step"] % LOG_EVERY == 0:
            print(f"  {name}: step {point['step']}, length {point['length']}, window loss {point['loss']:.4f}, "
                  f"accuracy {point['accuracy']:.4f} ({time.time() - start:.0f} s)", flush=True)

    while True:
        result, model = train_script.train(config, progress=False, on_window=log, state_path=state_path)
        if result["stop_reason"] != "diverged" or halvings == MAX_HALVINGS:
            return result, model, halvings
        halvings += 1
        config["learning_rate"] /= 2
        print(f"  diverged after {result['steps']} steps: again with learning rate {config['learning_rate']:g}")


def record(args, run, name, config, result, model, halvings):
    """A finished run: its weights (also to results/checkpoints/ for a COMMITTED run), its curve, its row."""
    recipe, model_type, T, seed, check = run
    train_script.save_checkpoint(args.checkpoints / f"{name}.pt", config, model)
    committed = args.output.parent / "checkpoints"  # beside the CSV: results/checkpoints/
    if run[:4] in COMMITTED and not check and committed.resolve() != args.checkpoints.resolve():
        committed.mkdir(parents=True, exist_ok=True)
        shutil.copy(args.checkpoints / f"{name}.pt", committed / f"{name}.pt")
        summary = {key: value for key, value in result.items() if key != "curve"}
        (committed / f"{name}.json").write_text(json.dumps(summary, indent=1) + "\n")
    key = {"recipe": recipe, "model": model_type, "palindrome_length": T, "seed": seed, "check": check}
    # The curve first, then the run's row: a run is recorded only once both are on disk. A kill between
    # the two leaves a curve without its row; the run is then run again and the reader keeps the last curve.
    append_rows(args.curves, CURVE_COLUMNS, [{**key, **point} for point in result["curve"]])
    last = result["curve"][-1] if result["curve"] else {"loss": float("nan"), "accuracy": float("nan")}
    append_rows(args.output, COLUMNS, [{
        **key, "solved": result["eval_accuracy"] >= rules.SOLVED, "eval_accuracy": f"{result['eval_accuracy']:.4f}",
        "eval_loss": f"{result['eval_loss']:.4f}", "steps": result["steps"], "scored_step": result["scored_step"],
        "steps_at_final_length": result["steps_at_final_length"], "final_length": result["final_length"],
        "stop_reason": result["stop_reason"], "train_steps": config["train_steps"],
        "min_steps": config["min_steps"], "patience": config["patience"], "train_loss": f"{last['loss']:.4f}",
        "train_accuracy": f"{last['accuracy']:.4f}", "wall_time": f"{result['wall_time']:.1f}",
        "input_dim": config["input_dim"], "learning_rate": config["learning_rate"], "lr_halvings": halvings,
        "forget_bias": config["forget_bias"] if model_type == "LSTM" else "",
        "chrono": config["chrono"] if model_type == "LSTM" else "",
        "identity_init": config["identity_init"] if model_type == "RNN" else "",
        "curriculum": config["curriculum"], "device": result["device"],
        "machine": f"{common.machine_name(torch.device(result['device']))}, torch {torch.__version__}",
        "commit": result["commit"]}])
    (args.checkpoints / f"{name}.partial.pt").unlink(missing_ok=True)  # only now: the result is saved


def run_name(run):
    recipe, model_type, T, seed, check = run
    return f"{recipe}_{model_type}_T{T}_seed{seed}" + ("_check" if check else "")


def claim_run(args, todo):
    """The first run of `todo` that no other sweep process is running, locked for this one, with its
    lock; None when every one is under way elsewhere. Two sweeps on one results folder (two unsharded
    ones, or shards that overlap) so share the work instead of running a run twice."""
    for run in todo:
        lock = common.OutputLock(args.checkpoints, run_name(run) + ".lock")
        try:
            lock.acquire()
        except common.Busy:
            continue
        if run in {run_key(r) for r in read_runs(args.output)}:
            lock.release()  # recorded by another process since this one planned
            continue
        return run, lock
    return None


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.lengths and min(args.lengths) < 2:
        parser.error("--lengths must be at least 2")
    if min(args.train_steps, args.min_steps, args.patience, args.eval_size, args.num_threads) < 1:
        parser.error("--train_steps, --min_steps, --patience, --eval_size and --num_threads must be at least 1")
    try:
        common.resolve_device(args.device)
    except ValueError as err:
        parser.error(str(err))

    read_curves(args.curves)  # a file that is not the sweep's is refused before any run, not after the first
    done = read_runs(args.output)
    todo, skipped = plan(done, args)
    print(f"{len(todo)} runs to do now in this shard (more may follow from their results; "
          f"{len({run_key(r) for r in done})} runs already in {args.output})", flush=True)
    if args.dry_run:
        hours = sum(step_seconds(m, T) * args.train_steps * (2 if c else 1) for _, m, T, _, c in todo) / 3600
        for run in todo:
            print("  %s %s T=%d seed %d%s" % (*run[:4], " (check)" if run[4] else ""))
        print(f"upper bound (every run at its full budget, one core): {hours:.1f} h")
        return
    reported, k = set(), 0
    while todo:
        for recipe, model, T, (a, b) in sorted(skipped - reported):
            print(f"stop climbing: {recipe} {model} T={T} not run (every seed failed at T={a} and T={b})", flush=True)
        reported |= skipped
        claimed = claim_run(args, todo)
        if claimed is None:
            print("every run left in this shard is under way in another process", flush=True)
            return
        run, lock = claimed
        recipe, model_type, T, seed, check = run
        config = run_config(args, recipe, model_type, T, seed, check)
        start = time.time()
        name = run_name(run)
        try:
            result, model, halvings = train_with_halvings(config, name, args.checkpoints / f"{name}.partial.pt")
            if result["stop_reason"] == "interrupted":
                print(f"interrupted after {result['steps']} steps: not recorded; its state is saved in "
                      f"{args.checkpoints / (name + '.partial.pt')}, and the next sweep continues it", file=sys.stderr)
                raise SystemExit(130)
            record(args, run, name, config, result, model, halvings)
        finally:
            lock.release()
        k += 1
        scored = f", scored at step {result['scored_step']}" if result["scored_step"] != result["steps"] else ""
        print(f"[{k}] {name}: accuracy {result['eval_accuracy']:.4f} after {result['steps']} steps{scored} "
              f"({result['stop_reason']}, final length {result['final_length']}, {time.time() - start:.0f} s)",
              flush=True)
        todo, skipped = plan(read_runs(args.output), args)
    print("nothing left to do in this shard" + (" (rerun once the other shards finish: the near and check passes "
                                                "wait for their results)" if args.shard[1] > 1 else ""))


if __name__ == "__main__":
    common.run(main, "sweep.py")
