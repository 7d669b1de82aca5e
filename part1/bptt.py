"""Back-propagation through time written out by hand, as torch.autograd.Functions.

The models' default forward passes run their recurrences through these functions: the forward
loop stores every hidden state, and the backward loop walks time in reverse applying the chain
rule of Question 1.1 step by step. Autograd would record a dozen small nodes per time step; here
each step of the backward pass is a handful of tensor operations, and the weight gradients are one
matrix product over all time steps. The tests check both functions against autograd (gradcheck)
and the models against torch.nn.RNN / torch.nn.LSTM.

Shapes: time runs along dimension 0: the inputs x are (T, batch, input_dim), and so on.
"""
import torch


def input_terms(x, W_x, b):
    """W_x x^(t) + b for every t in one matrix product: (T, batch, input_dim) -> (T, batch, rows of W_x)."""
    return torch.addmm(b, x.flatten(0, 1), W_x.T).view(*x.shape[:2], -1)


def input_grads(x, d_pre):
    """Gradients of W_x and b from dL/d(pre-activations), summed over every t and batch element."""
    d_pre = d_pre.flatten(0, 1)
    return (x.flatten(0, 1).T @ d_pre).T, d_pre.sum(0)


class RNNRecurrence(torch.autograd.Function):
    """h^(t) = tanh(a^(t)),  a^(t) = W_hx x^(t) + W_hh h^(t-1) + b_h,  h^(0) = 0   (Eq. 1).

    apply(x, W_hx, W_hh, b_h) -> all hidden states, (T, batch, num_hidden).
    """

    @staticmethod
    def forward(ctx, x, W_hx, W_hh, b_h):
        x_proj = input_terms(x, W_hx, b_h)
        H = torch.empty_like(x_proj)
        h = x_proj.new_zeros(x_proj.shape[1:])
        for t in range(x_proj.shape[0]):
            h = torch.tanh(torch.addmm(x_proj[t], h, W_hh.T), out=H[t])
        ctx.save_for_backward(x, W_hh, H)
        return H

    @staticmethod
    def backward(ctx, dH):
        x, W_hh, H = ctx.saved_tensors
        dA = 1 - H * H  # tanh'(a^(t)) for every t at once
        dh = torch.zeros_like(H[0])  # dL/dh^(t) that arrives from step t+1
        for t in reversed(range(H.shape[0])):
            # dL/da^(t) = (dL/dh^(t)) * tanh'(a^(t)); then dL/dh^(t-1) = W_hh^T dL/da^(t)
            da = dA[t].mul_(dH[t] + dh)
            dh = da @ W_hh
        H_prev = torch.cat([torch.zeros_like(H[:1]), H[:-1]])
        # dL/dW_hh = sum_t dL/da^(t) h^(t-1)^T: one product over all time steps
        dW_hh = dA.flatten(0, 1).T @ H_prev.flatten(0, 1)
        dW_hx, db_h = input_grads(x, dA)
        return None, dW_hx, dW_hh, db_h


class LSTMRecurrence(torch.autograd.Function):
    """Eq. 4-9 with the four gates' weights stacked as W_x = [W_gx; W_ix; W_fx; W_ox], W_h, b alike:

        [g; i; f; o]^(t) = [tanh; sigma; sigma; sigma](W_x x^(t) + W_h h^(t-1) + b)
        c^(t) = g * i + c^(t-1) * f,   h^(t) = tanh(c^(t)) * o,   h^(0) = c^(0) = 0

    apply(x, W_x, W_h, b) -> all hidden states, (T, batch, num_hidden).
    """

    @staticmethod
    def forward(ctx, x, W_x, W_h, b):
        x_proj = input_terms(x, W_x, b)
        T, batch, four_n = x_proj.shape
        n = four_n // 4
        gates = torch.empty_like(x_proj)  # activations g, i, f, o of every step
        # Row t of C and H holds the state before step t; row 0 is c^(0) = h^(0) = 0.
        C = x_proj.new_empty(T + 1, batch, n)
        H = x_proj.new_empty(T + 1, batch, n)
        C[0] = 0
        H[0] = 0
        tanh_c = x_proj.new_empty(T, batch, n)
        pre = x_proj.new_empty(batch, four_n)  # reused every step: no fresh allocation in the loop
        for t in range(T):
            torch.addmm(x_proj[t], H[t], W_h.T, out=pre)
            torch.tanh(pre[:, :n], out=gates[t, :, :n])  # Eq. 4
            torch.sigmoid(pre[:, n:], out=gates[t, :, n:])  # Eq. 5-7
            g, i, f, o = gates[t].chunk(4, 1)
            torch.mul(C[t], f, out=C[t + 1]).addcmul_(g, i)  # Eq. 8
            torch.mul(torch.tanh(C[t + 1], out=tanh_c[t]), o, out=H[t + 1])  # Eq. 9
        ctx.save_for_backward(x, W_h, gates, C, H, tanh_c)
        return H[1:]

    @staticmethod
    def backward(ctx, dH):
        x, W_h, gates, C, H, tanh_c = ctx.saved_tensors
        n = H.shape[-1]
        d_pre = torch.empty_like(gates)  # dL/d(pre-activations) of g, i, f, o at every step
        dh = torch.zeros_like(H[0])  # dL/dh^(t), carried back from step t+1 through W_h
        dc = torch.zeros_like(C[0])  # dL/dc^(t), carried back from step t+1 through f
        slope = torch.empty_like(gates[0, :, n:])
        for t in reversed(range(tanh_c.shape[0])):
            g, i, f, o = gates[t].chunk(4, 1)
            d_g, d_i, d_f, d_o = d_pre[t].chunk(4, 1)
            dh = dH[t] + dh
            # Eq. 9 backwards: h = tanh(c) * o
            torch.mul(dh, tanh_c[t], out=d_o)
            dc = dc.addcmul_(dh * o, 1 - tanh_c[t] * tanh_c[t])
            # Eq. 8 backwards: c = g * i + c^(t-1) * f
            torch.mul(dc, i, out=d_g)
            torch.mul(dc, g, out=d_i)
            torch.mul(dc, C[t], out=d_f)
            # Through the activations of Eq. 4-7: tanh' = 1 - g^2, sigma' = s (1 - s)
            d_g.mul_(1 - g * g)
            s = gates[t, :, n:]
            d_pre[t, :, n:].mul_(torch.addcmul(s, s, s, value=-1, out=slope))
            dh = d_pre[t] @ W_h
            dc = dc * f
        # dL/dW_h = sum_t dL/d(pre^(t)) h^(t-1)^T: one product over all time steps
        dW_h = d_pre.flatten(0, 1).T @ H[:-1].flatten(0, 1)
        dW_x, db = input_grads(x, d_pre)
        return None, dW_x, dW_h, db
