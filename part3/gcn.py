"""Graph Convolutional Network (Kipf and Welling, ICLR 2017) written by hand in torch.

Equation numbers refer to section 3.1 of the assignment. Â may be dense or a sparse COO tensor:
torch.mm multiplies either by a dense matrix.
"""
import math

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


class GCNIILayer(nn.Module):
    """Initial residual and identity mapping (GCNII, Chen et al. 2020), for hidden layer l:

    H' = σ(((1 - α) Â H + α H¹) ((1 - β_l) I + β_l W)),  β_l = ln(λ / l + 1),

    with H¹ the first layer's output (GCNII's H⁰). Every layer mixes back a fraction α of it, so
    repeated averaging cannot wash it out; β_l shrinks with depth, keeping deep layers close to
    the identity. The defaults α = 0.1 and λ = 0.5 are the paper's; activation=None leaves σ out.
    """

    def __init__(self, n_features, layer_index, alpha=0.1, lam=0.5, activation=torch.relu):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_features, n_features))
        self.alpha = alpha
        self.beta = math.log(lam / layer_index + 1)
        self.activation = activation
        nn.init.xavier_uniform_(self.weight)

    def forward(self, h, h1, adj_hat):
        support = (1 - self.alpha) * torch.mm(adj_hat, h) + self.alpha * h1  # initial residual
        out = (1 - self.beta) * support + self.beta * (support @ self.weight)  # identity mapping
        return out if self.activation is None else self.activation(out)


class DeepGCN(nn.Module):
    """A GCN of n_layers propagation steps: an input layer, n_layers - 2 hidden layers, an output.

    The hidden layers compute, by `skip`,
      "none":     H' = σ(Â H W)               (Eq. 14 stacked)
      "residual": H' = H + σ(Â H W)           (a skip connection around every layer)
      "initial":  GCNIILayer, which mixes in H¹, the input layer's output.
    activation=None drops σ everywhere: a linear GCN, smoothing with nothing that can switch off.
    alpha and lam are GCNII's α and λ (its defaults), used only with skip="initial".
    """

    SKIPS = ("none", "residual", "initial")

    def __init__(self, n_features, n_hidden, n_classes, n_layers, skip="none",
                 activation=torch.relu, alpha=0.1, lam=0.5):
        super().__init__()
        if n_layers < 2:
            raise ValueError(f"n_layers must be at least 2, got {n_layers}")
        if skip not in self.SKIPS:
            raise ValueError(f"skip must be one of {self.SKIPS}, got {skip!r}")
        self.input = GCNLayer(n_features, n_hidden, activation)
        if skip == "initial":
            self.hidden = nn.ModuleList(GCNIILayer(n_hidden, l, alpha, lam, activation)
                                        for l in range(1, n_layers - 1))
        else:
            self.hidden = nn.ModuleList(GCNLayer(n_hidden, n_hidden, activation)
                                        for _ in range(n_layers - 2))
        self.output = GCNLayer(n_hidden, n_classes, activation=None)
        self.skip = skip

    def hidden_states(self, x, adj_hat):
        """[H¹, ..., H^(L-1)]: the representation after the input layer and every hidden layer."""
        h1 = h = self.input(x, adj_hat)
        states = [h]
        for layer in self.hidden:
            if self.skip == "initial":
                h = layer(h, h1, adj_hat)
            elif self.skip == "residual":
                h = h + layer(h, adj_hat)
            else:
                h = layer(h, adj_hat)
            states.append(h)
        return states

    def embed(self, x, adj_hat):
        """The last hidden representation, the one the output layer classifies."""
        return self.hidden_states(x, adj_hat)[-1]

    def forward(self, x, adj_hat):
        return self.output(self.embed(x, adj_hat), adj_hat)
