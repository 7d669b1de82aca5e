"""Question 3.1b as an experiment: over-smoothing and dead signal in deep GCNs on the karate club.

Every layer replaces a node's features by a weighted mean over its neighbourhood (Eq. 14), so
stacking layers drives all nodes towards the same representation. Two different things can make
a deep GCN fail, and they are measured apart on the last hidden representation H of GCNs of
growing depth, at initialisation and after training, over several seeds:

* smoothing: the relative Dirichlet energy tr(Hᵀ Δ H) / ‖H‖², with Δ = I − Â, which is 0 when
  every node carries the same vector (up to Â's degree scaling) and does not depend on the scale
  of H. It needs H ≠ 0: it is left out (None) where H is exactly zero.
* dead signal: the fraction of hidden units that are zero for every node, and the mean length of
  the node vectors.

Variants: plain σ(ÂHW); residual H + σ(ÂHW); initial residual (GCNII), all trained with Kipf and
Welling's weight decay; and, without weight decay, plain and linear ÂHW (no ReLU: smoothing with
nothing that can switch off). The energy and length of every layer of the deepest networks are
saved too.
"""
import json
import statistics
import time

import torch

from part1 import common
from part3.experiments.report_outputs import add_output_dirs, plot_oversmoothing, write_oversmoothing_tex
from part3.gcn import DeepGCN, normalized_adjacency
from part3.train import accuracy_unlabelled, add_training_options, fit, load_karate

# name: (skip connection, hidden activation, with weight decay); see DeepGCN. The two variants
# without weight decay separate smoothing from the zero signal that decay leaves in deep stacks.
VARIANTS = {
    "plain": ("none", torch.relu, True),
    "plain_no_decay": ("none", torch.relu, False),
    "linear_no_decay": ("none", None, False),
    "residual": ("residual", torch.relu, True),
    "initial": ("initial", torch.relu, True),
}
GCNII_ALPHA, GCNII_LAMBDA = 0.1, 0.5  # GCNII's own choices (Chen et al. 2020)


def dirichlet_energy(h, adj_hat):
    """½ Σ_ij Ã_ij ‖h_i/√d̃_i − h_j/√d̃_j‖² / ‖H‖²_F, the relative Dirichlet energy of H.

    Equals tr(Hᵀ (I − Â) H) / ‖H‖²_F, but as a sum of squared differences it is never negative
    and keeps its precision where H is nearly smooth. 0 when h_i ∝ √d̃_i for all nodes (the limit
    of Âᵏ H: all nodes alike), below 2 for any H. None for H = 0, which has no shape.
    """
    h = h.double()
    adj_tilde = (adj_hat != 0).double()  # Ã, the pattern of Â (the graph is unweighted)
    scaled = h / adj_tilde.sum(dim=1).sqrt()[:, None]  # h_i / √d̃_i
    norm2 = h.pow(2).sum()
    if norm2 == 0:
        return None
    differences = (scaled[:, None, :] - scaled[None, :, :]).pow(2).sum(dim=2)
    return (0.5 * (adj_tilde * differences).sum() / norm2).item()


def laplacian_lambda_2(adj_hat):
    """The smallest non-zero eigenvalue of I − Â: the energy of the smoothest signal that still
    tells nodes apart (orthogonal to the all-alike √d̃)."""
    eye = torch.eye(len(adj_hat), dtype=torch.float64)
    return torch.linalg.eigvalsh(eye - normalized_adjacency((adj_hat != 0).double() - eye))[1].item()


def dead_fraction(h):
    """Fraction of hidden units (columns of H) that are exactly zero at every node."""
    return (h == 0).all(dim=0).double().mean().item()


def mean_length(h):
    """Mean over nodes of ‖h_i‖."""
    return h.norm(dim=1).mean().item()


def propagation_only(adj_hat, features, n_steps):
    """Relative Dirichlet energy of Âᵏ X: Eq. 14 without weights or non-linearity."""
    adj_hat = normalized_adjacency((adj_hat != 0).double() - torch.eye(len(adj_hat)))  # float64
    h = features.double()
    for _ in range(n_steps):
        h = adj_hat @ h
    return dirichlet_energy(h, adj_hat)


def summary(values):
    """Mean and sample std (n − 1) over the seeds where the value is defined (not None)."""
    defined = [v for v in values if v is not None]
    return {"mean": statistics.mean(defined) if defined else None,
            "std": statistics.stdev(defined) if len(defined) > 1 else None,
            "n": len(defined), "per_seed": values}


