"""Back-propagation through time as in a textbook (Question 1.1): the reference the fast path is checked by.

`RNNBPTT` (Eq. 1-2) and `LSTMBPTT` (Eq. 4-10) are torch.autograd.Functions from the inputs x and the
parameters to the logits p^(T) of the last step, on which the loss of Eq. 3 is computed. The forward
pass loops over time and keeps every step's values; the backward pass loops over time in reverse and
applies the chain rule one equation at a time, from dL/dp^(T) to dL/dW_ph, dL/dh^(t), dL/dW_hh, ...

Batches are rows, as in the models: x^(t) is (batch, input_dim) and h^(t) is (batch, num_hidden), so
W x^(t) reads x_t @ W.T, and a weight's gradient sum_t dL/da^(t) x^(t)^T, summed over the batch too,
reads dL_da.T @ x_t. Written to be read, not to be fast: part1/fast/bptt.py computes the same
gradients several times faster, and the tests check both against autograd.
"""
import torch

PATHS = ("fast", "reference", "autograd")  # how a model's forward pass is run and differentiated
LSTM_PARAMETERS = ("W_gx", "W_gh", "b_g", "W_ix", "W_ih", "b_i", "W_fx", "W_fh", "b_f", "W_ox", "W_oh", "b_o",
                   "W_ph", "b_p")


def choose_path(path, fast):
    """The models' `path`: as given, or from the older `fast` keyword (True: "fast", False: "autograd")."""
    path = path or ("fast" if fast else "autograd")
    if path not in PATHS:
        raise ValueError(f"path must be one of {', '.join(PATHS)}, got {path!r}")
    return path


class RNNBPTT(torch.autograd.Function):
    """apply(x, W_hx, W_hh, b_h, W_ph, b_p) -> p^(T), for x of shape (batch, T, input_dim)."""

    @staticmethod
    def forward(ctx, x, W_hx, W_hh, b_h, W_ph, b_p):
        h = [x.new_zeros(x.shape[0], W_hh.shape[0])]  # h[t] is h^(t) (x^(t) is x[:, t - 1]); h^(0) = h_init = 0
        for x_t in x.unbind(1):
            h.append(torch.tanh(x_t @ W_hx.T + h[-1] @ W_hh.T + b_h))  # Eq. 1
        ctx.save_for_backward(x, W_hx, W_hh, b_h, W_ph, torch.stack(h))
        return h[-1] @ W_ph.T + b_p  # Eq. 2

    @staticmethod
    def backward(ctx, dL_dp):
        x, W_hx, W_hh, b_h, W_ph, h = ctx.saved_tensors
        T = x.shape[1]
        dL_dW_ph = dL_dp.T @ h[T]  # Eq. 2: dL/dW_ph = dL/dp^(T) h^(T)^T
        dL_db_p = dL_dp.sum(0)
        dL_dh = dL_dp @ W_ph  # Eq. 2: dL/dh^(T) = W_ph^T dL/dp^(T)
        dL_dx, dL_dW_hx, dL_dW_hh, dL_db_h = (torch.zeros_like(v) for v in (x, W_hx, W_hh, b_h))
        for t in range(T, 0, -1):
            dL_da = dL_dh * (1 - h[t] ** 2)  # Eq. 1: a^(t) the argument of tanh, tanh' = 1 - tanh^2
            dL_dW_hx += dL_da.T @ x[:, t - 1]  # dL/dW_hx = sum_t dL/da^(t) x^(t)^T
            dL_dW_hh += dL_da.T @ h[t - 1]  # dL/dW_hh = sum_t dL/da^(t) h^(t-1)^T
            dL_db_h += dL_da.sum(0)
            dL_dx[:, t - 1] = dL_da @ W_hx  # dL/dx^(t) = W_hx^T dL/da^(t)
            dL_dh = dL_da @ W_hh  # dL/dh^(t-1) = W_hh^T dL/da^(t): the product of Question 1.1
        return dL_dx, dL_dW_hx, dL_dW_hh, dL_db_h, dL_dW_ph, dL_db_p


