"""What every script of the three parts shares: the command-line contract, argument types, device
choice, atomic writes, CSV rows, the machine's name and the Ctrl-C policy. Written once, here.

The contract: bad input ends in one line on stderr and no traceback, exit code 2 for a bad option,
1 for a file or folder that cannot be read or written, 130 for Ctrl-C.
"""
import argparse
import csv
import json
import os
import platform
import signal
import sys
import threading
from pathlib import Path

import torch


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the project's one-line error and every default shown in --help."""

    def __init__(self, *args, formatter_class=argparse.ArgumentDefaultsHelpFormatter, **kwargs):
        super().__init__(*args, formatter_class=formatter_class, **kwargs)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def run(main, prog):
    """Call main(); a user error (ValueError, OSError) or Ctrl-C becomes one line on stderr."""
    try:
        main()
    except OSError as e:
        # e.g. "[Errno 2] No such file or directory: 'x'" becomes "x: No such file or directory".
        fail(f"{e.filename}: {e.strerror}" if e.filename else str(e), prog)
    except ValueError as e:
        fail(str(e), prog)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        sys.exit(130)


def fail(message, prog):
    print(f"{prog}: error: {message}", file=sys.stderr)
    sys.exit(1)


def positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def non_negative_int(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def positive_float(text):
    value = float(text)
    if not value > 0:  # also rejects nan
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def resolve_device(name):
    """'auto' -> cuda when available, else cpu; raises ValueError for a device this machine lacks."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device '{name}'") from None
    if device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        raise ValueError(f"device '{name}' is not available on this machine (try --device cpu)")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device '{name}' is not supported (use cpu or cuda)")
    return device


def replace_atomically(write, path):
    """Call write(tmp) on a temporary file beside `path`, make it durable, then rename it over
    `path`: an interrupted run leaves the old file or the new one, never half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_atomically(obj, path):
    """torch.save, atomically (see replace_atomically)."""
    replace_atomically(lambda tmp: torch.save(obj, tmp), path)


def write_json(path, data):
    """JSON, atomically (see replace_atomically)."""
    replace_atomically(lambda tmp: Path(tmp).write_text(json.dumps(data, indent=1)), path)


def read_csv(path, missing_ok=False):
    """The rows of a CSV file with a header, as dicts of strings ([] for a missing file if missing_ok)."""
    if missing_ok and not Path(path).exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def cpu_name():
    """The CPU model as the operating system reports it (lscpu's Model name on Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_description():
    """One line for benchmark tables: the CPU model as the OS reports it, /proc/cpuinfo's family and
    model numbers, the widest vector extension its flags list (and AMX), logical CPUs and clock."""
    fields = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().split("\n\n")[0].splitlines():  # the first CPU
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    except OSError:
        pass
    flags = set(fields.get("flags", fields.get("Features", "")).split())
    vector = next((name for flag, name in [("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX"), ("sse2", "SSE2"),
                                           ("asimd", "NEON")] if flag in flags), "vector extension unknown")
    parts = [cpu_name()]
    if "cpu family" in fields:
        parts.append(f"family {fields['cpu family']} model {fields.get('model', '?')}")
    parts.append(vector + (" + AMX" if "amx_tile" in flags else ""))
    parts.append(f"{os.cpu_count()} logical CPUs")
    try:  # the highest clock where the OS exposes it, else the one /proc/cpuinfo reports now
        clock = int(Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read_text()) / 1000
        parts.append(f"up to {clock:.0f} MHz")
    except (OSError, ValueError):
        if "cpu MHz" in fields:
            parts.append(f"{float(fields['cpu MHz']):.0f} MHz")
    return ", ".join(parts)


def machine_name(device):
    """The CPU model (or the GPU's name, for a CUDA device)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_name()


class StopOnInterrupt:
    """Ctrl-C asks the loop to stop after the current step, so a saved state is consistent; a second
    Ctrl-C stops at once. (Signals reach only the main thread: elsewhere this does nothing.)"""

    def __enter__(self):
        self.requested = False
        self.active = threading.current_thread() is threading.main_thread()
        if self.active:
            self.previous = signal.signal(signal.SIGINT, self.request)
        return self

    def request(self, signum, frame):
        self.requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def __exit__(self, *exc):
        if self.active:
            signal.signal(signal.SIGINT, self.previous)
