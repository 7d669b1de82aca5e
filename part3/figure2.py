"""Question 3.2 by code: Ã of the Figure 2 graph, and how many updates carry C's information to E.

The number is found twice: as the length of a shortest path (networkx), and by applying Eq. 14
to a feature that is non-zero only at C until E's row becomes non-zero. Nothing is random.
"""
import json

import networkx as nx
import torch

from part1 import common
from part3.experiments.report_outputs import add_output_dirs, plot_figure2, write_figure2_tex
from part3.gcn import GCNLayer, normalized_adjacency

NODES = ("A", "B", "C", "D", "E", "F")
# The undirected edges read off the assignment's Figure 2.
EDGES = (("A", "B"), ("A", "E"), ("A", "F"), ("B", "C"), ("B", "D"), ("C", "D"), ("D", "F"),
         ("E", "F"))
SOURCE, TARGET = "C", "E"


def adjacency(nodes, edges):
    """The symmetric 0/1 adjacency matrix A, rows and columns in the order of `nodes`."""
    adj = torch.zeros(len(nodes), len(nodes))
    for u, v in edges:
        adj[nodes.index(u), nodes.index(v)] = adj[nodes.index(v), nodes.index(u)] = 1.0
    return adj


def propagate_from(adj_hat, source):
    """Signal after k = 0, 1, ... updates of a feature that is 1 at `source` and 0 elsewhere.

    Each update is a GCN layer (Eq. 14) whose 1 x 1 weight is fixed to 1, so the signal stays
    positive through the ReLU and a node's value is non-zero exactly when the signal has
    reached it. Stops once every node is reached, or when no new node is (a disconnected graph),
    and after at most N - 1 updates: no shortest path is longer, and a wrong Â (one without
    self-loops makes the signal hop back and forth on a bipartite graph) cannot loop forever.
    """
    n_nodes = adj_hat.shape[0]
    layer = GCNLayer(1, 1).to(adj_hat.dtype)
    with torch.no_grad():
        layer.weight.fill_(1.0)
        h = torch.zeros(n_nodes, 1, dtype=adj_hat.dtype)
        h[source] = 1.0
        signals = [h]
        for _ in range(n_nodes - 1):
            if (h > 0).all():
                break
            h = layer(h, adj_hat)  # Eq. 14 with W = 1
            if ((h > 0) == (signals[-1] > 0)).all():
                break
            signals.append(h)
    return torch.cat(signals, dim=1).T  # (updates + 1, N)


def updates_to_reach(signals, target):
    """The first k at which the target's row is non-zero, or None if it never is."""
    return next((k for k, row in enumerate(signals) if row[target] > 0), None)


def format_matrix(matrix, fmt, row_labels=NODES, col_labels=NODES):
    """One line per row, each starting with its label, under a header of column labels."""
    width = max(len(fmt(x)) for x in matrix.flatten().tolist())
    pad = max(len(label) for label in row_labels)
    lines = [" " * pad + " " + " ".join(label.rjust(width) for label in col_labels)]
    for label, row in zip(row_labels, matrix.tolist(), strict=True):
        lines.append(label.ljust(pad) + " " + " ".join(fmt(x).rjust(width) for x in row))
    return "\n".join(lines)


def rounded(matrix, digits=6):
    """A matrix as lists of floats rounded to `digits` decimals: float32 sums differ in their last bits
    from one CPU's vector unit to another's, and the saved results must not."""
    return [[round(x, digits) for x in row] for row in matrix.tolist()]


def run():
    adj = adjacency(NODES, EDGES)
    adj_tilde = adj + torch.eye(len(NODES))  # Eq. 16
    adj_hat = normalized_adjacency(adj)  # Eq. 15
    signals = propagate_from(adj_hat, NODES.index(SOURCE))
    path = nx.shortest_path(nx.Graph(EDGES), SOURCE, TARGET)
    return {
        "nodes": list(NODES),
        "edges": [list(e) for e in EDGES],
        "adj_tilde": adj_tilde.int().tolist(),
        "adj_hat": rounded(adj_hat),
        "source": SOURCE,
        "target": TARGET,
        "shortest_path": path,
        "updates_by_shortest_path": len(path) - 1,
        "updates_by_propagation": updates_to_reach(signals, NODES.index(TARGET)),
        "signal_per_layer": rounded(signals),
    }


def main(argv=None):
    parser = common.ArgumentParser(description=__doc__.splitlines()[0])
    add_output_dirs(parser, "figure2.json")
    args = parser.parse_args(argv)

    torch.set_num_threads(1)  # 6 x 6 matrices gain nothing from more threads
    res = run()
    print("Ã = A + I (Eq. 16):")
    print(format_matrix(torch.tensor(res["adj_tilde"]), str))
    print("Â = D̃^-½ Ã D̃^-½ (Eq. 15):")
    print(format_matrix(torch.tensor(res["adj_hat"]), lambda x: f"{x:.3f}"))
    signals = torch.tensor(res["signal_per_layer"])
    print(f"signal from {SOURCE} after k updates (Eq. 14 with W = 1):")
    print(format_matrix(signals, lambda x: f"{x:.3f}",
                        row_labels=[f"k={k}" for k in range(len(signals))]))
    print(f"{SOURCE} -> {TARGET}: {res['updates_by_propagation']} updates "
          f"(propagation: {res['updates_by_propagation']}, "
          f"shortest path {'-'.join(res['shortest_path'])}: {res['updates_by_shortest_path']})")

    args.out_dir.mkdir(parents=True, exist_ok=True)
    results_path = args.out_dir / "figure2.json"
    results_path.write_text(json.dumps(res, indent=1) + "\n")
    figures = plot_figure2(results_path, args.fig_dir)
    tex = write_figure2_tex(results_path, args.tex_dir)
    print("wrote", results_path, *figures, tex)


if __name__ == "__main__":
    common.run(main, "figure2.py")
