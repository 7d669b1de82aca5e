"""Train a character-level LSTM on a book.

    python part2/train.py --txt_file assets/book.txt      # 10 minutes, then a validation loss and samples

Writes into --summary_path: metrics.csv (losses, accuracies, learning rate, speed), samples.txt
(text generated during training) and checkpoint.pt (everything needed to resume or generate).

The file reads top to bottom: options, evaluation, samples, checkpoints, the run's log, then the
run: setup(), train_step(), after_step() and finish(), which train() calls in one flat loop. What
they work with is one Run; what a checkpoint saves of its progress (step, clock, last evaluation)
is one RunState.
"""
import csv
import hashlib
import json
import math
import os
import platform
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from part1 import common
from part2.dataset import TextDataset
from part2.generate import generate, temperature_note
from part2.model import TextGenerationModel

METRICS_FIELDS = ["step", "seconds", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
                  "val_loss_window", "val_loss_window_256", "learning_rate", "chars_per_second"]
SAMPLE_TEMPERATURES = (0.5, 1.0, 2.0)
# Options that may change when a run is resumed; all others are taken from the checkpoint.
RUN_OPTIONS = ("train_steps", "max_time", "summary_path", "device", "print_every", "sample_every",
               "eval_every", "num_threads", "overwrite", "resume")
CHECKPOINT_KEYS = ("model", "optimizer", "run", "rng", "vocab", "options", "metrics_bytes", "samples_bytes")
DEFAULT_BOOK = "assets/book.txt"  # where assets/download.py puts the book
RUN_FILES = ("checkpoint.pt", "metrics.csv", "samples.txt")  # what a run writes into --summary_path
# A run given neither --train_steps nor --max_time stops after this many seconds.
DEFAULT_MAX_TIME = 600
# Defaults that follow the budget: (longest --max_time in seconds, defaults). A run by
# --train_steps alone takes the first. A long run overfits a model that suits a short one, so it
# gets a wider one with dropout (part2/README.md has the ablations), and evaluates less often,
# since an evaluation of the wider model costs about 100 training steps; it also evaluates once
# early (--first_eval), so that its first validation loss and samples come within a minute.
BUDGET_DEFAULTS = (
    (300, {"lstm_num_hidden": 192, "dropout_keep_prob": 1.0, "eval_every": 1000,
           "sample_every": 1000, "first_eval": 0}),
    (math.inf, {"lstm_num_hidden": 256, "dropout_keep_prob": 0.8, "eval_every": 2500,
                "sample_every": 2500, "first_eval": 100}),
)
# What PyTorch's oneDNN LSTM needs to run bfloat16 on a CPU (its mkldnn_bf16_device_check): on an
# x86 CPU without them (AVX2 only: AMD Zen 3, most laptops) it ends in "could not create a
# primitive descriptor for the LSTM forward"; an ARM CPU needs its bf16 extension.
BFLOAT16_X86_FLAGS = ("avx512bw", "avx512vl", "avx512dq")


unit_interval = common.checked(float, lambda v: 0 < v <= 1, "in (0, 1]", "unit_interval")


def by_budget(option):
    """--help text for an option whose default follows the budget."""
    (short, small), (_, large) = BUDGET_DEFAULTS
    return (f"default: {small[option]} with --max_time up to {short} s or a run by --train_steps "
            f"alone, {large[option]} for longer budgets and a run given neither")


