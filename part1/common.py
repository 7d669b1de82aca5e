"""What every script of the three parts shares: the command-line contract, argument types, device
choice, atomic writes, CSV rows, the machine's name and the Ctrl-C policy. Written once, here.

The contract: bad input ends in one line on stderr and no traceback, exit code 2 for a bad option,
1 for a file or folder that cannot be read or written, 130 for Ctrl-C.
"""
import argparse
import csv
import fcntl
import io
import json
import math
import os
import platform
import re
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


class StatedDefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """ArgumentParser's formatter without "(default: None)": the help of an option whose default is
    None, or that is required, says itself what holds without it."""

    def _get_help_string(self, action):
        if action.default is None or action.required:
            return action.help
        return super()._get_help_string(action)


def run(main, prog):
    """Call main(); a user error (ValueError, OSError), memory that cannot be had or Ctrl-C becomes one
    line on stderr."""
    try:
        main()
    except RuntimeError as e:
        message = out_of_memory(e)
        if message is None:
            raise
        fail(message, prog)
    except OSError as e:
        # e.g. "[Errno 2] No such file or directory: 'x'" becomes "x: No such file or directory".
        fail(f"{e.filename}: {e.strerror}" if e.filename else str(e), prog)
    except ValueError as e:
        fail(str(e), prog)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        sys.exit(130)


def out_of_memory(error):
    """The line for an allocation that failed (sizes that check_fits did not foresee), else None."""
    text = str(error)
    if not (isinstance(error, torch.OutOfMemoryError) or "can't allocate memory" in text):
        return None
    asked = re.search(r"allocate (\d+) bytes", text)
    size = f" {int(asked.group(1)) / 2**30:,.1f} GiB" if asked else ""
    return f"out of memory: could not allocate{size}; choose smaller sizes (see --help)"


def first_line(err):
    """An exception's first line of text (its type's name where it has none), for a one-line error."""
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def fail(message, prog):
    print(f"{prog}: error: {message}", file=sys.stderr)
    sys.exit(1)


def checked(convert, ok, requirement, name):
    """An argparse type: `convert(text)`, refused with "must be <requirement>" unless `ok` of it."""
    def parse(text):
        value = convert(text)
        if not ok(value):  # nan fails every comparison, so no float check lets it through
            raise argparse.ArgumentTypeError(f"must be {requirement}, got {text}")
        return value
    parse.__name__ = name  # argparse names it in "invalid <name> value: 'abc'"
    return parse


positive_int = checked(int, lambda v: v >= 1, "a positive integer", "positive_int")
non_negative_int = checked(int, lambda v: v >= 0, "0 or more", "non_negative_int")
positive_float = checked(float, lambda v: 0 < v < math.inf, "a positive finite number", "positive_float")
finite_float = checked(float, math.isfinite, "a finite number", "finite_float")
non_negative_float = checked(float, lambda v: 0 <= v < math.inf, "a finite number, 0 or more", "non_negative_float")


def learning_rate(text):
    """A positive learning rate up to 1000: larger ones are typos, and overflow the optimizers' float arithmetic."""
    value = positive_float(text)
    if value > 1000:
        raise argparse.ArgumentTypeError(f"must be at most 1000, got {text}")
    return value


def int_up_to(largest):
    """An argparse type: a positive integer no larger than `largest`."""
    def parse(text):
        value = positive_int(text)
        if value > largest:
            raise argparse.ArgumentTypeError(f"must be at most {largest:,}, got {text}")
        return value
    return parse


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


