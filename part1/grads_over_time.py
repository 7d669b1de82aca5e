"""Gradient magnitudes over time (Question 1.7): how strongly does the loss at the last step reach h^(t)?

    python part1/grads_over_time.py             # untrained RNN and LSTM (same seed), LSTM also with b_f = 1,
                                                # and both with the tuned recipe's initialisation
    python part1/grads_over_time.py --trained   # the sweep's tuned RNN and LSTM trained on T = 100, seed 0

Feeds a batch of palindromes of length 100 (99 input digits) to a VanillaRNN and an LSTM, computes
the loss of the last prediction, and keeps the gradient dL/dh^(t) of every hidden state: the
message passed back between time steps. Writes the mean over the batch of ||dL/dh^(t)|| (computed in
float64, written to 4 significant digits, the rows in a fixed order: a rerun rewrites the same bytes) to
part1/results/grads_over_time.csv (rows of the other kind, trained or untrained, are kept) and
plots every row of it on a log scale to report/figures/grads_over_time.png.
"""
import argparse
import copy
import csv
from pathlib import Path

import torch
import torch.nn as nn

from part1 import common
from part1.dataset import PalindromeDataset
from part1.train import build_model, load_checkpoint
from report.figure_text import FIGURES, TEXT_WIDTH, print_style, save

ROOT = Path(__file__).resolve().parent.parent
CHECKPOINTS = ROOT / "part1" / "results" / "checkpoints"
COLUMNS = ["model", "trained", "t", "grad_norm"]
# The tuned recipe's models at initialisation (part1/experiments/sweep.py): identity W_hh, chrono b_f.
TUNED_INIT = {"RNN": "RNN W_hh=I", "LSTM": "LSTM chrono"}
MODELS = ("RNN", "LSTM", "LSTM b_f=1", *TUNED_INIT.values())  # the order of the rows in the CSV


def hidden_state_grads(model, x, y):
    """dL/dh^(t) for every t, shape (T-1, batch, num_hidden), L the cross-entropy of each palindrome.

    The loss is summed over the batch, so row b holds the gradient of palindrome b's own loss.
    """
    states = model.hidden_states(x)  # the plain autograd path: every h^(t) is a node of the graph
    for h in states:
        h.retain_grad()
    logits = states[-1] @ model.W_ph.T + model.b_p
    nn.functional.cross_entropy(logits, y, reduction="sum").backward()
    return torch.stack([h.grad for h in states])


def measure(model, x, y):
    """Mean over the batch of ||dL/dh^(t)||, for t = 1 .. T-1, in float64. CPUs differ in the last bits
    of float products, and the 99 steps back amplify that (float32: in the 4th digit; float64: about
    1e-9 relative, seen between an Intel Xeon and an AMD EPYC), so the CSV's 4 significant digits are
    the same on every CPU but where a value lies within that of a rounding boundary."""
    return hidden_state_grads(copy.deepcopy(model).double(), x, y).norm(dim=2).mean(dim=1)


def plot(rows, figure):
    import matplotlib.pyplot as plt

    with plt.rc_context(print_style(9)):  # 9 pt in print
        fig, ax = plt.subplots(figsize=(TEXT_WIDTH, 2.0))
        colors = {"RNN": "tab:blue", "LSTM": "tab:orange", "LSTM b_f=1": "tab:green",
                  TUNED_INIT["RNN"]: "tab:blue", TUNED_INIT["LSTM"]: "tab:orange"}
        for (model, trained) in sorted({(r["model"], r["trained"]) for r in rows}, key=lambda k: (k[1], k[0])):
            points = [(int(r["t"]), float(r["grad_norm"])) for r in rows
                      if (r["model"], r["trained"]) == (model, trained)]
            t, g = zip(*sorted(points), strict=True)
            name = model.replace("b_f=1", "$b_f = 1$").replace("W_hh=I", "$W_{hh} = I$")
            label = f"{name}, {'tuned, trained on T = 100' if trained == 'True' else 'untrained'}"
            dash = ":" if model in TUNED_INIT.values() else "--"
            ax.semilogy(t, g, color=colors.get(model), linestyle="-" if trained == "True" else dash, label=label)
        ax.set_xlabel("time step t")
        ax.set_ylabel(r"mean $\|\partial \mathcal{L} / \partial h^{(t)}\|$")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        fig.tight_layout()
        figure.parent.mkdir(parents=True, exist_ok=True)
        save(fig, figure)
    plt.close(fig)