def add_model_options(p):
    p.add_argument("--txt_file", default=None,
                   help=f"the book, a UTF-8 text file (default: {DEFAULT_BOOK}; with --resume, the run's own)")
    p.add_argument("--strip_gutenberg", action=common.argparse.BooleanOptionalAction, default=True,
                   help="cut Project Gutenberg's licence header and footer when the markers are there")
    p.add_argument("--seq_length", type=common.positive_int, default=30,
                   help="characters per training window, the longest backpropagation through time")
    p.add_argument("--embedding_dim", type=common.non_negative_int, default=64,
                   help="size of the character embedding; 0 feeds one-hot characters")
    p.add_argument("--lstm_num_hidden", type=common.positive_int, default=None,
                   help="hidden units per LSTM layer; " + by_budget("lstm_num_hidden"))
    p.add_argument("--lstm_num_layers", type=common.positive_int, default=2, help="LSTM layers")
    p.add_argument("--unigram_bias", action=common.argparse.BooleanOptionalAction, default=True,
                   help="start the read-out bias at the log frequencies of the characters in the "
                        "training split (--no-unigram_bias keeps PyTorch's random init)")
    p.add_argument("--dropout_keep_prob", type=unit_interval, default=None,
                   help="keep probability of the dropout between LSTM layers; "
                        + by_budget("dropout_keep_prob"))
    p.add_argument("--io_dropout", action=common.argparse.BooleanOptionalAction, default=False,
                   help="also drop the LSTM's input and output with 1 - --dropout_keep_prob")
    p.add_argument("--tie_weights", action=common.argparse.BooleanOptionalAction, default=False,
                   help="one matrix for the embedding and the read-out (needs --embedding_dim "
                        "equal to --lstm_num_hidden)")


def add_training_options(p):
    p.add_argument("--batch_size", type=common.positive_int, default=64,
                   help="training windows per step")
    p.add_argument("--learning_rate", type=common.learning_rate, default=1e-2,
                   help="AdamW's learning rate at the start of the run")
    p.add_argument("--learning_rate_decay", type=unit_interval, default=0.96,
                   help="multiply the learning rate by this every --learning_rate_step steps")
    p.add_argument("--learning_rate_step", type=common.positive_int, default=5000,
                   help="steps between two --learning_rate_decay factors")
    p.add_argument("--linear_decay", action=common.argparse.BooleanOptionalAction, default=True,
                   help="also decay the learning rate linearly to 0 at the end of the run: at "
                        "--train_steps, or at --max_time seconds if that comes first")
    p.add_argument("--weight_decay", type=common.non_negative_float, default=0.1,
                   help="AdamW's decoupled weight decay, on every parameter (0: plain Adam)")
    p.add_argument("--max_norm", type=common.positive_float, default=5.0,
                   help="clip the gradient to this norm")
    p.add_argument("--train_steps", type=common.positive_int, default=None,
                   help="stop after this many steps (default: no limit on the steps; a run given "
                        f"neither --train_steps nor --max_time stops after {DEFAULT_MAX_TIME} s)")
    p.add_argument("--max_time", type=common.positive_float, default=None,
                   help="stop when the run has lasted this many seconds of wall clock, counted "
                        "over all its resumptions (then evaluate, sample and save); some defaults "
                        f"follow it (default: {DEFAULT_MAX_TIME} without --train_steps, no limit "
                        "with it)")
    p.add_argument("--seed", type=common.non_negative_int, default=0,
                   help="for the model's initial weights, the batches, dropout and the samples")
    p.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda, ...")
    p.add_argument("--precision", choices=["auto", "float32", "bfloat16"], default="auto",
                   help="of the training steps' arithmetic (bfloat16 autocast; weights, optimizer "
                        "and evaluation stay float32). auto: bfloat16 on a CPU that computes it in "
                        "hardware (AVX-512 BF16 or AMX), float32 elsewhere. bfloat16 is refused "
                        "on a CPU without AVX-512 (BW, VL, DQ) and a GPU without bfloat16")


