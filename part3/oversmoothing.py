"""Question 3.1b as an experiment: over-smoothing of deep GCNs on the karate club, and residuals.

Every layer replaces a node's features by a weighted mean over its neighbourhood (Eq. 14), so
stacking layers drives all nodes towards the same representation. For GCNs of growing depth,
with and without residual connections H' = H + σ(ÂHW), this measures how far apart the
members' last hidden representations are (at initialisation and after training) and the
accuracy on the unlabelled members, over several seeds.
"""
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from part3 import cli
from part3.gcn import DeepGCN
from part3.report import add_output_dirs, plot_oversmoothing, write_oversmoothing_tex
from part3.train import accuracy_unlabelled, fit, load_karate


def spread(h):
    """Mean pairwise distance between the directions of the rows of h (0: all nodes alike).

    Rows are scaled to unit length first (all-zero rows stay zero), so neither the overall scale,
    which deep stacks change for other reasons, nor the degree-dependent length that repeated
    averaging leaves each node counts as a difference between nodes. Ranges over [0, 2].
    """
    n = h.shape[0]
    directions = F.normalize(h, dim=1)
    return (torch.cdist(directions, directions).sum() / (n * (n - 1))).item()


def propagation_only(adj_hat, features, n_steps):
    """Spread of Â^k X: Eq. 14 without weights or non-linearity, the averaging alone."""
    h = features
    for _ in range(n_steps):
        h = adj_hat @ h
    return spread(h)


def summary(values):
    return {"mean": statistics.mean(values), "std": statistics.pstdev(values), "per_seed": values}


def run(depths, seeds, hidden, epochs, lr, weight_decay):
    adj_hat, features, labels, factions = load_karate()
    results = {"depths": list(depths), "seeds": list(seeds),
               "config": {"hidden": hidden, "epochs": epochs, "lr": lr,
                          "weight_decay": weight_decay, "optimizer": "Adam"},
               # the last hidden representation of L layers has been averaged L - 1 times
               "propagation_only": [propagation_only(adj_hat, features, d - 1) for d in depths]}
    for variant in ("plain", "residual"):
        metrics = {"spread_init": [], "spread_trained": [], "accuracy": [],
                   "norm_init": [], "norm_trained": []}
        for depth in depths:
            runs = {name: [] for name in metrics}
            for seed in seeds:
                torch.manual_seed(seed)
                model = DeepGCN(features.shape[1], hidden, len(factions), depth,
                                residual=variant == "residual")
                with torch.no_grad():
                    h = model.embed(features, adj_hat)
                runs["spread_init"].append(spread(h))
                runs["norm_init"].append(h.norm(dim=1).mean().item())
                fit(model, adj_hat, features, labels, epochs, lr, weight_decay)
                with torch.no_grad():
                    h = model.embed(features, adj_hat)
                    runs["accuracy"].append(accuracy_unlabelled(model(features, adj_hat), labels))
                runs["spread_trained"].append(spread(h))
                runs["norm_trained"].append(h.norm(dim=1).mean().item())
            for name in metrics:
                metrics[name].append(summary(runs[name]))
        # One list per statistic, in the order of `depths`.
        results[variant] = {name: {key: [s[key] for s in per_depth] for key in per_depth[0]}
                            for name, per_depth in metrics.items()}
    return results


def main(argv=None):
    parser = cli.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", type=int, nargs="+", default=[2, 4, 8, 16, 32],
                        help="numbers of GCN layers to try (default: 2 4 8 16 32)")
    parser.add_argument("--seed", type=int, default=0, help="first seed (default: 0)")
    parser.add_argument("--n-seeds", type=int, default=5,
                        help="seeds seed, seed+1, ... per depth (default: 5)")
    parser.add_argument("--epochs", type=int, default=200, help="Adam steps (default: 200)")
    parser.add_argument("--hidden", type=int, default=16, help="hidden units (default: 16)")
    parser.add_argument("--lr", type=float, default=0.01, help="learning rate (default: 0.01)")
    parser.add_argument("--weight-decay", type=float, default=5e-4,
                        help="L2 penalty of Adam (default: 5e-4)")
    add_output_dirs(parser, "oversmoothing.json")
    args = parser.parse_args(argv)
    if min(args.depths) < 2:
        parser.error(f"--depths must all be at least 2 (input and output layer), got {args.depths}")
    for name in ("n_seeds", "epochs", "hidden"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive integer, "
                         f"got {getattr(args, name)}")
    if args.lr <= 0:
        parser.error(f"--lr must be positive, got {args.lr}")

    torch.set_num_threads(1)  # a 34-node graph gains nothing from more threads
    start = time.perf_counter()
    depths = sorted(set(args.depths))
    results = run(depths, range(args.seed, args.seed + args.n_seeds), args.hidden,
                  args.epochs, args.lr, args.weight_decay)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    results_path = args.out_dir / "oversmoothing.json"
    results_path.write_text(json.dumps(results, indent=1) + "\n")
    print("layers | spread after training: plain residual | accuracy: plain residual")
    for i, depth in enumerate(depths):
        print(f"{depth:6d} | {results['plain']['spread_trained']['mean'][i]:22.3f} "
              f"{results['residual']['spread_trained']['mean'][i]:8.3f} | "
              f"{results['plain']['accuracy']['mean'][i]:15.3f} "
              f"{results['residual']['accuracy']['mean'][i]:8.3f}")
    figures = plot_oversmoothing(results_path, args.fig_dir)
    tex = write_oversmoothing_tex(results_path, args.tex_dir)
    print("wrote", results_path, *figures, tex, f"in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    cli.run(main, "oversmoothing.py")
