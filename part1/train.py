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
train() can also save such a run's whole state and continue it later, step for step (the sweep does).
"""
import argparse
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
from tqdm import tqdm

from part1 import common
from part1.dataset import PalindromeDataset
from part1.lstm import LSTM
from part1.vanilla_rnn import VanillaRNN

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
    parser.add_argument("--learning_rate", type=common.positive_float, default=0.001, help="RMSprop learning rate")
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
    parser.add_argument("--forget_bias", type=float, default=0.0, help="initial forget-gate bias b_f (LSTM only)")
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


def run_options(config):
    """The options that define a run (RUN_KEYS): a saved state continues only a run with the same ones."""
    return {k: config.get(k) for k in RUN_KEYS}


def load_state(path, config, device):
    """The saved state of an interrupted run with these options, or None. A random stream saved on
    one kind of device cannot continue on another, so such a state is not used."""
    if not path or not Path(path).exists():
        return None
    state = torch.load(path, map_location=device, weights_only=False)
    if state["options"] != run_options(config) or state["device"] != device.type:
        return None
    return state


def load_checkpoint(path, device="cpu"):
    checkpoint = torch.load(path, map_location=device)
    model = build_model(checkpoint["options"], device)
    model.load_state_dict(checkpoint["model"])
    return model, checkpoint["options"]


RUN_KEYS = ("model_type", "input_length", "input_dim", "num_classes", "num_hidden", "batch_size", "learning_rate",
            "train_steps", "max_norm", "seed", "min_steps", "patience", "forget_bias", "chrono", "identity_init",
            "curriculum")


def next_length(length, T):
    """The curriculum's next palindrome length after a window at `length` reached CURRICULUM_ACCURACY."""
    return min(T, math.ceil(length * CURRICULUM_GROWTH))


def diverged(loss):
    return not math.isfinite(loss) or loss > EXPLODED_LOSS