def build_parser():
    parser = common.ArgumentParser(description=__doc__.split("\n\n")[0],
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--palindrome_length", type=int, default=100, help="T (the models read T - 1 digits)")
    parser.add_argument("--batch_size", type=int, default=256, help="palindromes to average over")
    parser.add_argument("--num_hidden", type=int, default=128, help="hidden units of the untrained models")
    parser.add_argument("--seed", type=int, default=0, help="seed of the untrained models and the palindromes")
    parser.add_argument("--trained", action="store_true", help="use the trained checkpoints instead")
    parser.add_argument("--rnn_checkpoint", type=Path, default=CHECKPOINTS / "tuned_RNN_T100_seed0.pt")
    parser.add_argument("--lstm_checkpoint", type=Path, default=CHECKPOINTS / "tuned_LSTM_T100_seed0.pt")
    parser.add_argument("--output", type=Path, default=ROOT / "part1" / "results" / "grads_over_time.csv")
    parser.add_argument("--figure", type=Path, default=FIGURES / "grads_over_time.png")
    return parser


def load_models(args):
    """{name: model}: the trained checkpoints, or fresh models of one seed (the LSTM also with a forget-gate
    bias of 1, and both with the tuned recipe's initialisation)."""
    models = {}
    if args.trained:
        for name, checkpoint in (("RNN", args.rnn_checkpoint), ("LSTM", args.lstm_checkpoint)):
            if not checkpoint.exists():
                raise ValueError(f"no checkpoint {checkpoint}: train one with python part1/train.py "
                                 f"--model_type {name} --input_length {args.palindrome_length - 1} --checkpoint {checkpoint}")
            models[name] = load_checkpoint(checkpoint)[0]
        return models
    # Also the trained models' initialisation, so that trained and untrained differ by training alone.
    for name, model_type, forget_bias, tuned in (("RNN", "RNN", 0.0, False), ("LSTM", "LSTM", 0.0, False),
                                                 ("LSTM b_f=1", "LSTM", 1.0, False),
                                                 (TUNED_INIT["RNN"], "RNN", 0.0, True),
                                                 (TUNED_INIT["LSTM"], "LSTM", 0.0, True)):
        torch.manual_seed(args.seed)
        config = {"model_type": model_type, "input_length": args.palindrome_length - 1, "input_dim": 10,
                  "num_hidden": args.num_hidden, "num_classes": 10, "forget_bias": forget_bias,
                  "identity_init": tuned, "chrono": tuned}
        models[name] = build_model(config, "cpu")
    return models


def row_order(row):
    """Untrained before trained, the models in MODELS' order, then by t: a rerun writes the same file."""
    model = MODELS.index(row["model"]) if row["model"] in MODELS else len(MODELS)
    return row["trained"] == "True", model, row["model"], int(row["t"])


def write_rows(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        writer.writerows(sorted(rows, key=row_order))


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.palindrome_length < 2 or args.batch_size < 1 or args.num_hidden < 1:
        parser.error("--palindrome_length must be at least 2, --batch_size and --num_hidden at least 1")
    models = load_models(args)
    x, y = PalindromeDataset(args.palindrome_length).sample_batch(
        args.batch_size, torch.Generator().manual_seed(args.seed))

    rows = [r for r in common.read_csv(args.output, missing_ok=True) if r["trained"] != str(args.trained)]
    for name, model in models.items():
        norms = measure(model, x, y).tolist()
        rows += [{"model": name, "trained": str(args.trained), "t": str(t), "grad_norm": f"{g:.3e}"}
                 for t, g in enumerate(norms, start=1)]
        print(f"{name} ({'trained' if args.trained else 'untrained'}): |dL/dh^(1)| = {norms[0]:.3e}, "
              f"|dL/dh^({len(norms)})| = {norms[-1]:.3e}")
    write_rows(args.output, rows)
    plot(rows, args.figure)
    print(f"wrote {args.output} and {args.figure}")


if __name__ == "__main__":
    common.run(main, "grads_over_time.py")
