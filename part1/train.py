"""Train a VanillaRNN or LSTM to predict the last digit of a palindrome (Questions 1.3 and 1.6).

    python part1/train.py --model_type LSTM --input_length 10

The palindrome length is T = input_length + 1: the model reads the first T-1 digits and predicts
the last. Every 100 steps (a window) the mean training loss and accuracy are recorded, and a run
stops
  - solved:   after 5 windows in a row with every training prediction right, at length T;
  - budget:   after --train_steps steps at one length (for a curriculum run: the length it is on);
  - plateau:  after --min_steps steps at its length, once the loss has left chance (a window loss
              below ln 10 - 0.1 nats) and has not improved for --patience steps;
  - diverged: as soon as a window loss is not finite or above 10 ln 10 (one line says so, exit 1).
So a run at chance is never cut short before the budget: it may not have started learning yet.
Whenever a window at length T reaches training accuracy 0.99, the weights are scored on a validation
set (2,000 palindromes, seed --eval_seed + 1) and the best are kept. A run that stops unsolved is
scored with those weights when they beat its last ones: a run that learned the task and then lost it
(long palindromes can make training collapse) counts as having learned it, whatever step it stopped at.
The model is then scored on a held-out set of --eval_size palindromes drawn from their own seed.
Ctrl-C stops training early (after the current step) and still evaluates and writes every output;
train() can also save such a run's whole state and continue it later, step for step (the sweep does),
under the same code, PyTorch and machine only (RunState.restore refuses a state saved under others).
"""
import argparse
import hashlib
import math
import pickle
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
from tqdm import tqdm

from part1 import common
from part1.dataset import PalindromeDataset
from part1.lstm import LSTM
from part1.vanilla_rnn import VanillaRNN

ROOT = Path(__file__).resolve().parent.parent
WINDOW = 100  # steps per point of the training curve and per convergence check
SOLVED_WINDOWS = 5  # this many windows in a row with every training prediction right: solved
MIN_DELTA = 0.01  # nats: a smaller drop of the window loss does not count as progress
CHANCE_LOSS = math.log(10)  # cross-entropy of a uniform guess over the 10 digits
LEFT_CHANCE = CHANCE_LOSS - 0.1  # a best window loss below this has left chance: patience may apply
EXPLODED_LOSS = 10 * CHANCE_LOSS  # a window loss above this (or not finite) has diverged
CURRICULUM_START, CURRICULUM_GROWTH, CURRICULUM_ACCURACY = 10, 1.25, 0.99
CANDIDATE_ACCURACY = 0.99  # a window this accurate at length T has its weights scored on the validation set
VALIDATION_SIZE = 2000  # palindromes that pick the weights to score (seed eval_seed + 1)


