"""Accuracy versus palindrome length (Questions 1.3 and 1.6): many runs of train.py, one CSV row each.

    python part1/sweep.py                       # everything, resumable
    python part1/sweep.py --shard 0/4           # every 4th run, starting at the first (SLURM arrays)
    python part1/sweep.py --recipes onehot --lengths 5 10 --seeds 0   # a quick look

Every run trains until convergence (train.py's criterion, capped by --train_steps) and is scored on
10,000 held-out palindromes. A finished run (same recipe, model, T and seed already in the CSV) is
skipped, so an interrupted sweep resumes where it stopped. T is the palindrome length; the model
reads T - 1 digits.
"""
import argparse
import csv
import fcntl
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from part1 import cli
from part1 import train as train_script

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "part1" / "results"

# Each recipe changes train.py's defaults (the course template's: RMSprop, lr 1e-3, batch 128,
# 128 hidden units, clipping at 10) as follows, per model.
RECIPES = {
    "onehot": {
        "about": "template recipe, one-hot digits",
        "lengths": [5, 10, 15, 20, 25, 30, 40, 50],
        "RNN": {"input_dim": 10},
        "LSTM": {"input_dim": 10},
    },
    "raw": {
        "about": "template recipe, raw digit value as input (the template's input_dim 1)",
        "lengths": [5, 10, 15, 20, 25, 30, 40, 50],
        "RNN": {"input_dim": 1},
        "LSTM": {"input_dim": 1},
    },
    "tuned": {
        "about": "one-hot digits, curriculum over lengths; LSTM forget-gate bias 1",
        "lengths": [5, 10, 20, 30, 40, 50, 75, 100],
        "RNN": {"input_dim": 10, "curriculum": True},
        "LSTM": {"input_dim": 10, "curriculum": True, "forget_bias": 1.0},
    },
}
TRAIN_STEPS, PATIENCE = 8000, 1500  # each run's step budget and train.py's --patience
COLUMNS = ["recipe", "model", "palindrome_length", "seed", "steps", "stop_reason", "eval_accuracy", "eval_loss",
           "train_loss", "train_accuracy", "wall_time", "input_dim", "learning_rate", "forget_bias", "curriculum",
           "device"]
CURVE_COLUMNS = ["recipe", "model", "palindrome_length", "seed", "step", "length", "loss", "accuracy"]


def shard(text):
    index, count = (int(v) for v in text.split("/"))
    if not 0 <= index < count:
        raise argparse.ArgumentTypeError(f"expected i/n with 0 <= i < n, got {text}")
    return index, count


def append_rows(path, columns, rows):
    """Append under a file lock, so that shards running side by side can share one CSV."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", newline="") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        writer = csv.DictWriter(f, columns)
        if f.tell() == 0:
            writer.writeheader()
        writer.writerows(rows)


def finished_runs(path):
    if not path.exists():
        return set()
    with open(path, newline="") as f:
        return {(r["recipe"], r["model"], int(r["palindrome_length"]), int(r["seed"])) for r in csv.DictReader(f)}


def main(argv=None):
    parser = cli.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--models", nargs="+", default=["RNN", "LSTM"], choices=["RNN", "LSTM"])
    parser.add_argument("--lengths", nargs="+", type=int, help="palindrome lengths T (>= 2); default: each recipe's own")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--train_steps", type=int, default=TRAIN_STEPS, help="step budget of each run")
    parser.add_argument("--patience", type=int, default=PATIENCE, help="see train.py --patience")
    parser.add_argument("--eval_size", type=int, default=10000)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--num_threads", type=int, default=1,
                        help="torch threads per run (1 is fastest per core when several shards share a machine)")
    parser.add_argument("--shard", type=shard, default=(0, 1), help="i/n: run only every n-th run, from the i-th")
    parser.add_argument("--output", type=Path, default=RESULTS / "accuracy_vs_length.csv")
    parser.add_argument("--curves", type=Path, default=RESULTS / "training_curves.csv")
    parser.add_argument("--checkpoints", type=Path, default=ROOT / "part1" / "checkpoints",
                        help="folder for each run's trained weights")
    args = parser.parse_args(argv)
    if args.lengths and min(args.lengths) < 2:
        parser.error("--lengths must be at least 2")
    try:
        train_script.resolve_device(args.device)
    except ValueError as err:
        parser.error(str(err))

    # Shards take every n-th (recipe, T, seed), each with all models, so that they cost about the same.
    groups = [(recipe, T, seed) for recipe in args.recipes for T in args.lengths or RECIPES[recipe]["lengths"]
              for seed in args.seeds]
    index, count = args.shard
    runs = [(recipe, model, T, seed) for recipe, T, seed in groups[index::count] for model in args.models]
    done = finished_runs(args.output)
    todo = [run for run in runs if run not in done]
    print(f"{len(todo)} runs to do ({len(runs) - len(todo)} of this shard already in {args.output})")
    defaults = vars(train_script.build_parser().parse_args([]))
    for k, (recipe, model_type, T, seed) in enumerate(todo, 1):
        config = {**defaults, **RECIPES[recipe][model_type], "model_type": model_type, "input_length": T - 1, "seed": seed,
                  "train_steps": args.train_steps, "patience": args.patience, "eval_size": args.eval_size,
                  "device": args.device, "num_threads": args.num_threads, "output": None, "checkpoint": None}
        start = time.time()
        result, model = train_script.train(config, progress=False)
        if result["stop_reason"] == "interrupted":
            print("interrupted: this run is not recorded and will run again on restart")
            break
        last = result["curve"][-1] if result["curve"] else {"loss": float("nan"), "accuracy": float("nan")}
        name = f"{recipe}_{model_type}_T{T}_seed{seed}"
        train_script.save_checkpoint(args.checkpoints / f"{name}.pt", config, model)
        append_rows(args.curves, CURVE_COLUMNS, [
            {"recipe": recipe, "model": model_type, "palindrome_length": T, "seed": seed, **point}
            for point in result["curve"]])
        append_rows(args.output, COLUMNS, [{
            "recipe": recipe, "model": model_type, "palindrome_length": T, "seed": seed, "steps": result["steps"],
            "stop_reason": result["stop_reason"], "eval_accuracy": f"{result['eval_accuracy']:.4f}",
            "eval_loss": f"{result['eval_loss']:.4f}", "train_loss": f"{last['loss']:.4f}",
            "train_accuracy": f"{last['accuracy']:.4f}", "wall_time": f"{result['wall_time']:.1f}",
            "input_dim": config["input_dim"], "learning_rate": config["learning_rate"],
            "forget_bias": config["forget_bias"] if model_type == "LSTM" else "", "curriculum": config["curriculum"],
            "device": result["device"]}])
        print(f"[{k}/{len(todo)}] {name}: accuracy {result['eval_accuracy']:.4f} after {result['steps']} steps "
              f"({result['stop_reason']}, {time.time() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    cli.run(main, "sweep.py")
