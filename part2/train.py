"""Train a character-level LSTM on a book.

    python part2/train.py --txt_file assets/book.txt

Writes into --summary_path: metrics.csv (losses, accuracies, learning rate, speed), samples.txt
(text generated during training) and checkpoint.pt (everything needed to resume or generate).
"""
import csv
import json
import os
import random
import signal
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from part2 import cli
from part2.dataset import TextDataset
from part2.generate import generate
from part2.model import TextGenerationModel

METRICS_FIELDS = ["step", "seconds", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
                  "learning_rate", "chars_per_second"]
SAMPLE_TEMPERATURES = (0.5, 1.0, 2.0)
# Options that may change when a run is resumed; all others are taken from the checkpoint.
RUN_OPTIONS = ("train_steps", "max_time", "summary_path", "device", "print_every", "sample_every",
               "eval_every", "num_threads", "resume")


def unit_interval(text):
    value = float(text)
    if not 0 < value <= 1:
        raise cli.argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def parse_args(argv=None):
    p = cli.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--txt_file", default="assets/book.txt", help="the book, a UTF-8 text file")
    p.add_argument("--strip_gutenberg", action=cli.argparse.BooleanOptionalAction, default=True,
                   help="cut Project Gutenberg's licence header and footer when the markers are there")
    p.add_argument("--seq_length", type=cli.positive_int, default=30,
                   help="characters per training window, the longest backpropagation through time")
    p.add_argument("--embedding_dim", type=cli.non_negative_int, default=64,
                   help="0 feeds one-hot characters")
    p.add_argument("--lstm_num_hidden", type=cli.positive_int, default=128)
    p.add_argument("--lstm_num_layers", type=cli.positive_int, default=2)
    p.add_argument("--unigram_bias", action=cli.argparse.BooleanOptionalAction, default=True,
                   help="start the read-out bias at the log frequencies of the characters in the "
                        "training split (--no-unigram_bias keeps PyTorch's random init)")
    p.add_argument("--batch_size", type=cli.positive_int, default=64)
    p.add_argument("--learning_rate", type=cli.positive_float, default=1e-2, help="for Adam")
    p.add_argument("--learning_rate_decay", type=unit_interval, default=0.96,
                   help="multiply the learning rate by this every --learning_rate_step steps")
    p.add_argument("--learning_rate_step", type=cli.positive_int, default=5000)
    p.add_argument("--linear_decay", action=cli.argparse.BooleanOptionalAction, default=True,
                   help="also decay the learning rate linearly to 0 at the end of the run: at "
                        "--train_steps, or at --max_time seconds if that comes first")
    p.add_argument("--dropout_keep_prob", type=unit_interval, default=1.0,
                   help="keep probability of the dropout between LSTM layers")
    p.add_argument("--max_norm", type=cli.positive_float, default=5.0,
                   help="clip the gradient to this norm")
    p.add_argument("--train_steps", type=cli.positive_int, default=1_000_000)
    p.add_argument("--max_time", type=cli.positive_float, default=None,
                   help="stop when the run has lasted this many seconds of wall clock, counted "
                        "over all its resumptions (then evaluate and save)")
    p.add_argument("--seed", type=cli.non_negative_int, default=0)
    p.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda, ...")
    p.add_argument("--num_threads", type=cli.non_negative_int, default=0,
                   help="CPU threads for torch (0: torch's default, one per core); on a machine "
                        "shared with other jobs use 1, since threads that wait for each other "
                        "stall when the other jobs take their cores")
    p.add_argument("--summary_path", default="./summaries/")
    p.add_argument("--print_every", type=cli.positive_int, default=50,
                   help="steps per metrics.csv row and progress-bar update")
    p.add_argument("--eval_every", type=cli.positive_int, default=500,
                   help="steps between validation passes (and checkpoints)")
    p.add_argument("--sample_every", type=cli.positive_int, default=500,
                   help="steps between samples written to samples.txt")
    p.add_argument("--resume", action="store_true",
                   help="continue the run saved in --summary_path; its options are kept except "
                        + ", ".join(f"--{o}" for o in RUN_OPTIONS[:-1]))
    return p.parse_args(argv)