def build_parser():
    parser = common.ArgumentParser(
        description="Train a hand-written vanilla RNN or LSTM on palindromes of length T = input_length + 1.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--model_type", default="RNN", choices=["RNN", "LSTM"], help="architecture")
    parser.add_argument("--input_length", type=common.positive_int, default=10, help="digits the model reads (T - 1)")
    parser.add_argument("--input_dim", type=int, default=10, choices=[1, 10],
                        help="10: one-hot digits; 1: the raw digit value (the course template's default, "
                             "much harder to learn: see the report)")
    parser.add_argument("--num_classes", type=common.positive_int, default=10, help="output classes (digits)")
    parser.add_argument("--num_hidden", type=common.positive_int, default=128, help="hidden units")
    parser.add_argument("--batch_size", type=common.positive_int, default=128, help="palindromes per step")
    parser.add_argument("--learning_rate", type=common.learning_rate, default=0.001, help="RMSprop learning rate")
    parser.add_argument("--train_steps", type=common.positive_int, default=10000,
                        help="step budget: stop unsolved after this many steps at one palindrome length")
    parser.add_argument("--max_norm", type=common.positive_float, default=10.0, help="gradient-norm clipping threshold")
    parser.add_argument("--device", default="auto", help="'auto' (cuda when available, else cpu), 'cpu', 'cuda:0', ...")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial weights and the training stream")
    parser.add_argument("--eval_size", type=common.positive_int, default=10000, help="held-out palindromes to score on")
    parser.add_argument("--eval_seed", type=int, default=2019, help="seed of the held-out set (independent of --seed)")
    parser.add_argument("--min_steps", type=common.positive_int, default=10000,
                        help="no plateau stop before this many steps at the final length")
    parser.add_argument("--patience", type=common.positive_int, default=2000,
                        help=f"after --min_steps, stop once the loss has left chance (best {WINDOW}-step window "
                             f"loss below ln 10 - 0.1) and has not fallen {MIN_DELTA} nats below its best for "
                             "this many steps")
    parser.add_argument("--forget_bias", type=common.finite_float, default=0.0, help="initial forget-gate bias b_f (LSTM only)")
    parser.add_argument("--chrono", action="store_true",
                        help="chrono initialisation (LSTM only; Tallec & Ollivier 2018): b_f = log U(1, T-1), "
                             "b_i = -b_f, replacing --forget_bias")
    parser.add_argument("--identity_init", action="store_true",
                        help="identity recurrent matrix W_hh = I (RNN only; Le, Jaitly & Hinton 2015)")
    parser.add_argument("--curriculum", action="store_true",
                        help=f"start on palindromes of length {CURRICULUM_START} and grow the length "
                             f"{CURRICULUM_GROWTH}x whenever a {WINDOW}-step window reaches training accuracy "
                             f"{CURRICULUM_ACCURACY}, up to T; convergence is judged at T only")
    parser.add_argument("--num_threads", type=common.positive_int, help="CPU threads for torch (default: torch's choice)")
    parser.add_argument("--output", type=Path, help="write options, training curve and held-out accuracy here (JSON)")
    parser.add_argument("--checkpoint", type=Path, help="save the trained model's weights and options here")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def build_model(config, device):
    model_class = {"RNN": VanillaRNN, "LSTM": LSTM}[config["model_type"]]
    if config["model_type"] == "LSTM":
        extra = {"forget_bias": config["forget_bias"],
                 "chrono": config["input_length"] + 1 if config.get("chrono") else None}
    else:
        extra = {"identity_init": bool(config.get("identity_init"))}
    return model_class(config["input_length"], config["input_dim"], config["num_hidden"],
                       config["num_classes"], device=device, **extra)


@torch.no_grad()
def evaluate(model, inputs, targets, batch_size=500):
    """Held-out (accuracy, mean cross-entropy), in batches without building a graph.

    The fast path keeps every gate of every step: 500 palindromes of length 500 take about 1.4 GB.
    """
    model.eval()
    correct, loss = 0, 0.0
    for x, y in zip(inputs.split(batch_size), targets.split(batch_size), strict=True):
        logits = model(x)
        correct += (logits.argmax(1) == y).sum().item()
        loss += nn.functional.cross_entropy(logits, y, reduction="sum").item()
    model.train()
    return correct / len(targets), loss / len(targets)


def clone_state(model):
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


def save_checkpoint(path, config, model):
    """The trained weights with the options that rebuild the model (see `load_checkpoint`)."""
    common.save_atomically({"options": config, "model": model.state_dict()}, path)


def read_saved(path, device, what):
    """torch.load with weights_only=True: tensors, dicts, lists, strings and numbers, never code. A file it
    cannot read (truncated, foreign, or holding other objects) is a one-line error naming it."""
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError:
        raise ValueError(f"{path}: refused: it holds objects other than tensors, numbers, strings, lists and dicts "
                         f"(loading them could run code), so it is not {what}") from None
    except Exception as err:  # RuntimeError, OSError, EOFError ...: a truncated or foreign file
        if isinstance(err, OSError) and err.filename:
            raise  # missing or not readable: common.run names it in one line
        raise ValueError(f"{path}: cannot be read as {what} ({common.first_line(err)})") from None


def load_checkpoint(path, device="cpu"):
    checkpoint = read_saved(path, device, "a checkpoint of part1/train.py")
    try:
        model = build_model(checkpoint["options"], device)
        model.load_state_dict(checkpoint["model"])
    except (KeyError, TypeError, RuntimeError) as err:
        raise ValueError(f"{path}: not a checkpoint of part1/train.py ({common.first_line(err)})") from None
    return model, checkpoint["options"]


RUN_KEYS = ("model_type", "input_length", "input_dim", "num_classes", "num_hidden", "batch_size", "learning_rate",
            "train_steps", "max_norm", "seed", "min_steps", "patience", "forget_bias", "chrono", "identity_init",
            "curriculum")
STATE_VERSION = 2  # of the format of a saved state (1: the states saved before it had a number)
# The files whose arithmetic a run's numbers come from: a saved state continues only with the same.
CODE = ("part1/train.py", "part1/dataset.py", "part1/vanilla_rnn.py", "part1/lstm.py", "part1/fast/bptt.py")


