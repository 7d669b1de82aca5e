"""LSTM written from the equations of the assignment (Eq. 4-10), no nn.LSTM or nn.Linear."""
import math

import torch
import torch.nn as nn

from part1.bptt import LSTM_PARAMETERS, LSTMBPTT, choose_path
from part1.dataset import encode_digits
from part1.fast.bptt import LSTMRecurrence

GATES = ("g", "i", "f", "o")


class LSTM(nn.Module):
    """The LSTM of Eq. 4-10 with one named parameter per symbol: W_gx, W_gh, b_g, ..., W_ph, b_p.

    Column-vector convention as in the equations: W_*x is (num_hidden x input_dim) and W_*h is
    (num_hidden x num_hidden). `forget_bias` is the initial value of b_f (0 as in the plain
    equations; 1 or more makes the cell remember longer at initialisation).

    Inputs x are digits (batch, seq_length), or vectors (batch, seq_length, input_dim) already encoded.
    Three paths compute the same function (the tests check each against torch.nn.LSTM):
    `step` is Eq. 4-9 written gate by gate, and `hidden_states` loops over it under autograd: the
    path to read next to the assignment (path="autograd", or the older `fast=False`). The default
    path="fast" stacks the four gates' weights into one matrix, so that each step is one product
    with [x^(t); h^(t-1); 1], and runs the recurrence through `LSTMRecurrence`, whose backward pass is
    BPTT written by hand for speed; path="reference" runs `LSTMBPTT`, the same BPTT as in a textbook.
    """

    def __init__(self, seq_length, input_dim, num_hidden, num_classes, device="cpu", forget_bias=0.0, fast=True,
                 chrono=None, path=None):
        super().__init__()
        self.seq_length = seq_length
        self.input_dim = input_dim
        self.num_hidden = num_hidden
        self.num_classes = num_classes
        self.forget_bias = forget_bias
        self.chrono = chrono  # T_max of the chrono initialisation (None: constant b_f = forget_bias)
        self.path = choose_path(path, fast)
        for gate in GATES:
            setattr(self, f"W_{gate}x", nn.Parameter(torch.empty(num_hidden, input_dim, device=device)))
            setattr(self, f"W_{gate}h", nn.Parameter(torch.empty(num_hidden, num_hidden, device=device)))
            setattr(self, f"b_{gate}", nn.Parameter(torch.empty(num_hidden, device=device)))
        self.W_ph = nn.Parameter(torch.empty(num_classes, num_hidden, device=device))
        self.b_p = nn.Parameter(torch.empty(num_classes, device=device))
        self.reset_parameters()

    def reset_parameters(self):
        # PyTorch's own LSTM initialisation for the weights; biases start at zero except b_f.
        bound = 1.0 / math.sqrt(self.num_hidden)
        for gate in GATES:
            nn.init.uniform_(getattr(self, f"W_{gate}x"), -bound, bound)
            nn.init.uniform_(getattr(self, f"W_{gate}h"), -bound, bound)
            nn.init.zeros_(getattr(self, f"b_{gate}"))
        nn.init.constant_(self.b_f, self.forget_bias)
        if self.chrono:
            # Chrono initialisation (Tallec & Ollivier 2018): b_f = log U(1, T_max - 1), b_i = -b_f, so each
            # unit starts out remembering for a time scale drawn up to T_max steps.
            with torch.no_grad():
                self.b_f.copy_(torch.log(torch.empty_like(self.b_f).uniform_(1, max(1, self.chrono - 1))))
                self.b_i.copy_(-self.b_f)
        nn.init.uniform_(self.W_ph, -bound, bound)
        nn.init.zeros_(self.b_p)

    def step(self, x_t, h, c):
        """One time step, Eq. 4-9 gate by gate: (x^(t), h^(t-1), c^(t-1)) -> (h^(t), c^(t))."""
        g = torch.tanh(x_t @ self.W_gx.T + h @ self.W_gh.T + self.b_g)  # Eq. 4
        i = torch.sigmoid(x_t @ self.W_ix.T + h @ self.W_ih.T + self.b_i)  # Eq. 5
        f = torch.sigmoid(x_t @ self.W_fx.T + h @ self.W_fh.T + self.b_f)  # Eq. 6
        o = torch.sigmoid(x_t @ self.W_ox.T + h @ self.W_oh.T + self.b_o)  # Eq. 7
        c = g * i + c * f  # Eq. 8
        h = torch.tanh(c) * o  # Eq. 9
        return h, c

    def hidden_states(self, x):
        """All hidden states [h^(1), ..., h^(T)] for inputs x of shape (batch, T) or (batch, T, input_dim)."""
        x = encode_digits(x, self.input_dim, self.W_gx.dtype, self.seq_length)
        h = x.new_zeros(x.shape[0], self.num_hidden)  # h_init
        c = x.new_zeros(x.shape[0], self.num_hidden)  # c_init
        states = []
        for x_t in x.unbind(1):
            h, c = self.step(x_t, h, c)
            states.append(h)
        return states

    def forward(self, x):
        """Logits p^(T) of the last time step, shape (batch, num_classes)."""
        if self.path == "autograd":
            return self.hidden_states(x)[-1] @ self.W_ph.T + self.b_p  # Eq. 10
        x = encode_digits(x, self.input_dim, self.W_gx.dtype, self.seq_length)
        if self.path == "reference":
            return LSTMBPTT.apply(x, *(getattr(self, name) for name in LSTM_PARAMETERS))  # Eq. 4-10
        # Eq. 4-7 for all four gates at once: the named weights stacked as [g; i; f; o].
        W_x = torch.cat([self.W_gx, self.W_ix, self.W_fx, self.W_ox])
        W_h = torch.cat([self.W_gh, self.W_ih, self.W_fh, self.W_oh])
        b = torch.cat([self.b_g, self.b_i, self.b_f, self.b_o])
        h_T = LSTMRecurrence.apply(x.transpose(0, 1), W_x, W_h, b, True)  # Eq. 4-9 time first, h^(T) only
        return h_T @ self.W_ph.T + self.b_p  # Eq. 10