def measure(model, features, adj_hat):
    """Energy, dead units and length of every hidden representation H¹ ... H^(L-1)."""
    with torch.no_grad():
        states = model.hidden_states(features, adj_hat)
    return {"energy": [dirichlet_energy(h, adj_hat) for h in states],
            "dead": [dead_fraction(h) for h in states],
            "length": [mean_length(h) for h in states]}


def run(depths, seeds, hidden, epochs, lr, weight_decay, progress=None):
    adj_hat, features, labels, factions = load_karate()
    deepest = max(depths)
    results = {"depths": list(depths), "seeds": list(seeds),
               "config": {"hidden": hidden, "epochs": epochs, "lr": lr,
                          "weight_decay": weight_decay, "optimizer": "Adam",
                          "gcnii_alpha": GCNII_ALPHA, "gcnii_lambda": GCNII_LAMBDA},
               # the last hidden representation of L layers has been averaged L - 1 times
               "propagation_only": [propagation_only(adj_hat, features, d - 1) for d in depths],
               "lambda_2": laplacian_lambda_2(adj_hat),
               "layers": {"depth": deepest}}
    for variant, (skip, activation, decay) in VARIANTS.items():
        per_depth = {"init": [], "trained": []}
        for depth in depths:
            runs = {"init": [], "trained": []}
            for seed in seeds:
                torch.manual_seed(seed)
                model = DeepGCN(features.shape[1], hidden, len(factions), depth, skip, activation,
                                GCNII_ALPHA, GCNII_LAMBDA)
                runs["init"].append(measure(model, features, adj_hat))
                fit(model, adj_hat, features, labels, epochs, lr, weight_decay if decay else 0.0)
                runs["trained"].append(measure(model, features, adj_hat))
                with torch.no_grad():
                    runs["trained"][-1]["accuracy"] = accuracy_unlabelled(
                        model(features, adj_hat), labels)
            for stage, measured in runs.items():
                # the last hidden representation, the one the output layer classifies
                per_depth[stage].append({
                    name: summary([m[name] if name == "accuracy" else m[name][-1]
                                   for m in measured])
                    for name in measured[0]})
                if depth == deepest:
                    results["layers"].setdefault(variant, {})[stage] = {
                        name: [m[name] for m in measured]
                        for name in ("energy", "dead", "length")}
            if progress:
                progress(variant, depth, per_depth["trained"][-1])
        # One list per statistic, in the order of `depths`.
        results[variant] = {
            stage: {name: {key: [s[name][key] for s in stats] for key in stats[0][name]}
                    for name in stats[0]}
            for stage, stats in per_depth.items()}
    return results


def print_progress(variant, depth, trained):
    energy = trained["energy"]["mean"]
    print(f"{variant:>15} L = {depth:2d}: energy "
          f"{'   -   ' if energy is None else f'{energy:.1e}'} "
          f"(alive in {trained['energy']['n']} seeds), dead units {trained['dead']['mean']:.2f}, "
          f"accuracy {trained['accuracy']['mean']:.3f}", flush=True)


def main(argv=None):
    parser = common.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", type=common.int_up_to(1000), nargs="+", default=[2, 4, 8, 16, 32, 64],
                        help="numbers of GCN layers to try")
    add_training_options(parser, 5, "seeds seed, seed+1, ... per depth")
    add_output_dirs(parser, "oversmoothing.json")
    args = parser.parse_args(argv)
    if min(args.depths) < 2:
        parser.error(f"--depths must all be at least 2 (input and output layer), got {args.depths}")

    torch.set_num_threads(1)  # a 34-node graph gains nothing from more threads
    start = time.perf_counter()
    depths = sorted(set(args.depths))
    results = run(depths, range(args.seed, args.seed + args.n_seeds), args.hidden,
                  args.epochs, args.lr, args.weight_decay, progress=print_progress)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    results_path = args.out_dir / "oversmoothing.json"
    results_path.write_text(json.dumps(results, indent=1) + "\n")
    figures = plot_oversmoothing(results_path, args.fig_dir)
    snippets = write_oversmoothing_tex(results_path, args.tex_dir)
    print("wrote", results_path, *figures, *snippets, f"in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    common.run(main, "oversmoothing.py")