def run_options(config):
    """The options that define a run (RUN_KEYS): a saved state continues only a run with the same ones."""
    return {k: config.get(k) for k in RUN_KEYS}


def code_commit():
    """The git commit of this code, with "+changes" when a tracked .py file differs from it ("unknown"
    outside a git checkout): every result records it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        changed = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "*.py"], cwd=ROOT, capture_output=True)
    except OSError:  # no git
        return "unknown"
    if head.returncode != 0:
        return "unknown"
    return head.stdout.strip() + ("+changes" if changed.returncode != 0 else "")


def code_fingerprint(device):
    """A hash of the files in CODE, the PyTorch version and the machine (CPU or GPU model): what decides the
    rounding of every step. A run continues step for step only where all of them are the same."""
    digest = hashlib.sha256(f"{torch.__version__}\n{common.machine_name(device)}".encode())
    for name in CODE:
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()[:16]


def next_length(length, T):
    """The curriculum's next palindrome length after a window at `length` reached CURRICULUM_ACCURACY."""
    return min(T, math.ceil(length * CURRICULUM_GROWTH))


def diverged(loss):
    return not math.isfinite(loss) or loss > EXPLODED_LOSS


@dataclass
class RunState:
    """What a run carries from one step to the next besides its model, optimizer and random stream: where
    it is, its curve, and what the stopping rules remember. save() writes it with them, restore() reads
    them all back, so that an interrupted run continues step for step."""

    length: int  # the palindrome length trained on now
    loss_sum: torch.Tensor  # the current window's batch losses, summed on the device (no sync per step)
    correct_sum: torch.Tensor  # and its right predictions
    step: int = 0
    length_start: int = 0  # the step at which the current length began
    curve: list = field(default_factory=list)  # one point per window
    best_loss: float = math.inf  # the best window loss at this length, more than MIN_DELTA below the one before
    best_step: int = 0  # the step of that window
    solved_windows: int = 0  # windows in a row with every training prediction right
    best_accuracy: float = -1.0  # the best validation accuracy of the weights at length T so far
    best_weights_step: int | None = None  # the step of those weights
    best_weights: dict | None = None
    wall_time: float = 0.0  # training seconds, over every part of a continued run

    @classmethod
    def fresh(cls, length, device):
        return cls(length, torch.zeros((), device=device), torch.zeros((), device=device, dtype=torch.long))

    @property
    def steps_at_length(self):
        return self.step - self.length_start

    def count(self, loss, logits, y):
        """One training step done: add its loss and right predictions to the window."""
        self.step += 1
        self.loss_sum += loss.detach()
        self.correct_sum += (logits.detach().argmax(1) == y).sum()

    def record_window(self, batch_size):
        """Close a window: its mean loss and accuracy go on the curve and into what the rules remember."""
        loss = self.loss_sum.item() / WINDOW
        accuracy = self.correct_sum.item() / (WINDOW * batch_size)
        self.loss_sum.zero_()
        self.correct_sum.zero_()
        self.curve.append({"step": self.step, "length": self.length, "loss": loss, "accuracy": accuracy})
        self.solved_windows = self.solved_windows + 1 if accuracy == 1.0 else 0
        if loss < self.best_loss - MIN_DELTA:
            self.best_loss, self.best_step = loss, self.step
        return self.curve[-1]

    def partial_window_loss(self):
        return self.loss_sum.item() / (self.step % WINDOW or WINDOW)

    def grow(self, length):
        """Curriculum: go on with palindromes of `length`; convergence is judged afresh there."""
        self.length, self.length_start = length, self.step
        self.best_loss, self.best_step, self.solved_windows = math.inf, self.step, 0

    def keep_if_best(self, accuracy, model):
        if accuracy > self.best_accuracy:
            self.best_accuracy, self.best_weights_step, self.best_weights = accuracy, self.step, clone_state(model)

    def save(self, path, config, device, model, optimizer, generator):
        common.save_atomically({
            "version": STATE_VERSION, "code": code_fingerprint(device), "commit": code_commit(),
            "options": run_options(config), "device": device.type, "run": asdict(self),
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "generator": generator.get_state()}, path)

    @classmethod
    def restore(cls, path, config, device, model, optimizer, generator):
        """The state saved in `path` by an interrupted run of these options on this kind of device, loaded into
        model, optimizer and generator; None if there is none (or it is another run's). A state saved by other
        code, PyTorch or machine is refused: continuing it would not repeat the run step for step."""
        if not path or not Path(path).exists():
            return None
        saved = read_saved(path, device, "a saved run state of part1/train.py")
        if not isinstance(saved, dict) or not isinstance(saved.get("run", {}), dict):
            raise ValueError(f"{path}: not a saved run state of part1/train.py")
        if (saved.get("version"), saved.get("code")) != (STATE_VERSION, code_fingerprint(device)):
            raise ValueError(f"{path}: saved by other code, PyTorch or machine (commit {saved.get('commit', 'unknown')}, "
                             f"state version {saved.get('version', 1)}; here {code_commit()}, version {STATE_VERSION}): "
                             "it would not continue step for step; delete it to start the run afresh")
        if saved.get("options") != run_options(config) or saved.get("device") != device.type:
            return None
        try:
            model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            generator.set_state(saved["generator"].cpu())
            return cls(**saved["run"])
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as err:
            raise ValueError(f"{path}: not a saved run state of part1/train.py ({common.first_line(err)})") from None