def add_run_options(p):
    p.add_argument("--num_threads", type=common.non_negative_int, default=0,
                   help="CPU threads for torch (0: torch's default, one per core); on a machine "
                        "shared with other jobs use 1, since threads that wait for each other "
                        "stall when the other jobs take their cores")
    p.add_argument("--summary_path", "--output_dir", default="./summaries/",
                   help="folder for metrics.csv, samples.txt and checkpoint.pt")
    p.add_argument("--print_every", type=common.positive_int, default=50,
                   help="steps per metrics.csv row and progress-bar update")
    p.add_argument("--eval_every", type=common.positive_int, default=None,
                   help="steps between validation passes (and checkpoints); "
                        + by_budget("eval_every"))
    p.add_argument("--sample_every", type=common.positive_int, default=None,
                   help="steps between samples written to samples.txt; "
                        + by_budget("sample_every"))
    p.add_argument("--first_eval", type=common.non_negative_int, default=None,
                   help="also evaluate, sample, print both and save at this step, to see early "
                        "how the run goes (0: not); " + by_budget("first_eval"))
    fresh_or_resumed = p.add_mutually_exclusive_group()
    fresh_or_resumed.add_argument("--overwrite", action="store_true",
                                  help="start afresh in a --summary_path that holds an earlier run, "
                                       "deleting its files")
    fresh_or_resumed.add_argument("--resume", action="store_true",
                                  help="continue the run saved in --summary_path; its options are kept "
                                       "except " + ", ".join(f"--{o}" for o in RUN_OPTIONS[:-2]))


def parse_args(argv=None):
    p = common.ArgumentParser(description=__doc__.split("\n")[0],
                              formatter_class=common.StatedDefaultsHelpFormatter)
    add_model_options(p)
    add_training_options(p)
    add_run_options(p)
    return p.parse_args(argv)


def apply_budget_defaults(args):
    """Fill the options left unset: the time limit of a run given no limit, then the defaults
    for the run's --max_time."""
    if args.train_steps is None and args.max_time is None:
        args.max_time = DEFAULT_MAX_TIME
    budget = args.max_time if args.max_time is not None else 0
    defaults = next(d for longest, d in BUDGET_DEFAULTS if budget <= longest)
    for option, value in defaults.items():
        if getattr(args, option) is None:
            setattr(args, option, value)


def cpu_flags():
    """The CPU's feature flags from /proc/cpuinfo (x86 "flags", ARM "Features"); an empty set
    where there is no /proc/cpuinfo (not Linux)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return {flag for line in text.splitlines() if line.startswith(("flags", "Features"))
            for flag in line.split(":", 1)[1].split()}


def native_bfloat16(device):
    """Whether the device computes bfloat16 in hardware. On a CPU without AVX-512 BF16 or AMX,
    PyTorch emulates it, which is slower than float32, so auto keeps float32 there."""
    return device.type == "cpu" and bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def missing_bfloat16(device):
    """What the device lacks to train this model in bfloat16, in words; None if nothing (or, on
    a CPU without /proc/cpuinfo, if it cannot be told)."""
    if device.type == "cuda":
        return None if torch.cuda.is_bf16_supported() else "the GPU has no bfloat16 arithmetic"
    flags = cpu_flags()
    if not flags:
        return None
    if platform.machine() in ("aarch64", "arm64"):
        return None if "bf16" in flags else "the CPU lacks the ARM bf16 extension"
    missing = [flag for flag in BFLOAT16_X86_FLAGS if flag not in flags]
    return f"the CPU lacks {', '.join(missing)} (AVX-512)" if missing else None


def choose_precision(args, device):
    """Resolve --precision auto; refuse bfloat16 where PyTorch's LSTM cannot run it."""
    if args.precision == "auto":
        args.precision = "bfloat16" if native_bfloat16(device) else "float32"
    if args.precision == "bfloat16" and (missing := missing_bfloat16(device)):
        raise ValueError(f"--precision bfloat16 cannot train an LSTM on this machine: {missing}, "
                         "which PyTorch's oneDNN LSTM needs; use --precision float32")


