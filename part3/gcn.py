"""Graph Convolutional Network (Kipf and Welling, ICLR 2017) written by hand in torch.

Equation numbers refer to section 3.1 of the assignment. Â may be dense or a sparse COO tensor:
torch.mm multiplies either by a dense matrix.
"""
import torch
import torch.nn.functional as F
from torch import nn


def normalized_adjacency(adj):
    """Return Â for an (N, N) adjacency matrix A of an undirected graph."""
    adj_tilde = adj + torch.eye(adj.shape[0], dtype=adj.dtype)  # Eq. 16: Ã = A + I_N
    deg_tilde = adj_tilde.sum(dim=1)  # Eq. 17: D̃_ii = Σ_j Ã_ij
    d_inv_sqrt = deg_tilde.pow(-0.5)
    return d_inv_sqrt[:, None] * adj_tilde * d_inv_sqrt[None, :]  # Eq. 15: Â = D̃^-½ Ã D̃^-½


class GCNLayer(nn.Module):
    """One propagation step H' = σ(Â H W); activation=None leaves σ out (for the output layer)."""

    def __init__(self, in_features, out_features, activation=torch.relu):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_features, out_features))
        self.activation = activation
        nn.init.xavier_uniform_(self.weight)

    def forward(self, h, adj_hat):
        out = torch.mm(adj_hat, h @ self.weight)  # Eq. 14: Â H W
        return out if self.activation is None else self.activation(out)  # Eq. 14: σ(·)


class GCN(nn.Module):
    """Two-layer GCN: logits Z = Â ReLU(Â X W⁰) W¹ (the softmax lives in the loss)."""

    def __init__(self, n_features, n_hidden, n_classes, dropout=0.5):
        super().__init__()
        self.gc1 = GCNLayer(n_features, n_hidden)
        self.gc2 = GCNLayer(n_hidden, n_classes, activation=None)
        self.dropout = dropout

    def forward(self, x, adj_hat):
        x = F.dropout(x, self.dropout, self.training)
        h = self.gc1(x, adj_hat)
        h = F.dropout(h, self.dropout, self.training)
        return self.gc2(h, adj_hat)


class DeepGCN(nn.Module):
    """A GCN of n_layers propagation steps, optionally with residual connections.

    The hidden-to-hidden layers compute H' = σ(Â H W) (Eq. 14) or, with residual=True,
    H' = H + σ(Â H W), the skip connection that keeps a node's own features from being
    averaged away as layers are stacked (over-smoothing, Question 3.1b).
    """

    def __init__(self, n_features, n_hidden, n_classes, n_layers, residual=False):
        super().__init__()
        if n_layers < 2:
            raise ValueError(f"n_layers must be at least 2, got {n_layers}")
        self.input = GCNLayer(n_features, n_hidden)
        self.hidden = nn.ModuleList(GCNLayer(n_hidden, n_hidden) for _ in range(n_layers - 2))
        self.output = GCNLayer(n_hidden, n_classes, activation=None)
        self.residual = residual

    def embed(self, x, adj_hat):
        """The last hidden representation, the one the output layer classifies."""
        h = self.input(x, adj_hat)
        for layer in self.hidden:
            h = h + layer(h, adj_hat) if self.residual else layer(h, adj_hat)
        return h

    def forward(self, x, adj_hat):
        return self.output(self.embed(x, adj_hat), adj_hat)