def check_fits(n_bytes, what):
    """Refuse, before allocating, what cannot fit in this machine's memory (a ValueError, one line)."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if n_bytes > memory:
        raise ValueError(f"{what} needs about {n_bytes / 2**30:,.0f} GiB, more than this machine's "
                         f"{memory / 2**30:,.0f} GiB")


def replace_atomically(write, path):
    """Call write(tmp) on a temporary file beside `path`, make it durable, then rename it over
    `path`: an interrupted or failed write (a full disk) leaves the old file, never half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_atomically(obj, path):
    """torch.save, atomically (see replace_atomically). Serialized in memory first: torch.save's own
    file writer reports a full disk as a RuntimeError, a plain write as the OSError it is."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    replace_atomically(lambda tmp: Path(tmp).write_bytes(buffer.getvalue()), path)


def write_json(path, data):
    """JSON, atomically (see replace_atomically)."""
    replace_atomically(lambda tmp: Path(tmp).write_text(json.dumps(data, indent=1)), path)


def read_csv(path, missing_ok=False):
    """The rows of a CSV file with a header, as dicts of strings ([] for a missing file if missing_ok)."""
    if missing_ok and not Path(path).exists():
        return []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a UTF-8 text file") from None
    if text and not text.endswith("\n"):  # a writer killed mid-row: skip the torn line, say so
        print(f"{path}: skipped a torn last line (an interrupted write)", file=sys.stderr)
        text = text[:text.rfind("\n") + 1]
    rows = list(csv.DictReader(io.StringIO(text)))
    if any(None in row for row in rows):
        raise ValueError(f"{path}: not a CSV file with a header row of its columns")
    return rows


def cpu_name():
    """The CPU model as the operating system reports it (lscpu's Model name on Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpuinfo():
    """/proc/cpuinfo's fields for the first CPU ({} where there is none)."""
    fields = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().split("\n\n")[0].splitlines():
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    except OSError:
        pass
    return fields


def cpu_id():
    """The CPU model with its family and model numbers, which tell apart CPUs of one name ("AMD EPYC")."""
    fields = cpuinfo()
    if "cpu family" not in fields:
        return cpu_name()
    return f"{cpu_name()}, family {fields['cpu family']} model {fields.get('model', '?')}"


def cpu_description():
    """One line for benchmark tables: the CPU model as the OS reports it, /proc/cpuinfo's family and
    model numbers, the widest vector extension its flags list (and AMX), logical CPUs and clock."""
    fields = cpuinfo()
    flags = set(fields.get("flags", fields.get("Features", "")).split())
    vector = next((name for flag, name in [("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX"), ("sse2", "SSE2"),
                                           ("asimd", "NEON")] if flag in flags), "vector extension unknown")
    parts = [cpu_id()]
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


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # Ctrl-C, scancel or a time limit, a closed terminal


class StopOnInterrupt:
    """Ctrl-C, SIGTERM (SLURM's scancel and time limit) and SIGHUP ask the loop to stop after the
    current step, so a saved state is consistent; `signal_name` says which arrived first. A second
    Ctrl-C stops at once; a repeated SIGTERM does not, since SLURM sends it to every process of a
    job and its batch script passes it on as well. (Signals reach only the main thread.)"""

    def __enter__(self):
        self.requested, self.signal_name = False, None
        self.active = threading.current_thread() is threading.main_thread()
        if self.active:
            self.previous = {sig: signal.signal(sig, self.request) for sig in STOP_SIGNALS}
        return self

    def request(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if not self.requested:
            self.requested, self.signal_name = True, signal.Signals(signum).name

    def __exit__(self, *exc):
        if self.active:
            for sig, handler in self.previous.items():
                signal.signal(sig, handler)


class Busy(ValueError):
    """What OutputLock raises when another process holds the lock."""


class OutputLock:
    """An exclusive lock on an output folder for the life of a run: a second run on the same folder
    is refused with one line. flock() locks go with the process, so a killed run leaves no stale lock;
    the file holds the owner's PID for the message."""

    def __init__(self, folder, name=".lock"):
        self.path = Path(folder) / name

    def __enter__(self):
        return self.acquire()

    def acquire(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(self.fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(self.fd)
            raise Busy(f"{self.path.parent} is in use by another run (pid {owner}); "
                       "wait for it to end or choose another output") from None
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{os.getpid()}\n".encode(), 0)
        return self

    def __exit__(self, *exc):
        self.release()

    def release(self):
        os.close(self.fd)  # releases the lock; the file stays, harmless


def append_csv_rows(path, columns, rows):
    """Append complete rows in one write, made durable, with a header for a new file. A torn last
    line left by a killed writer is cut off first, so it is never glued onto a new row. Callers that
    share the file between processes hold a lock around this (OutputLock or flock)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = io.StringIO()
    writer = csv.DictWriter(text, columns, lineterminator="\n")
    with open(path, "ab+") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            writer.writeheader()
        else:
            f.seek(max(0, size - 1))
            if f.read(1) != b"\n":  # torn: cut back to the end of the last whole line
                f.seek(0)
                data = f.read()
                f.truncate(data.rfind(b"\n") + 1)
        writer.writerows(rows)
        f.write(text.getvalue().encode())
        f.flush()
        os.fsync(f.fileno())
