"""How long the memory lasts: a linear probe reads the first digit from the state at every time step.

    python part1/experiments/probe.py      # the sweep's runs of seed 0: tuned RNN (T = 30) and LSTM (T = 100), and
                               # the template recipe's RNN and LSTM at T = 30

For each trained model, fits one multinomial logistic regression per time step t that predicts the
palindrome's first digit from h^(t) (and from c^(t) for the LSTM), on held-out palindromes drawn
from their own seed, and scores it on another held-out set. Also records, for the LSTM units whose
final cell state best separates the first digit, the forget gate f^(t) and cell state c^(t)
averaged over the palindromes that start with each digit. Writes part1/results/probe.csv
(`run,model,palindrome_length,state,t,accuracy`) and part1/results/probe_units.csv
(`unit,rank,t,digit,forget_gate,cell_state`); part1/experiments/plot.py draws them.
"""
import argparse
import csv
from pathlib import Path

import torch
import torch.nn as nn

from part1 import common
from part1.dataset import PalindromeDataset, encode_digits
from part1.train import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "part1" / "results"
CHECKPOINTS = RESULTS / "checkpoints"
RUNS = ["tuned_RNN_T30_seed0", "tuned_LSTM_T100_seed0", "onehot_RNN_T30_seed0", "onehot_LSTM_T30_seed0"]


@torch.no_grad()
def states(model, x):
    """{'h': (T-1, batch, hidden)} for the RNN; the LSTM adds 'c' and the forget gate 'f' (Eq. 6)."""
    if not hasattr(model, "W_fx"):
        return {"h": torch.stack(model.hidden_states(x))}
    inputs = encode_digits(x, model.input_dim, model.W_fx.dtype)
    h = inputs.new_zeros(x.shape[0], model.num_hidden)
    c = torch.zeros_like(h)
    out = {"h": [], "c": [], "f": []}
    for x_t in inputs.unbind(1):
        out["f"].append(torch.sigmoid(x_t @ model.W_fx.T + h @ model.W_fh.T + model.b_f))  # Eq. 6
        h, c = model.step(x_t, h, c)
        out["h"].append(h)
        out["c"].append(c)
    return {k: torch.stack(v) for k, v in out.items()}


def probe_accuracy(train_features, train_digits, test_features, test_digits, weight_decay=1e-3, iterations=100):
    """Test accuracy of a linear read-out of the digit, fitted independently at every t.

    Features are (T, N, hidden); the T logistic regressions are fitted together (their losses add up,
    their parameters are separate) with L-BFGS, on features standardised with the training set's statistics.
    """
    mean, std = train_features.mean(1, keepdim=True), train_features.std(1, keepdim=True) + 1e-6
    train_features, test_features = (train_features - mean) / std, (test_features - mean) / std
    T, _, hidden = train_features.shape
    W = torch.zeros(T, hidden, 10, requires_grad=True)
    b = torch.zeros(T, 1, 10, requires_grad=True)
    optimizer = torch.optim.LBFGS([W, b], max_iter=iterations, line_search_fn="strong_wolfe")
    targets = train_digits.expand(T, -1)

    def closure():
        optimizer.zero_grad()
        logits = torch.baddbmm(b, train_features, W)
        loss = nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten()) * T + weight_decay * W.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        predictions = torch.baddbmm(b, test_features, W).argmax(-1)
    return (predictions == test_digits).float().mean(1)


def memory_units(test_states, digits, count):
    """The `count` LSTM units whose last cell state best separates the first digit (between-digit share of
    the variance), with f^(t) and c^(t) averaged over the palindromes that start with each digit."""
    c_last = test_states["c"][-1]
    digit_means = torch.stack([c_last[digits == d].mean(0) for d in range(10)])
    separation = digit_means.var(0) / (c_last.var(0) + 1e-12)
    rows = []
    for rank, unit in enumerate(separation.argsort(descending=True)[:count].tolist()):
        for d in range(10):
            chosen = digits == d
            f = test_states["f"][:, chosen, unit].mean(1)
            c = test_states["c"][:, chosen, unit].mean(1)
            rows += [{"unit": unit, "rank": rank, "t": t, "digit": d, "forget_gate": f"{f[t - 1]:.5f}",
                      "cell_state": f"{c[t - 1]:.5f}"} for t in range(1, len(f) + 1)]
    return rows


def write_csv(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def main(argv=None):
    parser = common.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--checkpoints", type=Path, nargs="+", default=[CHECKPOINTS / f"{name}.pt" for name in RUNS],
                        help="trained models (the run is named after the file)")
    parser.add_argument("--units_of", default=RUNS[1], help="the run (an LSTM) whose memory units are kept")
    parser.add_argument("--train_size", type=common.positive_int, default=4000, help="palindromes the probes are fitted on")
    parser.add_argument("--test_size", type=common.positive_int, default=2000, help="palindromes the probes are scored on")
    parser.add_argument("--seed", type=int, default=2020,
                        help="seed of the probes' training set (seed + 1: test set); the models trained on "
                             "other streams and were scored on seed 2019")
    parser.add_argument("--units", type=common.positive_int, default=3, help="LSTM units whose gates and cell states are kept")
    parser.add_argument("--output", type=Path, default=RESULTS / "probe.csv")
    parser.add_argument("--units_output", type=Path, default=RESULTS / "probe_units.csv")
    args = parser.parse_args(argv)
    if min(args.train_size, args.test_size, args.units) < 1:
        parser.error("--train_size, --test_size and --units must be at least 1")
    torch.set_num_threads(1)

    rows, unit_rows = [], []
    for path in args.checkpoints:
        if not path.exists():
            raise ValueError(f"no checkpoint {path}: run python part1/experiments/sweep.py (it saves it)")
        model, options = load_checkpoint(path)
        name, run = options["model_type"], path.stem
        T = options["input_length"] + 1
        dataset = PalindromeDataset(T)
        (x_train, _), (x_test, _) = (dataset.evaluation_set(size, args.seed + k)
                                     for k, size in enumerate((args.train_size, args.test_size)))
        train_states, test_states = states(model, x_train), states(model, x_test)
        for state in ("h", "c") if name == "LSTM" else ("h",):
            accuracy = probe_accuracy(train_states[state], x_train[:, 0], test_states[state], x_test[:, 0])
            rows += [{"run": run, "model": name, "palindrome_length": T, "state": state, "t": t,
                      "accuracy": f"{a:.4f}"} for t, a in enumerate(accuracy.tolist(), start=1)]
            print(f"{run} {state}: probe accuracy {accuracy[0]:.3f} at t = 1, "
                  f"{accuracy.min():.3f} at worst, {accuracy[-1]:.3f} at t = {T - 1}")
        if run == args.units_of:
            unit_rows = memory_units(test_states, x_test[:, 0], args.units)
    if not unit_rows:
        raise ValueError(f"--units_of {args.units_of}: not among the LSTM checkpoints given")
    write_csv(args.output, rows)
    write_csv(args.units_output, unit_rows)
    print(f"wrote {args.output} and {args.units_output}")


if __name__ == "__main__":
    common.run(main, "probe.py")
