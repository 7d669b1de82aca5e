"""Time a training step of the hand-written cells against PyTorch's nn.RNN / nn.LSTM.

    python part1/benchmark.py            # writes part1/results/benchmark.md

Each round times a few training steps (forward, backward, RMSprop step) of the hand-written model
and of the PyTorch module with the same linear read-out, on the same inputs, one after the other;
the ratio of the two times is taken per round, and the table gives its median and range over
rounds, so that drifts in the machine's speed affect both sides alike.

The clock is the process's CPU time (time.process_time) with one torch thread by default: it does
not count the time the process waits while other programs use the CPU, so the ratio holds on a
busy machine too. `--num_threads 2 --clock wall` measures wall time with two threads instead.
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

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from part1 import cli
from part1.dataset import PalindromeDataset, encode_digits
from part1.lstm import LSTM
from part1.vanilla_rnn import VanillaRNN

ROOT = Path(__file__).resolve().parent.parent


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
    torch.manual_seed(0)
    ours_class, ref_module = {"RNN": (VanillaRNN, nn.RNN), "LSTM": (LSTM, nn.LSTM)}[kind]
    ours = ours_class(T - 1, 10, hidden, 10, device=device)
    ref = TorchReference(ref_module, 10, hidden, 10).to(device)
    x, y = PalindromeDataset(T).sample_batch(batch, torch.Generator().manual_seed(0))
    x, y = x.to(device), y.to(device)
    opts = [torch.optim.RMSprop(m.parameters(), lr=1e-3) for m in (ours, ref)]
    steps = max(2, 400 // T)
    for model, opt in zip((ours, ref), opts):  # warm-up
        time_steps(model, opt, x, y, 2, clock)
    ratios, ours_t, ref_t = [], [], []
    for _ in range(rounds):
        a = time_steps(ours, opts[0], x, y, steps, clock)
        b = time_steps(ref, opts[1], x, y, steps, clock)
        ratios.append(a / b)
        ours_t.append(a)
        ref_t.append(b)
    return statistics.median(ours_t), statistics.median(ref_t), statistics.median(ratios), min(ratios), max(ratios)


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


def machine_name(device):
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    threads = torch.get_num_threads()
    return f"{cpu}, {threads} thread{'s' if threads > 1 else ''}"


def main(argv=None):
    parser = cli.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--lengths", type=int, nargs="+", default=[10, 20, 50, 100], help="palindrome lengths T")
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--num_hidden", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds per setting")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--num_threads", type=int, default=1, help="torch threads")
    parser.add_argument("--clock", choices=["cpu", "wall"], default="cpu",
                        help="cpu: process CPU time (robust to other load); wall: elapsed time (use on a GPU)")
    parser.add_argument("--output", type=Path, default=ROOT / "part1" / "results" / "benchmark.md")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    torch.set_num_threads(args.num_threads)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter

    load = os.getloadavg()[0]
    rows = []
    for kind in ("RNN", "LSTM"):
        for T in args.lengths:
            ours, ref, ratio, lo, hi = compare(kind, T, args.batch_size, args.num_hidden, args.rounds, device, clock)
            rows.append(f"| {kind} | {T} | {ours * 1e3:.2f} | {ref * 1e3:.2f} | **{ratio:.2f}** | {lo:.2f}–{hi:.2f} |")
            print(rows[-1], flush=True)
    fast, slow = sampler_throughput()
    lines = [
        "# Training-step time: hand-written cells / PyTorch modules",
        "",
        f"Machine: {machine_name(device)}; torch {torch.__version__}, Python {platform.python_version()}, "
        f"NumPy {np.__version__}.",
        f"Batch {args.batch_size}, hidden {args.num_hidden}, one-hot digits; forward + backward + RMSprop step; "
        f"{args.rounds} alternating rounds; clock: {'process CPU time' if args.clock == 'cpu' else 'wall time'}. "
        "Ratio < 1 means the hand-written model is faster.",
        "",
        "| model | T | hand-written (ms/step) | PyTorch (ms/step) | ratio (median) | ratio (range) |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        f"Palindrome sampler (T = 20): {fast:,.0f} palindromes/s vectorized, {slow:,.0f} palindromes/s "
        f"through the template's `dataset[i]` ({fast / slow:,.0f}x).",
        "",
        f"Command: `{' '.join(['python part1/benchmark.py', *(sys.argv[1:] if argv is None else argv)])}`; "
        f"load average of the machine when it started: {load:.1f}.",
        "",
    ]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(lines))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    cli.run(main, "benchmark.py")
