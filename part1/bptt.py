"""Back-propagation through time written out by hand, as torch.autograd.Functions.

The models' default forward passes run their recurrences through these functions: the forward
loop stores every hidden state, and the backward loop walks time in reverse applying the chain
rule of Question 1.1 step by step. Autograd would record a dozen small nodes per time step; here
each step of the backward pass is a handful of tensor operations, and the weight gradients are one
matrix product over all time steps. The tests check both functions against autograd (gradcheck)
and the models against torch.nn.RNN / torch.nn.LSTM.

Shapes: time runs along dimension 0, so x_proj is (T, batch, ...) and so is the output.
"""
import torch


class RNNRecurrence(torch.autograd.Function):
    """h^(t) = tanh(a^(t)),  a^(t) = x_proj^(t) + W_hh h^(t-1),  h^(0) = 0   (Eq. 1).

    x_proj^(t) = W_hx x^(t) + b_h is computed outside, for all t at once, by ordinary autograd.
    """

    @staticmethod
    def forward(ctx, x_proj, W_hh):
        H = torch.empty_like(x_proj)
        h = x_proj.new_zeros(x_proj.shape[1:])
        for t in range(x_proj.shape[0]):
            h = torch.tanh(torch.addmm(x_proj[t], h, W_hh.T), out=H[t])
        ctx.save_for_backward(W_hh, H)
        return H

    @staticmethod
    def backward(ctx, dH):
        W_hh, H = ctx.saved_tensors
        dA = 1 - H * H  # tanh'(a^(t)) for every t at once
        dh = torch.zeros_like(H[0])  # dL/dh^(t) that arrives from step t+1
        for t in reversed(range(H.shape[0])):
            # dL/da^(t) = (dL/dh^(t)) * tanh'(a^(t)); then dL/dh^(t-1) = W_hh^T dL/da^(t)
            da = dA[t].mul_(dH[t] + dh)
            dh = da @ W_hh
        H_prev = torch.cat([torch.zeros_like(H[:1]), H[:-1]])
        # dL/dW_hh = sum_t dL/da^(t) h^(t-1)^T: one product over all time steps
        dW_hh = dA.flatten(0, 1).T @ H_prev.flatten(0, 1)
        return dA, dW_hh


class LSTMRecurrence(torch.autograd.Function):
    """Eq. 4-9 with the four gates stacked as [g; i; f; o]:

        [g; i; f; o]^(t) = [tanh; sigma; sigma; sigma](x_proj^(t) + W_h h^(t-1))
        c^(t) = g * i + c^(t-1) * f,   h^(t) = tanh(c^(t)) * o,   h^(0) = c^(0) = 0

    x_proj^(t) = W_x x^(t) + b is computed outside, for all t at once, by ordinary autograd.
    """

    @staticmethod
    def forward(ctx, x_proj, W_h):
        T, batch, four_n = x_proj.shape
        n = four_n // 4
        gates = torch.empty_like(x_proj)  # activations g, i, f, o of every step
        # Row 0 holds h^(0) = c^(0) = 0, so that row t is the state before step t.
        C = x_proj.new_zeros(T + 1, batch, n)
        H = x_proj.new_zeros(T + 1, batch, n)
        tanh_c = x_proj.new_empty(T, batch, n)
        for t in range(T):
            pre = torch.addmm(x_proj[t], H[t], W_h.T)
            torch.tanh(pre[:, :n], out=gates[t, :, :n])  # Eq. 4
            torch.sigmoid(pre[:, n:], out=gates[t, :, n:])  # Eq. 5-7
            g, i, f, o = gates[t].chunk(4, 1)
            torch.mul(C[t], f, out=C[t + 1]).addcmul_(g, i)  # Eq. 8
            torch.mul(torch.tanh(C[t + 1], out=tanh_c[t]), o, out=H[t + 1])  # Eq. 9
        ctx.save_for_backward(W_h, gates, C, H, tanh_c)
        return H[1:]

    @staticmethod
    def backward(ctx, dH):
        W_h, gates, C, H, tanh_c = ctx.saved_tensors
        T, batch, n = tanh_c.shape
        g, i, f, o = gates.chunk(4, 2)
        # Local derivatives of every step, computed for all t at once:
        dc_from_h = (1 - tanh_c * tanh_c).mul_(o)  # dh/dc (Eq. 9)
        d_act = gates * (1 - gates)  # sigma' of i, f, o ...
        d_act[..., :n] = 1 - g * g  # ... and tanh' of g
        # dc/d(pre-activations of g, i, f) = (i, g, c^(t-1)) times the activation's slope (Eq. 8)
        dc_to_pre = torch.cat([i, g, C[:-1]], 2).mul_(d_act[..., : 3 * n]).view(T, batch, 3, n)
        dh_to_pre_o = tanh_c * d_act[..., 3 * n:]  # dh/d(pre-activation of o) (Eq. 9)
        d_pre = torch.empty_like(gates)
        d_pre_gif = d_pre[..., : 3 * n].view(T, batch, 3, n)
        dh = torch.zeros_like(H[0])  # dL/dh^(t), carried back from step t+1 through W_h
        dc = torch.zeros_like(C[0])  # dL/dc^(t), carried back from step t+1 through f
        for t in reversed(range(T)):
            dh = dH[t] + dh
            dc = dc.addcmul_(dh, dc_from_h[t])
            torch.mul(dc.unsqueeze(1), dc_to_pre[t], out=d_pre_gif[t])
            torch.mul(dh, dh_to_pre_o[t], out=d_pre[t, :, 3 * n:])
            dh = d_pre[t] @ W_h
            dc = dc * f[t]
        # dL/dW_h = sum_t dL/d(pre^(t)) h^(t-1)^T: one product over all time steps
        dW_h = d_pre.flatten(0, 1).T @ H[:-1].flatten(0, 1)
        return d_pre, dW_h