def train(config, progress=True, on_window=None, state_path=None):
    """Train one model; returns a dict with the curve, `steps`, `stop_reason` and `eval_accuracy`.

    `on_window`, if given, is called with each point of the curve as it is recorded (a progress log).
    With `state_path`, an interrupted run saves its whole state there (weights, optimizer, random
    stream, curve, stopping rule), and a run that finds a state of the same options on the same kind
    of device continues from it, step for step; a finished run deletes it.
    """
    device = common.resolve_device(config["device"])
    if config.get("num_threads"):
        torch.set_num_threads(config["num_threads"])
    torch.manual_seed(config["seed"])
    T = config["input_length"] + 1
    dataset = PalindromeDataset(T)
    length = min(T, CURRICULUM_START) if config.get("curriculum") else T
    train_data = PalindromeDataset(length)
    model = build_model(config, device)
    optimizer = torch.optim.RMSprop(model.parameters(), lr=config["learning_rate"])
    generator = torch.Generator(device=device).manual_seed(config["seed"])
    eval_x, eval_y = (t.to(device) for t in dataset.evaluation_set(config["eval_size"], config["eval_seed"]))
    val_x, val_y = (t.to(device) for t in dataset.evaluation_set(VALIDATION_SIZE, config["eval_seed"] + 1))

    def window_end(step, at_length):
        """Record a window of the curve; returns the stop reason, or None to go on training."""
        nonlocal length, train_data, best_loss, best_step, solved_windows, length_start, best_weights
        window_loss = loss_sum.item() / WINDOW
        window_acc = correct_sum.item() / (WINDOW * config["batch_size"])
        loss_sum.zero_()
        correct_sum.zero_()
        curve.append({"step": step, "length": length, "loss": window_loss, "accuracy": window_acc})
        if on_window:
            on_window(curve[-1])
        bar.set_postfix(T=length, loss=f"{window_loss:.4f}", acc=f"{window_acc:.4f}")
        if diverged(window_loss):
            return "diverged"
        if length < T and window_acc >= CURRICULUM_ACCURACY:
            # Curriculum: move on to longer palindromes; convergence is judged afresh at each length.
            length = next_length(length, T)
            train_data = PalindromeDataset(length)
            best_loss, best_step, solved_windows, length_start = float("inf"), step, 0, step
            return None
        if length == T and window_acc >= CANDIDATE_ACCURACY:
            val_accuracy = evaluate(model, val_x, val_y)[0]
            if val_accuracy > best_weights["accuracy"]:
                best_weights = {"accuracy": val_accuracy, "step": step, "model": clone_state(model)}
        solved_windows = solved_windows + 1 if window_acc == 1.0 else 0
        if window_loss < best_loss - MIN_DELTA:
            best_loss, best_step = window_loss, step
        if length == T and solved_windows >= SOLVED_WINDOWS:
            return "solved"
        if at_length >= config["min_steps"] and best_loss < LEFT_CHANCE and step - best_step >= config["patience"]:
            return "plateau"
        return None

    curve, best_loss, best_step, solved_windows = [], float("inf"), 0, 0
    best_weights = {"accuracy": -1.0, "step": None, "model": None}  # the best validation score at length T
    loss_sum = torch.zeros((), device=device)
    correct_sum = torch.zeros((), device=device, dtype=torch.long)
    stop_reason, step, length_start = None, 0, 0  # length_start: the step at which the current length began
    time_before = 0.0  # training time of the earlier parts of a continued run
    saved = load_state(state_path, config, device)
    if saved:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        generator.set_state(saved["generator"])
        loss_sum.fill_(saved["loss_sum"])
        correct_sum.fill_(saved["correct_sum"])
        curve, step, length, length_start = saved["curve"], saved["step"], saved["length"], saved["length_start"]
        best_loss, best_step, solved_windows = saved["best_loss"], saved["best_step"], saved["solved_windows"]
        time_before = saved["wall_time"]
        best_weights = saved.get("best_weights", best_weights)  # states saved before the rule have none
        train_data = PalindromeDataset(length)
    start = time.time()
    bar = tqdm(total=None if config.get("curriculum") else config["train_steps"], desc=f"{config['model_type']} T={T}",
               disable=not progress, dynamic_ncols=True, initial=step)
    with common.StopOnInterrupt() as interrupt:
        while stop_reason is None:
            if interrupt.requested:
                stop_reason = "interrupted"
                break
            step += 1
            x, y = train_data.sample_batch(config["batch_size"], generator=generator, device=device)
            logits = model(x)
            loss = nn.functional.cross_entropy(logits, y)  # Eq. 3, averaged over the batch
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            # Exploding gradients (Question 1.1): rescale the whole gradient when its norm exceeds max_norm.
            nn.utils.clip_grad_norm_(model.parameters(), max_norm=config["max_norm"])
            optimizer.step()
            loss_sum += loss.detach()
            correct_sum += (logits.detach().argmax(1) == y).sum()
            bar.update()
            if step % WINDOW == 0:
                stop_reason = window_end(step, step - length_start)
            if stop_reason is None and step - length_start >= config["train_steps"]:
                # A partial last window is still checked for divergence.
                stop_reason = "diverged" if diverged(loss_sum.item() / (step % WINDOW or WINDOW)) else "budget"
    bar.close()
    train_time = time_before + time.time() - start
    if state_path and stop_reason == "interrupted":
        common.save_atomically({
            "options": run_options(config), "device": device.type, "model": model.state_dict(),
            "optimizer": optimizer.state_dict(), "generator": generator.get_state(), "loss_sum": loss_sum.item(),
            "correct_sum": correct_sum.item(), "curve": curve, "step": step, "length": length,
            "length_start": length_start, "best_loss": best_loss, "best_step": best_step,
            "solved_windows": solved_windows, "best_weights": best_weights, "wall_time": train_time}, state_path)
    elif state_path:
        Path(state_path).unlink(missing_ok=True)
    # A run that will continue is scored when it ends.
    saved_to_continue = state_path and stop_reason == "interrupted"
    scored_step = step
    if stop_reason != "solved" and not saved_to_continue and best_weights["model"] is not None:
        if evaluate(model, val_x, val_y)[0] < best_weights["accuracy"]:
            model.load_state_dict(best_weights["model"])
            scored_step = best_weights["step"]
    eval_accuracy, eval_loss = (math.nan, math.nan) if saved_to_continue else evaluate(model, eval_x, eval_y)
    return {
        "options": config,
        "palindrome_length": T,
        "device": str(device),
        "steps": step,
        "scored_step": scored_step,
        "steps_at_final_length": step - length_start,
        "final_length": length,
        "stop_reason": stop_reason,
        "wall_time": train_time,
        "curve": curve,
        "eval_accuracy": eval_accuracy,
        "eval_loss": eval_loss,
    }, model


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        common.resolve_device(args.device)
    except ValueError as err:
        parser.error(str(err))
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    result, model = train(config, progress=not args.quiet)
    if args.output:
        common.write_json(args.output, result)
    if args.checkpoint:
        save_checkpoint(args.checkpoint, config, model)
    if result["stop_reason"] == "diverged":
        sys.exit(f"error: training diverged after {result['steps']} steps (loss not finite or above "
                 f"{EXPLODED_LOSS:.1f}); try a smaller --learning_rate")
    print(f"stopped after {result['steps']} steps ({result['stop_reason']}, {result['wall_time']:.1f} s)")
    if result["scored_step"] != result["steps"]:
        print(f"scored with the weights of step {result['scored_step']}, its best on the validation set")
    print(f"held-out accuracy: {result['eval_accuracy']:.4f} "
          f"({args.eval_size} palindromes of length T={result['palindrome_length']})")


if __name__ == "__main__":
    common.run(main, "train.py")
