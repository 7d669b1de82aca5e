"""Time a training step of the hand-written cells against PyTorch's nn.RNN / nn.LSTM.

    python part1/experiments/benchmark.py            # both thread settings; updates part1/results/benchmark.md

Each round times a few training steps (forward, backward, RMSprop step) of the hand-written model
(with the fused gate kernels of part1/fast/fused.py and with PyTorch operations, --kernel), of the
same model under autograd, of its matrix products alone (the floor), and of the PyTorch module with
the same linear read-out, on the same inputs, one after the other; the ratio of each time to
PyTorch's is taken per round, and the tables give its median (and range) over rounds, so that
drifts in the machine's speed affect both sides alike.

Two settings by default: one torch thread timed by the process's CPU time (time.process_time, which
does not count the time the process waits while other programs use the CPU), and all cores timed
by the wall clock (run it on a quiet machine). benchmark.md keeps one table per CPU and setting:
a run replaces the tables of its own CPU and leaves those of other machines.
"""
import argparse
import math
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from part1 import common
from part1.dataset import PalindromeDataset, encode_digits
from part1.fast import bptt, fused
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


def training_step(model, optimizer, x, y):
    loss = nn.functional.cross_entropy(model(x), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def time_steps(step, steps, clock, device):
    start = clock()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (clock() - start) / steps


def matrix_products(kind, T, batch, n, input_dim, device):
    """The matrix products of one training step of the hand-written model over T steps and nothing else,
    as bptt.py runs them (the LSTM: the stacked [W_x, W_h, b] times [x; h; 1] at every step, x and 1
    only at the first, operands lying transposed as its kernels write them; the RNN: the input terms
    of all steps at once, then W_h h^(t-1) at every step; both: W_h^T dL/d(pre) back through every
    step and the weight gradients' one product), on random numbers: the floor that the gate
    arithmetic adds to."""
    rows = 4 * n if kind == "LSTM" else n

    def randn(*shape):
        return torch.randn(*shape, device=device)

    W_x, W_h, W_h_T = randn(rows, input_dim), randn(rows, n), randn(n, rows)
    x, pre, h = randn(T, input_dim, batch), randn(T, rows, batch), randn(n, batch)
    inputs, d_pre = randn(input_dim + n + 1, T * batch), randn(rows, T * batch)
    W = torch.cat([W_x, W_h, randn(rows, 1)], dim=1)
    inputs_T, d_pre_T = randn(T, batch, input_dim + n + 1), randn(batch, rows)  # the LSTM's transposed operands

    def step():
        if kind == "LSTM":  # one product per step of the stacked [W_x, W_h, b] with [x; h; 1] (h^(0) = 0: x and 1 only)
            torch.addmm(W[:, -1:], W[:, :input_dim], x[0])
            for t in range(1, T):
                bptt.matmul(W, inputs_T[t].T)
            for _ in range(1, T):
                bptt.matmul(W_h_T, d_pre_T.T)
        else:  # W_x x + b for all steps at once, then W_h h^(t-1) at every step
            torch.matmul(W_x, x, out=pre)
            for t in range(1, T):
                pre[t].addmm_(W_h, h)
            for t in range(1, T):
                bptt.matmul(W_h_T, pre[t])
        bptt.matmul(inputs, d_pre.T)

    return step


def compare(kind, T, batch, hidden, rounds, device, clock, kernels):
    """Median step times {variant: seconds} of the hand-written model with each kernel (bptt.py with or
    without fused.py), the same model under autograd (`fast=False`), its matrix products alone ("floor")
    and the PyTorch module; and {variant: (median, min, max) over rounds of its time / PyTorch's}."""
    torch.manual_seed(0)
    ours_class, ref_module = {"RNN": (VanillaRNN, nn.RNN), "LSTM": (LSTM, nn.LSTM)}[kind]
    x, y = PalindromeDataset(T).sample_batch(batch, torch.Generator().manual_seed(0))
    x, y = x.to(device), y.to(device)

    def trainer(model, kernel="unfused"):
        optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-3, foreach=True)  # as part1/train.py

        def step():
            fused.use(kernel)
            training_step(model, optimizer, x, y)

        return step

    variants = {kernel: trainer(ours_class(T - 1, 10, hidden, 10, device=device), kernel) for kernel in kernels}
    variants["autograd"] = trainer(ours_class(T - 1, 10, hidden, 10, device=device, fast=False))
    variants["floor"] = matrix_products(kind, T - 1, batch, hidden, 10, device)  # the model reads T - 1 digits
    variants["PyTorch"] = trainer(TorchReference(ref_module, 10, hidden, 10).to(device))
    steps = max(2, 400 // T)
    for step in variants.values():  # warm-up
        time_steps(step, 2, clock, device)
    times = {name: [] for name in variants}
    for _ in range(rounds):
        for name, step in variants.items():
            times[name].append(time_steps(step, steps, clock, device))
    fused.use(kernels[0])
    ratios = {name: [a / b for a, b in zip(times[name], times["PyTorch"], strict=True)] for name in variants}
    return ({name: statistics.median(t) for name, t in times.items()},
            {name: (statistics.median(r), min(r), max(r)) for name, r in ratios.items()})


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


def tables(kind_rows, kernels):
    """benchmark.md's two tables: step times of the default path (the first kernel) beside autograd and
    PyTorch; then every kernel beside the floor, with the share of the gap to the floor left."""
    main = ["| model | T | hand-written (ms/step) | autograd (ms/step) | PyTorch (ms/step) | ratio (median) "
            "| ratio (range) |", "|---|---|---|---|---|---|---|"]
    header = ["model", "T", *(f"{k} (ms/step)" for k in kernels), "floor (ms/step)",
              *(f"{k} / PyTorch" for k in kernels), "floor / PyTorch"]
    if "unfused" in kernels and len(kernels) > 1:
        header.append("gap to the floor left by fused")
    floor = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for kind, T, t, r in kind_rows:
        lo, hi = r[kernels[0]][1:]
        main.append(f"| {kind} | {T} | {t[kernels[0]] * 1e3:.2f} | {t['autograd'] * 1e3:.2f} | {t['PyTorch'] * 1e3:.2f} "
                    f"| **{r[kernels[0]][0]:.2f}** | {lo:.2f}–{hi:.2f} |")
        cells = [kind, str(T), *(f"{t[k] * 1e3:.2f}" for k in [*kernels, "floor"]),
                 *(f"{r[k][0]:.2f}" for k in [*kernels, "floor"])]
        if len(header) > len(cells):  # (fused - floor) / (unfused - floor)
            cells.append(f"{(t['fused'] - t['floor']) / (t['unfused'] - t['floor']):.0%}")
        floor.append("| " + " | ".join(cells) + " |")
    return main, floor


def main(argv=None):
    parser = common.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--lengths", type=common.int_up_to(10_000), nargs="+", default=[10, 20, 50, 100],
                        help="palindrome lengths T")
    parser.add_argument("--batch_size", type=common.positive_int, default=128)
    parser.add_argument("--num_hidden", type=common.positive_int, default=128)
    parser.add_argument("--rounds", type=common.positive_int, default=7, help="alternating rounds per setting")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--num_threads", type=int, nargs="+", default=[1, os.cpu_count()],
                        help="torch threads; one table each (1 thread: CPU time, more: wall clock)")
    parser.add_argument("--clock", choices=["cpu", "wall"],
                        help="force one clock: cpu = process CPU time, wall = elapsed time (use on a GPU)")
    parser.add_argument("--kernel", nargs="+", choices=fused.CHOICES, default=list(fused.CHOICES),
                        help="the hand-written BPTT's gate arithmetic: fused.py's C++ loops or PyTorch operations; "
                             "the first is the one of the main table")
    parser.add_argument("--note", default="", help="a sentence added to the tables (e.g. that the machine was shared)")
    parser.add_argument("--output", type=Path, default=ROOT / "part1" / "results" / "benchmark.md")
    args = parser.parse_args(argv)
    if min(args.lengths) < 2 or min(args.num_threads) < 1 or args.rounds < 1:
        parser.error("--lengths must be >= 2, --num_threads and --rounds >= 1")
    device = common.resolve_device(args.device)
    kernels = list(dict.fromkeys(args.kernel))
    command = shlex.join(["python", "part1/experiments/benchmark.py", *(sys.argv[1:] if argv is None else argv)])
    if "fused" in kernels and device.type == "cpu":
        fused.use("fused")
        ready = (f"fused kernels ready in {fused.load_seconds:.2f} s (compiled on first use, then loaded from "
                 f"torch's extension cache)" if fused.load() else "fused kernels unavailable: both columns unfused")
    else:
        ready = "fused kernels not used" if device.type == "cpu" else "fused kernels are CPU-only: unfused on this device"
    fast, slow = sampler_throughput()
    for threads in dict.fromkeys(args.num_threads):
        torch.set_num_threads(threads)
        clock_name = args.clock or ("cpu" if threads == 1 and device.type == "cpu" else "wall")
        clock = time.process_time if clock_name == "cpu" else time.perf_counter
        load = os.getloadavg()[0]
        heading = (f"{common.cpu_id() if device.type == 'cpu' else common.machine_name(device)} · {threads} thread{'s' if threads > 1 else ''} · "
                   f"{'process CPU time' if clock_name == 'cpu' else 'wall clock'}")
        print(heading)
        rows = []
        for kind in ("RNN", "LSTM"):
            for T in args.lengths:
                rows.append((kind, T, *compare(kind, T, args.batch_size, args.num_hidden, args.rounds, device, clock,
                                               kernels)))
                print(f"{kind} T={T}", *(f"{k} {v[0]:.2f}" for k, v in rows[-1][3].items()), flush=True)
        main_table, floor_table = tables(rows, kernels)
        update_tables(args.output, heading, [
            "",
            f"CPU: {common.cpu_description() if device.type == 'cpu' else common.machine_name(device)}. "
            f"torch {torch.__version__}, Python {platform.python_version()}, NumPy {np.__version__}. "
            f"Batch {args.batch_size}, hidden {args.num_hidden}, one-hot digits; forward + backward + RMSprop "
            f"step; {args.rounds} alternating rounds. {args.note}".rstrip(),
            "",
            f"Hand-written: the models as trained (BPTT by hand, `part1/fast/bptt.py`, gate arithmetic {kernels[0]}); "
            "autograd: the same models with `fast=False` (the per-equation loop, differentiated by autograd); "
            "ratio: hand-written / PyTorch.",
            "",
            *main_table,
            "",
            "Fused: each step's gate arithmetic as one C++ loop, and the LSTM's time loops in C++ too "
            "(`part1/fast/fused.py`); unfused: as PyTorch operations. Floor: the hand-written model's matrix "
            "products alone (called from Python), no gate arithmetic, read-out, loss or optimizer; the gap left "
            "is (fused - floor) / (unfused - floor). "
            f"{ready[0].upper()}{ready[1:]}.",
            "",
            *floor_table,
            "",
            f"Palindrome sampler (T = 20): {fast:,.0f} palindromes/s vectorized, {slow:,.0f} palindromes/s "
            f"through the template's `dataset[i]` ({fast / slow:,.0f}x).",
            "",
            f"Command: `{command}`; load average of the machine when this table started: {load:.1f}.",
        ])
    print(f"wrote {args.output}")


if __name__ == "__main__":
    common.run(main, "benchmark.py")