def learning_rate(args, step, seconds):
    """The template's schedule (times learning_rate_decay every learning_rate_step steps), and
    with --linear_decay a linear ramp to 0 at the end of the run, by steps or by the clock."""
    lr = args.learning_rate * args.learning_rate_decay ** (step // args.learning_rate_step)
    if args.linear_decay:
        progress = step / args.train_steps if args.train_steps is not None else 0.0
        if args.max_time is not None:
            progress = max(progress, seconds / args.max_time)
        lr *= max(0.0, 1.0 - progress)
    return lr


# evaluation

@torch.no_grad()
def evaluate(model, dataset, device, chunk=1000):
    """Mean cross-entropy (nats/char) and accuracy over the whole validation split, read as
    long streams with the LSTM state carried along (as pytorch/examples' word_language_model
    evaluates), so every character is predicted with all the text before it as context."""
    model.eval()
    x, y = (t.to(device) for t in dataset.val_streams())
    total_loss, correct, state = 0.0, 0, None
    for i in range(0, x.shape[1], chunk):
        logits, state = model.forward_with_state(x[:, i:i + chunk], state)
        target = y[:, i:i + chunk]
        total_loss += F.cross_entropy(logits.flatten(0, 1), target.flatten(), reduction="sum").item()
        correct += (logits.argmax(-1) == target).sum().item()
    return total_loss / y.numel(), correct / y.numel()


@torch.no_grad()
def evaluate_windows(model, dataset, device, length, batch=512):
    """Mean cross-entropy over the validation split cut into windows of `length` characters,
    each read from a zero state, as training reads its windows: a character has at most
    length - 1 characters of context, so the number compares with bounded-context models."""
    model.eval()
    x, y = dataset.val_windows(length)
    total = 0.0
    for i in range(0, len(x), batch):
        logits = model(x[i:i + batch].to(device))
        total += F.cross_entropy(logits.flatten(0, 1), y[i:i + batch].flatten().to(device),
                                 reduction="sum").item()
    return total / y.numel()


def write_samples(f, model, dataset, step, generator, device):
    """Greedy sentences of 30 characters from random first characters, a longer greedy one, and
    temperature samples, each on one line as a JSON string (newlines written as \\n). Returns
    the (kind, text) pairs."""
    model.eval()

    def sample(n, length, temperature=None):
        first = torch.randint(dataset.vocab_size, (n, 1), generator=generator)
        rest = generate(model, first.to(device), length - 1, temperature, generator).cpu()
        return [dataset.convert_to_string(row) for row in torch.cat([first, rest], 1).tolist()]

    lines = [("greedy", s) for s in sample(5, 30)]
    lines += [("greedy_long", s) for s in sample(1, 200)]
    for tau in SAMPLE_TEMPERATURES:
        lines += [(f"tau={tau}", s) for s in sample(2, 100, tau)]
    f.write(f"step {step}\n")
    for kind, text in lines:
        f.write(f"  {kind:<12}{json.dumps(text, ensure_ascii=False)}\n")
    f.flush()
    return lines


def print_samples(step, lines, width=100):
    """The long greedy sample and the first at each temperature, cut to `width` characters,
    under a header that says what the temperature means here."""
    shown = [(kind, text) for kind, text in lines if kind == "greedy_long"]
    shown += [next((k, t) for k, t in lines if k == f"tau={tau}") for tau in SAMPLE_TEMPERATURES]
    tqdm.write(f"samples at step {step} ({temperature_note(SAMPLE_TEMPERATURES[0])}):")
    for kind, text in shown:
        tqdm.write(f"  {kind:<12}{json.dumps(text[:width], ensure_ascii=False)}")


# checkpoints

@dataclass
class RunState:
    """Where the run stands; saved in the checkpoint, so a resumed run continues from it."""
    step: int = 0
    seconds: float = 0.0  # wall clock of the run so far, over all its resumptions
    # (step, val loss, val accuracy, losses of windows from a fresh state: seq_length, 256)
    last_eval: tuple | None = None
    last_checkpoint: int | None = None  # step of the last checkpoint saved
    last_samples: int | None = None  # step of the last samples written


def rng_states(data_generator, sample_generator):
    np_state = np.random.get_state()
    states = {"torch": torch.get_rng_state(), "python": random.getstate(),
              "numpy": (np_state[0], np_state[1].tolist(), *np_state[2:]),
              "data": data_generator.get_state(), "sample": sample_generator.get_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states, data_generator, sample_generator):
    torch.set_rng_state(states["torch"])
    random.setstate(states["python"])
    name, keys, *rest = states["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), *rest))
    data_generator.set_state(states["data"])
    sample_generator.set_state(states["sample"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def load_checkpoint(path):
    if not path.is_file():
        raise ValueError(f"--resume: no checkpoint at {path}")
    try:
        ckpt = torch.load(path, weights_only=True)
    except Exception as e:
        raise ValueError(f"--resume: {path} is not a training checkpoint ({type(e).__name__})") from None
    if not isinstance(ckpt, dict) or "optimizer" not in ckpt:
        raise ValueError(f"--resume: {path} is not a training checkpoint "
                         "(an exported one holds only the weights)")
    missing = [key for key in CHECKPOINT_KEYS if key not in ckpt]
    if missing:
        raise ValueError(f"--resume: {path} is not a complete training checkpoint (no {', '.join(missing)})")
    return ckpt


class Diverged(ValueError):
    """Training diverged; common.run prints the message as one line."""


def check_finite(what, value, step, r):
    """Stop a run whose loss is not finite or has exploded past r.loss_limit (far worse than
    guessing every character as equally likely): training from there only wastes the budget."""
    if math.isfinite(value) and value <= r.loss_limit:
        return
    kept = (f"the last good checkpoint (step {r.state.last_checkpoint}) is kept in {r.ckpt_path}"
            if r.state.last_checkpoint is not None else "no checkpoint was saved before it")
    raise Diverged(f"training diverged at step {step}: {what} {value:.4g} nats/char "
                   f"(uniform guessing: {r.loss_limit / 2:.2f}); try a lower --learning_rate (this run: "
                   f"{r.args.learning_rate:g}) or --max_norm ({r.args.max_norm:g}); {kept}")


# training

class RunLog:
    """metrics.csv and samples.txt, open for the whole run. A metrics row sums the training steps
    since the previous row; a resumed run first cuts both files back to their sizes at the
    checkpoint, so they continue exactly from it."""

    def __init__(self, summary, sizes=None):
        metrics_path, samples_path = summary / "metrics.csv", summary / "samples.txt"
        if sizes is None:
            with open(metrics_path, "w", newline="") as f:
                csv.writer(f).writerow(METRICS_FIELDS)
            samples_path.write_text("", encoding="utf-8")
        else:
            os.truncate(metrics_path, sizes[0])
            os.truncate(samples_path, sizes[1])
        self.metrics_file = open(metrics_path, "a", newline="")
        self.metrics = csv.writer(self.metrics_file)
        self.samples = open(samples_path, "a", encoding="utf-8")
        self.loss_sum, self.correct, self.steps, self.seconds = 0.0, 0, 0, 0.0

    def add_step(self, loss, correct, seconds):
        self.loss_sum += loss
        self.correct += correct
        self.steps += 1
        self.seconds += seconds

    def write_row(self, run, learning_rate, chars_per_step, val=("", "", "", "")):
        """A metrics.csv row; returns the training loss and speed since the last row (None if
        no step was taken since)."""
        stats = None
        if self.steps:
            stats = (self.loss_sum / self.steps, self.steps * chars_per_step / self.seconds)
        self.metrics.writerow([run.step, round(run.seconds, 3), stats[0] if stats else "",
                               self.correct / (self.steps * chars_per_step) if stats else "", *val,
                               learning_rate, stats[1] if stats else ""])
        self.metrics_file.flush()  # on disk at once: a reader follows the run, a crash keeps it
        self.loss_sum, self.correct, self.steps, self.seconds = 0.0, 0, 0, 0.0
        return stats

    def sizes(self):
        self.metrics_file.flush()
        self.samples.flush()
        return self.metrics_file.tell(), self.samples.tell()

    def close(self):
        self.metrics_file.close()
        self.samples.close()


@dataclass
class Run:
    """Everything a training run works with, in one place."""
    args: object
    device: torch.device
    dataset: TextDataset
    model: TextGenerationModel
    optimizer: torch.optim.Optimizer
    data_generator: torch.Generator
    sample_generator: torch.Generator
    state: RunState
    log: RunLog
    ckpt_path: Path
    lock: common.OutputLock  # held for the whole run: a second run on the folder is refused
    loss_limit: float  # a loss above this is far worse than uniform guessing: the run has diverged


def save_checkpoint(r):
    r.state.last_checkpoint = r.state.step
    metrics_bytes, samples_bytes = r.log.sizes()
    common.save_atomically({
        "model": r.model.state_dict(), "optimizer": r.optimizer.state_dict(),
        "run": asdict(r.state), "step": r.state.step,
        "rng": rng_states(r.data_generator, r.sample_generator),
        "vocab": r.dataset.chars, "book_sha256": r.dataset.sha256, "options": vars(r.args),
        "metrics_bytes": metrics_bytes, "samples_bytes": samples_bytes,
    }, r.ckpt_path)


def validate(r):
    """A metrics row with the three validation losses (part2/README.md: Validation loss): the
    state carried over the split, and windows of seq_length and 256 characters read from a fresh
    state. Returns the training loss and speed since the last row."""
    val_loss, val_acc = evaluate(r.model, r.dataset, r.device)
    check_finite("validation loss", val_loss, r.state.step, r)
    windows = (evaluate_windows(r.model, r.dataset, r.device, r.args.seq_length),
               evaluate_windows(r.model, r.dataset, r.device, 256))
    r.state.last_eval = (r.state.step, val_loss, val_acc, *windows)
    tqdm.write(f"step {r.state.step} ({r.state.seconds:.0f} s): val loss {val_loss:.4f} nats/char, "
               f"val accuracy {val_acc:.4f}")
    return write_row(r, (val_loss, val_acc, *windows))


def write_row(r, val=("", "", "", "")):
    return r.log.write_row(r.state, r.optimizer.param_groups[0]["lr"],
                           r.args.batch_size * r.args.seq_length, val)


def sample(r):
    """Samples into samples.txt, and a few of them on the terminal."""
    lines = write_samples(r.log.samples, r.model, r.dataset, r.state.step, r.sample_generator,
                          r.device)
    r.state.last_samples = r.state.step
    print_samples(r.state.step, lines)


def read_book(args, ckpt):
    if Path(args.txt_file).is_dir():
        raise ValueError(f"--txt_file {args.txt_file} is a directory, not a text file")
    if not Path(args.txt_file).exists() and Path(args.txt_file).as_posix().endswith("assets/book.txt"):
        raise ValueError("assets/book.txt is missing: run `python assets/download.py` first "
                         "(or pass --txt_file with any UTF-8 book)")
    dataset = TextDataset(args.txt_file, args.seq_length, args.strip_gutenberg)
    dataset.sha256 = hashlib.sha256(Path(args.txt_file).read_bytes()).hexdigest()
    if ckpt is not None and (ckpt["vocab"] != dataset.chars or ckpt.get("book_sha256", dataset.sha256) != dataset.sha256):
        raise ValueError(f"{args.txt_file} has changed since the checkpoint was saved: resume with the book as it was")
    return dataset


def claim_summary(args, summary):
    """Lock --summary_path for this run; a fresh run refuses a folder that holds an earlier run's
    files unless --overwrite deletes them (so no --resume can mix two runs)."""
    lock = common.OutputLock(summary).acquire()
    earlier = [name for name in RUN_FILES if (summary / name).exists()]
    if earlier and not args.resume:
        if not args.overwrite:
            lock.release()
            raise ValueError(f"{summary} holds an earlier run ({', '.join(earlier)}): continue it with "
                             "--resume, replace it with --overwrite, or choose another --summary_path")
        for name in earlier:
            (summary / name).unlink()
    return lock


def setup(args):
    """The run: its options, book, model, optimizer, random numbers and files, new or continued
    from the checkpoint in --summary_path. Refuses what cannot run before writing anything."""
    summary = Path(args.summary_path)
    ckpt = load_checkpoint(summary / "checkpoint.pt") if args.resume else None
    given_book = args.txt_file
    if ckpt is not None:  # the run's own options, except those that may change on resume
        vars(args).update(ckpt["options"], **{k: getattr(args, k) for k in RUN_OPTIONS})
        if given_book is not None and Path(given_book).resolve() != Path(args.txt_file).resolve():
            raise ValueError(f"--resume: the run in {summary} trained on {args.txt_file}, not {given_book}")
    elif given_book is None:
        args.txt_file = DEFAULT_BOOK
    apply_budget_defaults(args)
    if args.num_threads > 0:
        torch.set_num_threads(args.num_threads)
    device = common.resolve_device(args.device)
    choose_precision(args, device)
    dataset = read_book(args, ckpt)

    h, layers, e, V = args.lstm_num_hidden, args.lstm_num_layers, args.embedding_dim or dataset.vocab_size, dataset.vocab_size
    weights = 4 * h * (e + h + 2) * layers + (h + e + 1) * V  # LSTM layers, read-out and embedding
    activations = args.batch_size * args.seq_length * (6 * h * layers + 2 * V)  # kept for the backward pass
    common.check_fits(4 * (4 * weights + activations), f"--lstm_num_hidden {h} x --lstm_num_layers {layers} "
                      f"with --batch_size {args.batch_size} x --seq_length {args.seq_length}")
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    np.random.seed(args.seed)
    data_generator = torch.Generator().manual_seed(args.seed)
    sample_generator = torch.Generator().manual_seed(args.seed + 1)
    model = TextGenerationModel(args.batch_size, args.seq_length, dataset.vocab_size,
                                args.lstm_num_hidden, args.lstm_num_layers, device,
                                embedding_dim=args.embedding_dim,
                                dropout_keep_prob=args.dropout_keep_prob,
                                io_dropout=args.io_dropout, tie_weights=args.tie_weights)
    # The fused kernel updates all parameters at once (a few percent of a step on the CPU).
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate,
                                  weight_decay=args.weight_decay,
                                  fused=device.type in ("cpu", "cuda"))

    if ckpt is None:
        state = RunState()
        if args.unigram_bias:
            model.init_output_bias(dataset.char_counts())
    else:
        try:
            state = RunState(**ckpt["run"])
            model.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            set_rng_states(ckpt["rng"], data_generator, sample_generator)
        except (TypeError, ValueError, RuntimeError, KeyError) as err:  # e.g. weights of another shape
            raise ValueError(f"--resume: {summary / 'checkpoint.pt'} does not match its own options "
                             f"({common.first_line(err)})") from None
    lock = claim_summary(args, summary)  # the first write into --summary_path
    log = RunLog(summary, None if ckpt is None else (ckpt["metrics_bytes"], ckpt["samples_bytes"]))
    return Run(args, device, dataset, model, optimizer, data_generator, sample_generator, state,
               log, summary / "checkpoint.pt", lock, loss_limit=2 * math.log(dataset.vocab_size))


def train_step(r, bfloat16):
    """One step: a batch of random windows, each read from a zero state."""
    args, state = r.args, r.state
    tick = time.perf_counter()
    for group in r.optimizer.param_groups:
        group["lr"] = learning_rate(args, state.step, state.seconds)
    r.model.train()
    x, y = r.dataset.batch(args.batch_size, r.data_generator)
    x, y = x.to(r.device), y.to(r.device)
    with bfloat16:
        logits = r.model(x)
    loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())  # mean over time (Eq. 13)
    loss_value = loss.item()
    check_finite("training loss", loss_value, state.step + 1, r)
    r.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(r.model.parameters(), args.max_norm)
    r.optimizer.step()
    state.step += 1
    r.log.add_step(loss_value, (logits.argmax(-1) == y).sum().item(), time.perf_counter() - tick)


def after_step(r):
    """Every so many steps: a metrics row (with validation), samples, a checkpoint. Returns the
    training loss and speed since the last row, when a row was written."""
    step, args = r.state.step, r.args
    evaluating = step % args.eval_every == 0 or step == args.first_eval
    stats = None
    if evaluating:
        stats = validate(r)
    elif step % args.print_every == 0:
        stats = write_row(r)
    if step % args.sample_every == 0 or step == args.first_eval:
        sample(r)
    if evaluating:
        save_checkpoint(r)
    return stats


def progress_bar(args, state):
    """A bar that ends where the run stops: in seconds under --max_time alone, in steps under
    --train_steps alone; under both, which comes first is not known, so it counts steps without
    an end. It closes before an error message, so the message stands on its own line."""
    desc = f"training on {Path(args.txt_file or DEFAULT_BOOK).name}"
    if args.train_steps is None:
        return tqdm(total=args.max_time, initial=state.seconds, unit="s", desc=desc,
                    dynamic_ncols=True, bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s{postfix}")
    total = args.train_steps if args.max_time is None else None
    return tqdm(total=total, initial=state.step, unit="step", desc=desc, dynamic_ncols=True)


def finish(r, interrupted):
    """Save an interrupted run and exit with 130; else evaluate, sample and save at the end."""
    state, args = r.state, r.args
    if interrupted:
        if r.log.steps:
            write_row(r)
        save_checkpoint(r)
        print(f"interrupted at step {state.step}; saved {r.ckpt_path} "
              f"(continue with --resume --summary_path {args.summary_path})", file=sys.stderr)
        raise SystemExit(130)
    if state.last_eval is None or state.last_eval[0] != state.step:
        validate(r)
    if state.last_samples != state.step:
        sample(r)
    save_checkpoint(r)
    r.log.close()
    _, val_loss, val_acc, window, window_256 = state.last_eval
    print(f"done after {state.step} steps: validation loss {val_loss:.4f} nats/char (state carried "
          f"over the split), accuracy {val_acc:.4f}; from a fresh state: {window:.4f} "
          f"({args.seq_length}-character windows), {window_256:.4f} (256); files in "
          f"{args.summary_path}")


def train(args):
    r = setup(args)
    args, state = r.args, r.state
    bfloat16 = torch.autocast(r.device.type, torch.bfloat16, enabled=args.precision == "bfloat16")
    started, seconds_before = time.monotonic(), state.seconds
    last_step = args.train_steps if args.train_steps is not None else math.inf
    by_time = args.train_steps is None
    try:
        with common.StopOnInterrupt() as interrupt, progress_bar(args, state) as bar:
            while state.step < last_step and not interrupt.requested:
                state.seconds = seconds_before + time.monotonic() - started
                if args.max_time is not None and state.seconds >= args.max_time:
                    break
                train_step(r, bfloat16)
                state.seconds = seconds_before + time.monotonic() - started
                bar.update(min(state.seconds, bar.total) - bar.n if by_time else 1)
                if stats := after_step(r):
                    bar.set_postfix({"step": state.step, "loss": f"{stats[0]:.3f}",
                                     "chars/s": f"{stats[1]:.0f}"})
        state.seconds = seconds_before + time.monotonic() - started
        finish(r, interrupt.requested)
    finally:
        r.lock.release()
    return r.model, r.dataset


def main(argv=None):
    train(parse_args(argv))


if __name__ == "__main__":
    common.run(main, "train.py")