@dataclass(frozen=True)
class Verdict:
    stop: str | None = None  # the run ends: "solved", "plateau", "diverged" or "budget"
    grow: bool = False  # curriculum: go on at the next length
    candidate: bool = False  # score these weights on the validation set and keep them if they are the best


class StoppingRules:
    """When a run stops (this file's docstring), grows its curriculum, or has weights worth scoring: the loop
    asks judge() at the end of every window, and at_budget() after a step that ends none."""

    def __init__(self, config):
        self.T = config["input_length"] + 1
        self.curriculum = bool(config.get("curriculum"))
        self.train_steps, self.min_steps, self.patience = config["train_steps"], config["min_steps"], config["patience"]

    def first_length(self):
        return min(self.T, CURRICULUM_START) if self.curriculum else self.T

    def judge(self, state):
        """The verdict on the window the state recorded last."""
        point = state.curve[-1]
        at_T = point["length"] == self.T
        if diverged(point["loss"]):
            return Verdict(stop="diverged")
        if not at_T and point["accuracy"] >= CURRICULUM_ACCURACY:
            return Verdict(grow=True)
        candidate = at_T and point["accuracy"] >= CANDIDATE_ACCURACY
        if at_T and state.solved_windows >= SOLVED_WINDOWS:
            return Verdict("solved", candidate=candidate)
        if (state.steps_at_length >= self.min_steps and state.best_loss < LEFT_CHANCE
                and state.step - state.best_step >= self.patience):
            return Verdict("plateau", candidate=candidate)
        return Verdict(self.at_budget(state), candidate=candidate)

    def at_budget(self, state):
        """"budget" once the run has spent its steps at this length ("diverged" if its last, partial window
        did), else None."""
        if state.steps_at_length < self.train_steps:
            return None
        return "diverged" if diverged(state.partial_window_loss()) else "budget"


def train(config, progress=True, on_window=None, state_path=None):
    """Train one model; returns (a dict with the curve, `steps`, `stop_reason`, `eval_accuracy`, ..., the model).

    `on_window`, if given, is called with each point of the curve as it is recorded (a progress log).
    With `state_path`, an interrupted run saves its whole state there (RunState), and a run that finds a
    state of the same options on the same kind of device continues from it, step for step. A finished run
    leaves it for the caller to delete once the result is saved: a run killed before that continues again.
    """
    device = common.resolve_device(config["device"])
    if config.get("num_threads"):
        torch.set_num_threads(config["num_threads"])
    torch.manual_seed(config["seed"])
    T = config["input_length"] + 1
    model = build_model(config, device)
    # foreach: one call per update operation for all fourteen named parameters (the same numbers as one by one)
    optimizer = torch.optim.RMSprop(model.parameters(), lr=config["learning_rate"], foreach=True)
    generator = torch.Generator(device=device).manual_seed(config["seed"])
    rules = StoppingRules(config)
    state = (RunState.restore(state_path, config, device, model, optimizer, generator)
             or RunState.fresh(rules.first_length(), device))
    val_x, val_y = (t.to(device) for t in PalindromeDataset(T).evaluation_set(VALIDATION_SIZE, config["eval_seed"] + 1))
    train_data, stop_reason, start = PalindromeDataset(state.length), None, time.time()
    # No total: a run stops when its rules say so, most runs long before their budget.
    bar = tqdm(desc=f"{config['model_type']} T={T}", unit=" steps", initial=state.step, disable=not progress,
               dynamic_ncols=True)
    with common.StopOnInterrupt() as interrupt:
        while stop_reason is None:
            if interrupt.requested:
                stop_reason = "interrupted"
                break
            x, y = train_data.sample_batch(config["batch_size"], generator=generator, device=device)
            logits = model(x)
            loss = nn.functional.cross_entropy(logits, y)  # Eq. 3, averaged over the batch
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            # Exploding gradients (Question 1.1): rescale the whole gradient when its norm exceeds max_norm.
            nn.utils.clip_grad_norm_(model.parameters(), max_norm=config["max_norm"])
            optimizer.step()
            state.count(loss, logits, y)
            bar.update()
            if state.step % WINDOW:
                stop_reason = rules.at_budget(state)
                continue
            point = state.record_window(config["batch_size"])
            if on_window:
                on_window(point)
            bar.set_postfix(T=point["length"], loss=f"{point['loss']:.4f}", acc=f"{point['accuracy']:.4f}")
            verdict = rules.judge(state)
            if verdict.candidate:
                state.keep_if_best(evaluate(model, val_x, val_y)[0], model)
            if verdict.grow:
                state.grow(next_length(state.length, T))
                train_data = PalindromeDataset(state.length)
            stop_reason = verdict.stop
    bar.close()
    state.wall_time += time.time() - start
    return finish(config, device, state, stop_reason, model, (val_x, val_y), state_path, optimizer, generator), model