class LSTMBPTT(torch.autograd.Function):
    """apply(x, W_gx, W_gh, b_g, ..., W_oh, b_o, W_ph, b_p) -> p^(T) (the order of LSTM_PARAMETERS)."""

    @staticmethod
    def forward(ctx, x, W_gx, W_gh, b_g, W_ix, W_ih, b_i, W_fx, W_fh, b_f, W_ox, W_oh, b_o, W_ph, b_p):
        zeros = x.new_zeros(x.shape[0], W_gh.shape[0])
        # Index t holds step t's values (x^(t) is x[:, t - 1]): h^(0) = c^(0) = 0; zeros fill the gates' index 0.
        h, c, g, i, f, o = ([zeros] for _ in range(6))
        for t in range(1, x.shape[1] + 1):
            x_t = x[:, t - 1]
            g.append(torch.tanh(x_t @ W_gx.T + h[t - 1] @ W_gh.T + b_g))  # Eq. 4
            i.append(torch.sigmoid(x_t @ W_ix.T + h[t - 1] @ W_ih.T + b_i))  # Eq. 5
            f.append(torch.sigmoid(x_t @ W_fx.T + h[t - 1] @ W_fh.T + b_f))  # Eq. 6
            o.append(torch.sigmoid(x_t @ W_ox.T + h[t - 1] @ W_oh.T + b_o))  # Eq. 7
            c.append(g[t] * i[t] + c[t - 1] * f[t])  # Eq. 8
            h.append(torch.tanh(c[t]) * o[t])  # Eq. 9
        parameters = (W_gx, W_gh, b_g, W_ix, W_ih, b_i, W_fx, W_fh, b_f, W_ox, W_oh, b_o, W_ph, b_p)
        ctx.save_for_backward(x, *parameters, *(torch.stack(v) for v in (h, c, g, i, f, o)))
        return h[-1] @ W_ph.T + b_p  # Eq. 10

    @staticmethod
    def backward(ctx, dL_dp):
        x, *saved = ctx.saved_tensors
        W = dict(zip(LSTM_PARAMETERS, saved[:len(LSTM_PARAMETERS)], strict=True))  # W["W_gx"] is W_gx
        h, c, g, i, f, o = saved[len(LSTM_PARAMETERS):]
        T = x.shape[1]
        dL_d = {name: torch.zeros_like(value) for name, value in W.items()}  # dL_d["W_gx"] is dL/dW_gx
        dL_d["W_ph"] = dL_dp.T @ h[T]  # Eq. 10: dL/dW_ph = dL/dp^(T) h^(T)^T
        dL_d["b_p"] = dL_dp.sum(0)
        dL_dh = dL_dp @ W["W_ph"]  # Eq. 10: dL/dh^(T) = W_ph^T dL/dp^(T)
        dL_dc = torch.zeros_like(c[T])  # dL/dc^(T) through c^(T+1): none, there is no step T+1
        dL_dx = torch.zeros_like(x)
        for t in range(T, 0, -1):
            dL_do = dL_dh * torch.tanh(c[t])  # Eq. 9
            # dL/dc^(t): through h^(t) (Eq. 9) and, carried in dL_dc, through c^(t+1) (Eq. 8)
            dL_dc = dL_dc + dL_dh * o[t] * (1 - torch.tanh(c[t]) ** 2)
            dL_dg, dL_di, dL_df = dL_dc * i[t], dL_dc * g[t], dL_dc * c[t - 1]  # Eq. 8
            # Eq. 4-7 back to each gate's argument a_*^(t): tanh' = 1 - tanh^2, sigma' = sigma (1 - sigma)
            dL_da = {"g": dL_dg * (1 - g[t] ** 2),  # Eq. 4
                     "i": dL_di * i[t] * (1 - i[t]),  # Eq. 5
                     "f": dL_df * f[t] * (1 - f[t]),  # Eq. 6
                     "o": dL_do * o[t] * (1 - o[t])}  # Eq. 7
            for gate, dL_da_gate in dL_da.items():  # a_*^(t) = W_*x x^(t) + W_*h h^(t-1) + b_*
                dL_d[f"W_{gate}x"] += dL_da_gate.T @ x[:, t - 1]
                dL_d[f"W_{gate}h"] += dL_da_gate.T @ h[t - 1]
                dL_d[f"b_{gate}"] += dL_da_gate.sum(0)
            dL_dx[:, t - 1] = sum(dL_da_gate @ W[f"W_{gate}x"] for gate, dL_da_gate in dL_da.items())  # dL/dx^(t)
            dL_dh = sum(dL_da_gate @ W[f"W_{gate}h"] for gate, dL_da_gate in dL_da.items())  # dL/dh^(t-1)
            dL_dc = dL_dc * f[t]  # Eq. 8: dL/dc^(t-1), through c^(t) = ... + c^(t-1) * f^(t)
        return dL_dx, *(dL_d[name] for name in LSTM_PARAMETERS)
