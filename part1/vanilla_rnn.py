"""Vanilla RNN written from the equations of the assignment (Eq. 1-2), no nn.RNN or nn.Linear."""
import math

import torch
import torch.nn as nn

from part1.bptt import RNNBPTT, choose_path
from part1.dataset import encode_digits
from part1.fast.bptt import RNNRecurrence


class VanillaRNN(nn.Module):
    """h^(t) = tanh(W_hx x^(t) + W_hh h^(t-1) + b_h),  p^(t) = W_ph h^(t) + b_p.

    Weights follow the column-vector convention of the equations: W_hx is (num_hidden x input_dim),
    so a batch of row vectors x (batch x input_dim) is multiplied as x @ W_hx.T.

    Inputs x are digits (batch, seq_length), or vectors (batch, seq_length, input_dim) already encoded.
    `hidden_states` is Eq. 1 as a plain loop under autograd, the one to read next to the assignment.
    `forward` computes the same function on the chosen `path`: "fast" (the default) through
    `RNNRecurrence`, whose backward pass is the BPTT of Question 1.1 written by hand for speed;
    "reference" through `RNNBPTT`, the same BPTT written as in a textbook; "autograd" through
    `hidden_states`. `fast=False` is the older name of path="autograd".
    """

    def __init__(self, seq_length, input_dim, num_hidden, num_classes, device="cpu", fast=True, identity_init=False,
                 path=None):
        super().__init__()
        self.path = choose_path(path, fast)
        self.identity_init = identity_init  # W_hh = I (Le, Jaitly & Hinton 2015)
        self.seq_length = seq_length
        self.input_dim = input_dim
        self.num_hidden = num_hidden
        self.num_classes = num_classes
        self.W_hx = nn.Parameter(torch.empty(num_hidden, input_dim, device=device))
        self.W_hh = nn.Parameter(torch.empty(num_hidden, num_hidden, device=device))
        self.b_h = nn.Parameter(torch.empty(num_hidden, device=device))
        self.W_ph = nn.Parameter(torch.empty(num_classes, num_hidden, device=device))
        self.b_p = nn.Parameter(torch.empty(num_classes, device=device))
        self.reset_parameters()

    def reset_parameters(self):
        # PyTorch's own RNN initialisation for the weights; biases start at zero.
        bound = 1.0 / math.sqrt(self.num_hidden)
        for W in (self.W_hx, self.W_hh, self.W_ph):
            nn.init.uniform_(W, -bound, bound)
        if self.identity_init:
            # Identity recurrence (Le, Jaitly & Hinton 2015): h^(t-1) passes on unchanged at the start.
            nn.init.eye_(self.W_hh)
        nn.init.zeros_(self.b_h)
        nn.init.zeros_(self.b_p)

    def hidden_states(self, x):
        """All hidden states [h^(1), ..., h^(T)] for inputs x of shape (batch, T) or (batch, T, input_dim)."""
        x = encode_digits(x, self.input_dim, self.W_hx.dtype, self.seq_length)
        # The input term W_hx x^(t) + b_h of Eq. 1, for every t in one matrix product.
        x_proj = x @ self.W_hx.T + self.b_h
        h = x.new_zeros(x.shape[0], self.num_hidden)  # h_init
        states = []
        for x_proj_t in x_proj.unbind(1):
            h = torch.tanh(x_proj_t + h @ self.W_hh.T)  # Eq. 1
            states.append(h)
        return states

    def forward(self, x):
        """Logits p^(T) of the last time step, shape (batch, num_classes)."""
        if self.path == "autograd":
            return self.hidden_states(x)[-1] @ self.W_ph.T + self.b_p  # Eq. 2
        x = encode_digits(x, self.input_dim, self.W_hx.dtype, self.seq_length)
        if self.path == "reference":
            return RNNBPTT.apply(x, self.W_hx, self.W_hh, self.b_h, self.W_ph, self.b_p)  # Eq. 1-2
        h_T = RNNRecurrence.apply(x.transpose(0, 1), self.W_hx, self.W_hh, self.b_h, True)  # Eq. 1 time first, h^(T)
        return h_T @ self.W_ph.T + self.b_p  # Eq. 2
