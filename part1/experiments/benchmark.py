"""Time a training step of the hand-written cells against PyTorch's nn.RNN / nn.LSTM.

    python part1/experiments/benchmark.py            # both thread settings; updates part1/results/benchmark.md

Each round times a few training steps (forward, backward, RMSprop step) of the hand-written model
and of the PyTorch module with the same linear read-out, on the same inputs, one after the other;
the ratio of the two times is taken per round, and the table gives its median and range over
rounds, so that drifts in the machine's speed affect both sides alike.

Two settings by default: one torch thread timed by the process's CPU time (time.process_time, which
does not count the time the process waits while other programs use the CPU), and all cores timed
by the wall clock (run it on a quiet machine). benchmark.md keeps one table per CPU and setting:
a run replaces the tables of its own CPU and leaves those of other machines.
"""
import argparse
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from part1 import common
from part1.dataset import PalindromeDataset, encode_digits
from part1.lstm import LSTM
from part1.vanilla_rnn import VanillaRNN

ROOT = Path(__file__).resolve().parents[2]


class TorchReference(nn.Module):
    """nn.RNN or nn.LSTM followed by the same read-out p = W_ph h^(T) + b_p."""

    def __init__(self, module, input_dim, num_hidden, num_classes):
        super().__init__()
        self.input_dim = input_dim
        self.rnn = module(input_dim, num_hidden, batch_first=True)
        self.W_ph = nn.Parameter(torch.randn(num_classes, num_hidden) / math.sqrt(num_hidden))
        self.b_p = nn.Parameter(torch.zeros(num_classes))

    def forward(self, x):
        out, _ = self.rnn(encode_digits(x, self.input_dim))
        return out[:, -1] @ self.W_ph.T + self.b_p


def time_steps(model, optimizer, x, y, steps, clock):
    start = clock()
    for _ in range(steps):
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    if x.is_cuda:
        torch.cuda.synchronize()
    return (clock() - start) / steps


def compare(kind, T, batch, hidden, rounds, device, clock):
    """Median step times of the hand-written model (BPTT by hand), the same model under autograd
    (`fast=False`) and the PyTorch module, and the median and range over rounds of hand-written / PyTorch."""
    torch.manual_seed(0)
    ours_class, ref_module = {"RNN": (VanillaRNN, nn.RNN), "LSTM": (LSTM, nn.LSTM)}[kind]
    models = [ours_class(T - 1, 10, hidden, 10, device=device), ours_class(T - 1, 10, hidden, 10, device=device, fast=False),
              TorchReference(ref_module, 10, hidden, 10).to(device)]
    x, y = PalindromeDataset(T).sample_batch(batch, torch.Generator().manual_seed(0))
    x, y = x.to(device), y.to(device)
    opts = [torch.optim.RMSprop(m.parameters(), lr=1e-3) for m in models]
    steps = max(2, 400 // T)
    for model, opt in zip(models, opts, strict=True):  # warm-up
        time_steps(model, opt, x, y, 2, clock)
    times = [[], [], []]
    for _ in range(rounds):
        for model, opt, record in zip(models, opts, times, strict=True):
            record.append(time_steps(model, opt, x, y, steps, clock))
    ratios = [a / b for a, b in zip(times[0], times[2], strict=True)]
    return [statistics.median(t) for t in times], statistics.median(ratios), min(ratios), max(ratios)


def sampler_throughput(T=20, batch=128, seconds=1.0):
    """Palindromes per second: the vectorized sampler versus the template's one-at-a-time items."""
    data = PalindromeDataset(T)
    g = torch.Generator().manual_seed(0)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        data.sample_batch(batch, g)
        n += batch
    fast = n / (time.perf_counter() - start)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for i in range(batch):
            data[i]
        n += batch
    slow = n / (time.perf_counter() - start)
    return fast, slow


def update_tables(path, heading, table):
    """Replace the section under `heading` in the markdown file (or add it), keeping the others."""
    sections, current = {}, None
    if path.exists():
        for line in path.read_text().splitlines():
            if line.startswith("## "):
                current = line[3:]
                sections[current] = []
            elif current is not None:
                sections[current].append(line)
    sections[heading] = table
    text = ["# Training-step time: hand-written cells / PyTorch modules", "",
            "Written by `python part1/experiments/benchmark.py`, one section per CPU and thread setting. "
            "Ratio < 1 means the hand-written model is faster.", ""]
    for name, lines in sections.items():
        text += [f"## {name}", *lines]
        if text[-1]:
            text.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(text))


