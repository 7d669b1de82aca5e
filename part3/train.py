"""Semi-supervised node classification on Zachary's karate club with a two-layer GCN.

The club split into two factions (networkx's 'club' attribute). Only the two leaders are
labelled (member 0, 'Mr. Hi', and member 33, 'Officer'); the GCN has to label the other 32
from the friendships alone, since every member's feature vector is just its one-hot identity.
"""
import json
import statistics
import time

import networkx as nx
import torch
import torch.nn.functional as F

from part1 import common
from part3.experiments.report_outputs import add_output_dirs, plot_karate, write_karate_tex
from part3.figure2 import rounded
from part3.gcn import GCN, normalized_adjacency

LEADERS = (0, 33)  # the only labelled members: one per faction
# Saved outputs rounded so that every CPU writes the same karate.json: after 200 Adam steps in
# float32 they differ from one CPU to another by up to 5e-7.
EMBEDDING_DIGITS = 4


def load_karate():
    """Return Â, the identity features X, the faction labels and the names of the factions."""
    graph = nx.karate_club_graph()
    # The graph library only reads the data; friendships count once, whatever their weight.
    adj = torch.tensor(nx.to_numpy_array(graph, nodelist=range(graph.number_of_nodes()),
                                         weight=None), dtype=torch.float32)
    factions = sorted({graph.nodes[v]["club"] for v in graph})
    labels = torch.tensor([factions.index(graph.nodes[v]["club"]) for v in range(len(graph))])
    features = torch.eye(len(graph))
    return normalized_adjacency(adj), features, labels, factions


def unlabelled_mask(n_nodes):
    mask = torch.ones(n_nodes, dtype=torch.bool)
    mask[list(LEADERS)] = False
    return mask


def fit(model, adj_hat, features, labels, epochs, lr, weight_decay):
    """Adam on the cross-entropy of the labelled leaders only; return the trained model."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    labelled = list(LEADERS)
    model.train()
    for epoch in range(epochs):
        optimizer.zero_grad()
        logits = model(features, adj_hat)
        loss = F.cross_entropy(logits[labelled], labels[labelled])
        if not torch.isfinite(loss) or not all(torch.isfinite(p).all() for p in model.parameters()):
            # a diverged run has no accuracy to report: nothing is written
            raise ValueError(f"training diverged at epoch {epoch} (loss {loss.item():g}); try a smaller --lr")
        loss.backward()
        optimizer.step()
    model.eval()
    return model


def accuracy_unlabelled(logits, labels):
    mask = unlabelled_mask(len(labels))
    return (logits[mask].argmax(dim=1) == labels[mask]).float().mean().item()


def run(seeds, hidden, epochs, lr, weight_decay, dropout):
    """Train one GCN per seed; keep the 2-D outputs of the first seed's model before and after."""
    adj_hat, features, labels, factions = load_karate()
    accuracies = []
    for seed in seeds:
        torch.manual_seed(seed)
        model = GCN(features.shape[1], hidden, len(factions), dropout).eval()
        if seed == seeds[0]:
            with torch.no_grad():
                before = model(features, adj_hat)
        fit(model, adj_hat, features, labels, epochs, lr, weight_decay)
        with torch.no_grad():
            logits = model(features, adj_hat)
        if seed == seeds[0]:
            after = logits
        accuracies.append(accuracy_unlabelled(logits, labels))
    return {
        "config": {"seeds": list(seeds), "hidden": hidden, "epochs": epochs, "lr": lr,
                   "weight_decay": weight_decay, "dropout": dropout,
                   "labelled": list(LEADERS), "optimizer": "Adam"},
        "factions": factions,
        "labels": labels.tolist(),
        "n_unlabelled": int(unlabelled_mask(len(labels)).sum()),
        "accuracies": accuracies,
        "accuracy_mean": statistics.mean(accuracies),
        # the sample standard deviation (n - 1), as in every table; none for a single seed
        "accuracy_std": statistics.stdev(accuracies) if len(accuracies) > 1 else None,
        "embedding_seed": seeds[0],
        "embedding_before": rounded(before, EMBEDDING_DIGITS),
        "embedding_after": rounded(after, EMBEDDING_DIGITS),
    }


def add_training_options(parser, n_seeds, seeds_help):
    """The seeds and the training options, shared with experiments/oversmoothing.py."""
    parser.add_argument("--seed", type=int, default=0, help="first seed")
    parser.add_argument("--n_seeds", "--n-seeds", type=common.positive_int, default=n_seeds,
                        help=seeds_help)
    parser.add_argument("--epochs", type=common.positive_int, default=200, help="Adam steps")
    parser.add_argument("--hidden", type=common.positive_int, default=16, help="hidden units")
    parser.add_argument("--lr", type=common.learning_rate, default=0.01, help="learning rate")
    parser.add_argument("--weight_decay", "--weight-decay", type=common.non_negative_float, default=5e-4,
                        help="L2 penalty of Adam")


def main(argv=None):
    parser = common.ArgumentParser(description=__doc__.splitlines()[0])
    add_training_options(parser, 10, "runs with seeds seed, seed+1, ...; accuracy is averaged over them")
    parser.add_argument("--dropout", type=common.finite_float, default=0.5, help="dropout rate during training")
    add_output_dirs(parser, "karate.json")
    args = parser.parse_args(argv)
    if not 0 <= args.dropout < 1:
        parser.error(f"--dropout must be in [0, 1), got {args.dropout}")

    torch.set_num_threads(1)  # a 34-node graph gains nothing from more threads
    start = time.perf_counter()
    results = run(range(args.seed, args.seed + args.n_seeds), args.hidden, args.epochs,
                  args.lr, args.weight_decay, args.dropout)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    results_path = args.out_dir / "karate.json"
    results_path.write_text(json.dumps(results, indent=1) + "\n")
    figures = plot_karate(results_path, args.fig_dir)
    tex = write_karate_tex(results_path, args.tex_dir)
    spread = "" if results["accuracy_std"] is None else f" ± {results['accuracy_std']:.3f} (sample sd)"
    print(f"accuracy on the {results['n_unlabelled']} unlabelled members over "
          f"{args.n_seeds} seeds: {results['accuracy_mean']:.3f}{spread} "
          f"(per seed: {' '.join(f'{a:.3f}' for a in results['accuracies'])})")
    print("wrote", results_path, *figures, tex, f"in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    common.run(main, "train.py")
