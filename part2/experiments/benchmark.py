"""Benchmark tables: final losses of runs from their metrics.csv files, and the speed of a
training step in float32 and bfloat16.

    python part2/experiments/benchmark.py part2/results/benchmark/ablation    # fixed-step ablations
    python part2/experiments/benchmark.py part2/results/benchmark/timed       # the timed runs
    python part2/experiments/benchmark.py --speed                             # float32 vs bfloat16 steps

Runs are the folders holding a metrics.csv; names that differ only by a final _sN or _seedN
are seeds of one configuration, one row of the table, with mean ± sample standard deviation.
The speed is process CPU time per training step (one thread unless --num_threads), float32 and
bfloat16 alternating over several rounds, so that other jobs on the machine disturb both alike.
"""
import re
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from part1 import common
from part2.experiments.plot import read_metrics
from part2.model import TextGenerationModel
from part2.train import missing_bfloat16

COLUMNS = (("val_loss", "state carried"), ("val_loss_window", "fresh, training window"),
           ("val_loss_window_256", "fresh, 256 chars"))
SEED = re.compile(r"_s(?:eed)?(\d+)$")


def final_values(path):
    """Steps, seconds and the final value of each evaluation (None where not measured)."""
    m = read_metrics(path)
    step = m["val_loss"][-1][0]
    return {"step": step, "seconds": m["seconds"][-1][1],
            **{name: m[name][-1][1] if m.get(name) else None for name, _ in COLUMNS}}


def cell(values):
    """Each seed's value, and mean ± sample standard deviation when there are several."""
    values = [v for v in values if v is not None]
    if not values:
        return ""
    text = " / ".join(f"{v:.3f}" for v in values)
    if len(values) > 1:
        text += f" (**{statistics.mean(values):.3f}** ± {statistics.stdev(values):.3f})"
    return text


def table(folder):
    groups = {}
    for path in sorted(Path(folder).glob("*/metrics.csv"),
                       key=lambda p: (SEED.sub("", p.parent.name), p.parent.name)):
        name = SEED.sub("", path.parent.name)
        groups.setdefault(name, []).append(final_values(path))
    if not groups:
        raise ValueError(f"{folder} holds no */metrics.csv")
    header = ["run", "seeds", "steps", "seconds"] + [f"val loss, {label}" for _, label in COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, runs in groups.items():
        steps = sorted({r["step"] for r in runs})
        lines.append("| " + " | ".join([
            f"`{name}`", str(len(runs)),
            " / ".join(f"{s:,}" for s in steps) if len(steps) > 1 else f"{steps[0]:,}",
            " / ".join(f"{r['seconds']:.0f}" for r in runs),
            *(cell([r[c] for r in runs]) for c, _ in COLUMNS)]) + " |")
    return "\n".join(lines) + "\n"


def seconds_per_step(model, optimizer, x, y, precision, steps):
    """Process CPU time of one training step (forward, backward, clipping, AdamW)."""
    autocast = torch.autocast("cpu", torch.bfloat16, enabled=precision == "bfloat16")
    start = time.process_time()
    for _ in range(steps):
        with autocast:
            logits = model(x)
        loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
    return (time.process_time() - start) / steps


def speed(hidden_sizes, batch_size, seq_length, steps, rounds, vocab=65):
    lines = [f"CPU: {common.cpu_name()}; torch {torch.__version__}, {torch.get_num_threads()} thread(s); "
             f"batch {batch_size}, windows of {seq_length}, {vocab} characters; ms of process CPU "
             f"time per step, median of {rounds} rounds of {steps} steps", "",
             "| hidden | float32 | bfloat16 | float32 / bfloat16 |", "|---|---|---|---|"]
    x = torch.randint(vocab, (batch_size, seq_length), generator=torch.Generator().manual_seed(0))
    y = x.roll(-1, 1)
    for hidden in hidden_sizes:
        times = {"float32": [], "bfloat16": []}
        model = TextGenerationModel(batch_size, seq_length, vocab, hidden, 2, "cpu", embedding_dim=64)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
        for precision in times:  # warm-up: the first steps allocate and pick kernels
            seconds_per_step(model, optimizer, x, y, precision, 3)
        for _ in range(rounds):
            for precision in times:
                times[precision].append(seconds_per_step(model, optimizer, x, y, precision, steps))
        f32, bf16 = (statistics.median(times[k]) for k in ("float32", "bfloat16"))
        lines.append(f"| {hidden} | {1e3 * f32:.1f} | {1e3 * bf16:.1f} | {f32 / bf16:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = common.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("folder", nargs="?", help="folder with one sub-folder per run, each with a metrics.csv")
    p.add_argument("--speed", action="store_true", help="time float32 and bfloat16 training steps")
    p.add_argument("--hidden", type=common.positive_int, nargs="+", default=[128, 256])
    p.add_argument("--steps", type=common.positive_int, default=20, help="steps per round")
    p.add_argument("--rounds", type=common.positive_int, default=5)
    p.add_argument("--num_threads", type=common.positive_int, default=1)
    args = p.parse_args(argv)
    if args.speed:
        if missing := missing_bfloat16(torch.device("cpu")):
            raise ValueError(f"--speed times bfloat16 steps, which PyTorch's LSTM cannot run here: {missing}")
        torch.set_num_threads(args.num_threads)
        print(speed(args.hidden, 64, 30, args.steps, args.rounds), end="")
    elif args.folder:
        print(table(args.folder), end="")
    else:
        p.error("give a folder of runs, or --speed")


if __name__ == "__main__":
    common.run(main, "benchmark.py")