@torch.no_grad()
def evaluate(model, dataset, device, chunk=1000):
    """Mean cross-entropy (nats/char) and accuracy over the whole validation split, read as
    long streams with the LSTM state carried along (as pytorch/examples' word_language_model
    evaluates), so every character is predicted with all the text before it as context."""
    model.eval()
    x, y = (t.to(device) for t in dataset.val_streams())
    total_loss, correct, state = 0.0, 0, None
    for i in range(0, x.shape[1], chunk):
        logits, state = model(x[:, i:i + chunk], state)
        target = y[:, i:i + chunk]
        total_loss += F.cross_entropy(logits.flatten(0, 1), target.flatten(), reduction="sum").item()
        correct += (logits.argmax(-1) == target).sum().item()
    return total_loss / y.numel(), correct / y.numel()


def write_samples(f, model, dataset, step, generator, device):
    """Greedy sentences of 30 characters from random first characters, a longer greedy one, and
    temperature samples, each on one line as a JSON string (newlines written as \\n)."""
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


def save_atomically(obj, path):
    """Write to a temporary file first, so a crash never leaves a half-written checkpoint."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def pick_device(name):
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available here (use --device cpu)")
    return device


def learning_rate(args, step, seconds):
    """The template's schedule (times learning_rate_decay every learning_rate_step steps), and
    with --linear_decay a linear ramp to 0 at the end of the run, by steps or by the clock."""
    lr = args.learning_rate * args.learning_rate_decay ** (step // args.learning_rate_step)
    if args.linear_decay:
        progress = step / args.train_steps
        if args.max_time is not None:
            progress = max(progress, seconds / args.max_time)
        lr *= max(0.0, 1.0 - progress)
    return lr


def train(args):
    summary = Path(args.summary_path)
    ckpt_path = summary / "checkpoint.pt"
    ckpt = None
    if args.resume:
        if not ckpt_path.is_file():
            raise ValueError(f"--resume: no checkpoint at {ckpt_path}")
        try:
            ckpt = torch.load(ckpt_path, weights_only=True)
        except Exception as e:
            raise ValueError(f"--resume: {ckpt_path} is not a training checkpoint "
                             f"({type(e).__name__})") from None
        if not isinstance(ckpt, dict) or "optimizer" not in ckpt:
            raise ValueError(f"--resume: {ckpt_path} is not a training checkpoint "
                             "(an exported one holds only the weights)")
        run_options = {k: getattr(args, k) for k in RUN_OPTIONS}
        vars(args).update(ckpt["options"], **run_options)

    if args.num_threads > 0:
        torch.set_num_threads(args.num_threads)
    device = pick_device(args.device)
    if Path(args.txt_file).is_dir():
        raise ValueError(f"--txt_file {args.txt_file} is a directory, not a text file")
    dataset = TextDataset(args.txt_file, args.seq_length, args.strip_gutenberg)
    if ckpt is not None and ckpt["vocab"] != dataset.chars:
        raise ValueError(f"{args.txt_file} has a different vocabulary than the checkpoint's book")

    torch.manual_seed(args.seed)
    random.seed(args.seed)
    np.random.seed(args.seed)
    data_generator = torch.Generator().manual_seed(args.seed)
    sample_generator = torch.Generator().manual_seed(args.seed + 1)
    model = TextGenerationModel(dataset.vocab_size, args.lstm_num_hidden, args.lstm_num_layers,
                                args.embedding_dim, args.dropout_keep_prob).to(device)
    # The fused kernel updates all parameters at once (a few percent of a step on the CPU).
    optimizer = torch.optim.Adam(model.parameters(), lr=args.learning_rate,
                                 fused=device.type in ("cpu", "cuda"))
    summary.mkdir(parents=True, exist_ok=True)
    metrics_path, samples_path = summary / "metrics.csv", summary / "samples.txt"
    step = 0
    if ckpt is None:
        if args.unigram_bias:
            model.init_output_bias(dataset.char_counts())
        with open(metrics_path, "w", newline="") as f:
            csv.writer(f).writerow(METRICS_FIELDS)
        samples_path.write_text("", encoding="utf-8")
    else:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        set_rng_states(ckpt["rng"], data_generator, sample_generator)
        step = ckpt["step"]
        # Forget what was logged after the checkpoint, so the files continue exactly from it.
        os.truncate(metrics_path, ckpt["metrics_bytes"])
        os.truncate(samples_path, ckpt["samples_bytes"])

    metrics_file = open(metrics_path, "a", newline="")
    metrics = csv.writer(metrics_file)
    samples_file = open(samples_path, "a", encoding="utf-8")

    def save_checkpoint():
        metrics_file.flush()
        save_atomically({
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "step": step,
            "rng": rng_states(data_generator, sample_generator),
            "vocab": dataset.chars, "options": vars(args),
            "metrics_bytes": metrics_file.tell(), "samples_bytes": samples_file.tell(),
            "last_eval": last_eval, "seconds": seconds(),
        }, ckpt_path)

    # Ctrl-C asks the loop to stop after the current step, so the checkpoint is consistent;
    # a second Ctrl-C stops at once.
    stop = []

    def on_interrupt(signum, frame):
        stop.append("interrupted")
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGINT, on_interrupt)

    n_chars = args.batch_size * args.seq_length
    loss_sum, correct_sum, steps_since_row, train_seconds = 0.0, 0, 0, 0.0
    last_eval = ckpt["last_eval"] if ckpt is not None else None  # (step, val loss, val accuracy)
    started = time.monotonic()

    def seconds():
        """Wall-clock time of the run so far, over all its resumptions."""
        return (ckpt["seconds"] if ckpt is not None else 0.0) + time.monotonic() - started

    def write_row(val=None):
        nonlocal loss_sum, correct_sum, steps_since_row, train_seconds
        train_loss = loss_sum / steps_since_row if steps_since_row else ""
        train_acc = correct_sum / (steps_since_row * n_chars) if steps_since_row else ""
        speed = steps_since_row * n_chars / train_seconds if steps_since_row else ""
        val_loss, val_acc = val if val else ("", "")
        metrics.writerow([step, round(seconds(), 3), train_loss, train_acc, val_loss, val_acc,
                          optimizer.param_groups[0]["lr"], speed])
        loss_sum, correct_sum, steps_since_row, train_seconds = 0.0, 0, 0, 0.0
        return train_loss, speed

    def validate():
        nonlocal last_eval
        val_loss, val_acc = evaluate(model, dataset, device)
        write_row((val_loss, val_acc))
        last_eval = (step, val_loss, val_acc)
        tqdm.write(f"step {step}: val loss {val_loss:.4f} nats/char, val accuracy {val_acc:.4f}")

    bar = tqdm(total=args.train_steps, initial=step, unit="step", dynamic_ncols=True,
               desc=f"training on {Path(args.txt_file).name}")
    while step < args.train_steps and not stop:
        elapsed = seconds()
        if args.max_time is not None and elapsed >= args.max_time:
            stop.append("time")
            break
        tick = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(args, step, elapsed)
        model.train()
        x, y = dataset.batch(args.batch_size, data_generator)
        x, y = x.to(device), y.to(device)
        logits, _ = model(x)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())  # mean over all time steps
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_norm)
        optimizer.step()
        step += 1
        loss_sum += loss.item()
        correct_sum += (logits.argmax(-1) == y).sum().item()
        steps_since_row += 1
        train_seconds += time.perf_counter() - tick
        bar.update()

        if step % args.eval_every == 0:
            validate()
        elif step % args.print_every == 0:
            train_loss, speed = write_row()
            bar.set_postfix(loss=f"{train_loss:.3f}", chars_per_s=f"{speed:.0f}")
        if step % args.sample_every == 0:
            write_samples(samples_file, model, dataset, step, sample_generator, device)
        if step % args.eval_every == 0:
            save_checkpoint()
    bar.close()

    signal.signal(signal.SIGINT, signal.default_int_handler)
    if stop and stop[0] == "interrupted":
        if steps_since_row:
            write_row()
        save_checkpoint()
        print(f"interrupted at step {step}; saved {ckpt_path} "
              f"(continue with --resume --summary_path {args.summary_path})", file=sys.stderr)
        raise SystemExit(130)
    if last_eval is None or last_eval[0] != step:
        validate()
    save_checkpoint()
    metrics_file.close()
    samples_file.close()
    print(f"done after {step} steps: val loss {last_eval[1]:.4f} nats/char, "
          f"val accuracy {last_eval[2]:.4f}; files in {summary}")
    return model, dataset


def main(argv=None):
    train(parse_args(argv))


if __name__ == "__main__":
    cli.run(main, "train.py")