def main(argv=None):
    parser = common.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--lengths", type=int, nargs="+", default=[10, 20, 50, 100], help="palindrome lengths T")
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--num_hidden", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds per setting")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--num_threads", type=int, nargs="+", default=[1, os.cpu_count()],
                        help="torch threads; one table each (1 thread: CPU time, more: wall clock)")
    parser.add_argument("--clock", choices=["cpu", "wall"],
                        help="force one clock: cpu = process CPU time, wall = elapsed time (use on a GPU)")
    parser.add_argument("--output", type=Path, default=ROOT / "part1" / "results" / "benchmark.md")
    args = parser.parse_args(argv)
    if min(args.lengths) < 2 or min(args.num_threads) < 1 or args.rounds < 1:
        parser.error("--lengths must be >= 2, --num_threads and --rounds >= 1")
    device = torch.device(args.device)
    command = " ".join(["python part1/experiments/benchmark.py", *(sys.argv[1:] if argv is None else argv)])
    fast, slow = sampler_throughput()
    for threads in dict.fromkeys(args.num_threads):
        torch.set_num_threads(threads)
        clock_name = args.clock or ("cpu" if threads == 1 and device.type == "cpu" else "wall")
        clock = time.process_time if clock_name == "cpu" else time.perf_counter
        load = os.getloadavg()[0]
        heading = (f"{common.machine_name(device)} · {threads} thread{'s' if threads > 1 else ''} · "
                   f"{'process CPU time' if clock_name == 'cpu' else 'wall clock'}")
        print(heading)
        rows = []
        for kind in ("RNN", "LSTM"):
            for T in args.lengths:
                (ours, plain, ref), ratio, lo, hi = compare(kind, T, args.batch_size, args.num_hidden, args.rounds,
                                                            device, clock)
                rows.append(f"| {kind} | {T} | {ours * 1e3:.2f} | {plain * 1e3:.2f} | {ref * 1e3:.2f} "
                            f"| **{ratio:.2f}** | {lo:.2f}–{hi:.2f} |")
                print(rows[-1], flush=True)
        update_tables(args.output, heading, [
            "",
            f"torch {torch.__version__}, Python {platform.python_version()}, NumPy {np.__version__}. "
            f"Batch {args.batch_size}, hidden {args.num_hidden}, one-hot digits; forward + backward + RMSprop "
            f"step; {args.rounds} alternating rounds.",
            "",
            "Hand-written: the models as trained (BPTT by hand, `part1/fast/bptt.py`); autograd: the same models with "
            "`fast=False` (the per-equation loop, differentiated by autograd); ratio: hand-written / PyTorch.",
            "",
            "| model | T | hand-written (ms/step) | autograd (ms/step) | PyTorch (ms/step) | ratio (median) "
            "| ratio (range) |",
            "|---|---|---|---|---|---|---|",
            *rows,
            "",
            f"Palindrome sampler (T = 20): {fast:,.0f} palindromes/s vectorized, {slow:,.0f} palindromes/s "
            f"through the template's `dataset[i]` ({fast / slow:,.0f}x).",
            "",
            f"Command: `{command}`; load average of the machine when this table started: {load:.1f}.",
        ])
    print(f"wrote {args.output}")


if __name__ == "__main__":
    common.run(main, "benchmark.py")