def finish(config, device, state, stop_reason, model, validation, state_path, optimizer, generator):
    """Save an interrupted run's state, score the model and return the result.

    A run that stops unsolved is scored with its best weights on the validation set when they beat its last
    ones; a run that will continue is scored when it ends."""
    to_continue = bool(state_path) and stop_reason == "interrupted"
    if to_continue:
        state.save(state_path, config, device, model, optimizer, generator)
    scored_step = state.step
    if stop_reason != "solved" and not to_continue and state.best_weights is not None:
        if evaluate(model, *validation)[0] < state.best_accuracy:
            model.load_state_dict(state.best_weights)
            scored_step = state.best_weights_step
    T = config["input_length"] + 1
    eval_x, eval_y = (t.to(device) for t in PalindromeDataset(T).evaluation_set(config["eval_size"], config["eval_seed"]))
    eval_accuracy, eval_loss = (math.nan, math.nan) if to_continue else evaluate(model, eval_x, eval_y)
    return {
        "options": config,
        "palindrome_length": T,
        "device": str(device),
        "steps": state.step,
        "scored_step": scored_step,
        "steps_at_final_length": state.steps_at_length,
        "final_length": state.length,
        "stop_reason": stop_reason,
        "wall_time": state.wall_time,
        "curve": state.curve,
        "eval_accuracy": eval_accuracy,
        "eval_loss": eval_loss,
        "commit": code_commit(),
    }


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.num_classes < 10:
        parser.error(f"--num_classes must be at least 10 (the targets are the digits 0-9), got {args.num_classes}")
    try:
        common.resolve_device(args.device)
    except ValueError as err:
        parser.error(str(err))
    n, T, gates = args.num_hidden, args.input_length + 1, 4 if args.model_type == "LSTM" else 1
    # float32 weights (read-out included) with their gradients and optimizer state, a step's saved
    # activations over time, and the held-out set's digits and their encoding
    common.check_fits(4 * 3 * (gates * n * (args.input_dim + n + 1) + args.num_classes * (n + 1))
                      + 4 * 3 * gates * n * T * args.batch_size + (8 + 4 * args.input_dim) * T * args.eval_size,
                      f"--num_hidden {n}, --num_classes {args.num_classes}, --batch_size {args.batch_size} "
                      f"and --eval_size {args.eval_size} at T = {T}")
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    result, model = train(config, progress=not args.quiet)
    if args.output:
        common.write_json(args.output, result)
    if result["stop_reason"] == "diverged":  # its weights are no model: an earlier --checkpoint stays
        common.fail(f"training diverged after {result['steps']} steps (loss not finite or above "
                    f"{EXPLODED_LOSS:.1f}), no checkpoint written; try a smaller --learning_rate", "train.py")
    if args.checkpoint:
        save_checkpoint(args.checkpoint, config, model)
    print(f"stopped after {result['steps']} steps ({result['stop_reason']}, {result['wall_time']:.1f} s)")
    if result["scored_step"] != result["steps"]:
        print(f"scored with the weights of step {result['scored_step']}, its best on the validation set")
    print(f"held-out accuracy: {result['eval_accuracy']:.4f} "
          f"({args.eval_size} palindromes of length T={result['palindrome_length']})")


if __name__ == "__main__":
    common.run(main, "train.py")
