"""Back-propagation through time written out by hand, as torch.autograd.Functions.

The models' default forward passes run their recurrences through these functions: the forward
loop stores every state, and the backward loop walks time in reverse applying the chain rule of
Question 1.1 step by step. Autograd would record a dozen small nodes per time step; here each step
of the backward pass is a handful of tensor operations, and the weight gradients are one matrix
product over all time steps. The tests check both functions against autograd (gradcheck) and the
models against torch.nn.RNN / torch.nn.LSTM.

Layout. The interface is time-first: inputs x are (T, batch, input_dim), and the functions return
all hidden states (T, batch, num_hidden), or only h^(T) (batch, num_hidden) when asked. Inside,
states are feature-major, as the equations' column vectors: h^(t) is a (num_hidden, batch) matrix
and the pre-activations of a step a (4n, batch) matrix, so that each LSTM gate is a contiguous
block of rows; elementwise operations run several times faster on contiguous blocks than on column
slices of a (batch, 4n) matrix. Tensors that the weight gradients read are stored as
(features, T, batch): all time steps side by side form a (features, T * batch) matrix, and the
weight gradients are one matrix product. oneDNN, behind `matmul`, reads a product's second operand
as a (batch, features) block and copies one that lies otherwise; so the LSTM keeps [x^(t); h^(t-1); 1]
that way as well, and its fused backward kernel writes dL/d(pre-activations) both ways.

Buffers. A fresh tensor of a few MB costs more than the arithmetic on it: the operating system hands
out its pages zeroed on first touch (page faults). The states saved for the backward pass and the
backward pass's scratch are therefore taken from a small pool of buffers (`take`) and go back to it
when their call is done with them.
"""
import weakref

import torch

from part1.fast import fused


def tanh(a, out):
    """tanh(a) = 1 - 2 sigmoid(-2a), written to `out` (which may be `a`).

    The same function as torch.tanh to rounding; PyTorch's own tanh is several times slower than
    its sigmoid on some CPUs (about 6x on AMD EPYC), and the recurrences call it at every step.
    """
    return torch.mul(a, -2, out=out).sigmoid_().mul_(-2).add_(1)


# PyTorch's oneDNN linear op (input @ weight^T), where this build has oneDNN.
_onednn_linear = getattr(torch.ops.mkldnn, "_linear_pointwise", None) if torch.backends.mkldnn.is_available() else None


def uses_onednn(a):
    """Whether `matmul` (and fused.py's loops) run products with the first operand `a` through oneDNN."""
    return _onednn_linear is not None and a.dtype == torch.float32 and a.device.type == "cpu"


def matmul(a, b):
    """a @ b; in float32 on the CPU through oneDNN, the library nn.LSTM runs on, where PyTorch has it.

    On some CPUs MKL, behind torch.mm, runs these small products at AVX2 speed where oneDNN uses
    AVX-512 (AMD EPYC of family 26: 190 against 100 us for a step's 512 x 139 x 128 product).
    The op is PyTorch's own linear layer for oneDNN (input @ weight^T), which needs a contiguous
    weight: b^T is copied, a small cost beside the product. In float64 (the tests) it is torch.mm.
    """
    if not uses_onednn(a):
        return a @ b
    return _onednn_linear(a, b.T.contiguous(), None, "none", [], "")


_free = {}  # name -> ((numel, dtype, device), [flat buffers that no call is using])


def take(name, shapes, like, owner=None):
    """Uninitialised tensors of the given shapes (dtype and device of `like`), views of one flat buffer.

    Returns (buffer, [views]). The buffer is reused from earlier calls of the same `name` when one
    of its size is free. With an `owner` (the autograd node that saves the views) it goes back to
    the pool once the owner is garbage, i.e. when no backward pass can read it any more; without
    one, the caller hands it back with `give_back`.
    """
    sizes = [torch.Size(shape).numel() for shape in shapes]
    key, free = _free.get(name, (None, []))
    try:
        buffer = free.pop() if key == (sum(sizes), like.dtype, like.device) else like.new_empty(sum(sizes))
    except IndexError:  # none free
        buffer = like.new_empty(sum(sizes))
    if owner is not None:
        weakref.finalize(owner, give_back, name, buffer).atexit = False
    return buffer, [piece.view(shape) for piece, shape in zip(buffer.split(sizes), shapes, strict=True)]


def give_back(name, buffer):
    """Return a buffer of `take` to the pool, which keeps only the size last given back under each
    name, so that memory stays bounded when the length T or the batch changes."""
    key = (buffer.numel(), buffer.dtype, buffer.device)
    if _free.get(name, (None,))[0] != key:
        _free[name] = (key, [])
    free = _free[name][1]
    if len(free) < 2:  # a training loop holds at most the previous step's graph besides the current one
        free.append(buffer)


def step_inputs(x, n, inputs):
    """Fill `inputs` (input_dim + n + 1, T + 1, batch): column t holds what step t + 1 reads, [x^(t+1); h^(t); 1].

    The inputs x and the ones are filled in here, h^(0) = 0 in column 0; the forward loop writes
    h^(t) into column t. Column T holds h^(T) (its x and 1 rows are unused); a buffer of T columns
    (the LSTM's, which keeps h^(T) elsewhere) is a contiguous (input_dim + n + 1, T * batch) matrix.
    """
    T, batch, input_dim = x.shape
    inputs[:input_dim, :T] = x.permute(2, 0, 1)
    inputs[input_dim:-1, 0] = 0
    inputs[-1] = 1
    return inputs


def transposed_step_inputs(x, n, inputs_T):
    """Fill inputs_T (T + 1, batch, input_dim + n + 1), the buffer of `step_inputs` transposed: row b of
    slot t holds [x^(t+1); h^(t); 1] of sequence b, the layout in which oneDNN reads a product's operand
    without copying it. Slot T holds h^(T) (its x and 1 are unused); slot 0's h^(0) = 0 is not written,
    as the first step's product reads only x^(1) and 1."""
    T, batch, input_dim = x.shape
    inputs_T[:T, :, :input_dim] = x
    inputs_T[:, :, -1] = 1
    return inputs_T


def transposed(a):
    """a^T as a contiguous tensor: fused.py's copy in tiles where the kernels run (on AMD EPYC, 20-27 us for a
    (512, 128) block, where PyTorch's copy of the transposed view takes 50-100 us), else a.T.contiguous()."""
    kernels = fused.kernels_for(a)
    return kernels.transposed(a) if kernels else a.T.contiguous()


def weight_grads(d_pre, inputs, input_dim):
    """dL/dW_x, dL/dW_h and dL/db, summed over t and batch, from one matrix product:

    [dL/dW_x, dL/dW_h, dL/db] = sum_t dL/d(pre^(t)) [x^(t); h^(t-1); 1]^T, with the gradients of the
    pre-activations d_pre (rows, T, batch) and the buffer `inputs` of `step_inputs`.
    """
    rows, T, batch = d_pre.shape
    # Computed transposed, [x; h; 1] d_pre^T: about 20% faster with MKL on AMD EPYC, and then the operand
    # matmul hands oneDNN transposed is d_pre as it lies. Returned in the parameters' layout, copied by
    # `transposed`: autograd then hands each parameter its block of them as it lies (the LSTM's after
    # splitting them by gate), where from a transposed view it copies each block with PyTorch's slower copy.
    grads = matmul(inputs[:, :T].reshape(-1, T * batch), d_pre.view(rows, T * batch).T)
    return transposed(grads[:input_dim]), transposed(grads[input_dim:-1]), grads[-1]


def grad_x(W_x, d_pre):
    """dL/dx^(t) = W_x^T dL/d(pre^(t)) for every t at once, time first (T, batch, input_dim) as x is."""
    rows, T, batch = d_pre.shape
    return (W_x.T @ d_pre.reshape(rows, T * batch)).view(-1, T, batch).permute(1, 2, 0)


def grad_h(t, dH, last_only, W_T, d_pre_next):
    """dL/dh^(t): directly from the loss (dH holds every state's, or only h^(T)'s when last_only),
    plus W^T dL/d(pre-activations of step t+1) unless t is the last step (d_pre_next None)."""
    if d_pre_next is None:
        return dH if last_only else dH[:, t]
    product = matmul(W_T, d_pre_next)
    return product if last_only else product.add_(dH[:, t])


def local_derivatives(gates, C, U, local, tanh_c, dh_to_dc):
    """The local derivatives of every LSTM step at once (tanh' = 1 - tanh^2, sigma' = sigma (1 - sigma)):

    local[t] = d(g * i, g * i, c^(t-1) * f, tanh(c^(t)) * o)/d(pre-activations of g, i, f, o), and
    dh_to_dc[t] = d h^(t)/d c^(t) = o tanh'(c^(t)), from the gates, c^(t) and u^(t) saved by the forward pass.
    """
    T, four_n, batch = gates.shape
    n = four_n // 4
    g, i, f, o = gates.view(T, 4, n, batch).unbind(1)
    one = gates.new_ones(())
    torch.add(one, U, alpha=-2, out=tanh_c)  # tanh(c^(t)) = 1 - 2 u^(t)
    torch.addcmul(one, g, g, value=-1, out=local[:, 0]).mul_(i)
    torch.addcmul(gates[:, n:], gates[:, n:], gates[:, n:], value=-1, out=local[:, 1:].view(T, 3 * n, batch))
    local[:, 1].mul_(g)
    local[:, 2].mul_(C[:-1])
    local[:, 3].mul_(tanh_c)
    torch.addcmul(one, tanh_c, tanh_c, value=-1, out=dh_to_dc).mul_(o)


def lstm_forward_loop(W_scaled, x, inputs_T, gates, C, U, inputs, h_last):
    """The forward time loop of LSTMRecurrence in PyTorch operations (fused.py has it in C++): at step t the
    product [W_x, W_h, b] [x^(t); h^(t-1); 1] (rows of g scaled by -2), then Eq. 4-9 into the buffers."""
    T, four_n, batch = gates.shape
    n, input_dim = four_n // 4, x.shape[2]
    one = gates.new_ones(())
    # Views of every step made once (indexing in the loop costs more than the small operations)
    z, c, u = gates.unbind(0), C.unbind(0), U.unbind(0)
    g, i, f, o = (gate.unbind(0) for gate in gates.view(T, 4, n, batch).unbind(1))
    h = [*inputs[input_dim:-1].unbind(1), h_last]  # h^(t), (n, batch)
    h_T = inputs_T[:, :, input_dim:-1].unbind(0)  # slot t: h^(t), (batch, n)
    x_h_1 = inputs_T.unbind(0)  # slot t: [x^(t+1); h^(t); 1]^T, what step t + 1 reads
    for t in range(T):
        if t == 0:  # h^(0) = 0: only the x and 1 columns of the stacked product, a fraction of its cost
            pre = torch.addmm(W_scaled[:, -1:], W_scaled[:, :input_dim], x[0].T)
        else:
            pre = matmul(W_scaled, x_h_1[t].T)
        torch.sigmoid(pre, out=z[t])  # Eq. 5-7
        torch.add(one, g[t], alpha=-2, out=g[t])  # Eq. 4
        torch.mul(c[t], f[t], out=c[t + 1]).addcmul_(g[t], i[t])  # Eq. 8
        # Eq. 9 with tanh(c) = 1 - 2u, u = sigmoid(-2c): h = o - 2 u o
        torch.mul(c[t + 1], -2, out=u[t]).sigmoid_()
        torch.addcmul(o[t], u[t], o[t], value=-2, out=h[t + 1])
        h_T[t + 1].copy_(h[t + 1].T)


def lstm_backward_loop(dH, last_only, W_h_T, gates, local, dh_to_dc, dc, d_pre):
    """The backward time loop of LSTMRecurrence in PyTorch operations (fused.py has it in C++): from step T
    down to 1, dL/dh^(t), then back through Eq. 9-4 with the local derivatives of `local_derivatives`."""
    T, four_n, batch = gates.shape
    n = four_n // 4
    d_pre_t = d_pre.view(four_n, T, batch).unbind(1)  # dL/d(pre-activations) of g, i, f, o at every step
    d_o, d_gif = d_pre[3].unbind(1), d_pre[:3].unbind(2)
    f = gates.view(T, 4, n, batch)[:, 2].unbind(0)
    local_o, local_gif, dh_to_dc = local[:, 3].unbind(0), local[:, :3].unbind(0), dh_to_dc.unbind(0)
    for t in reversed(range(T)):
        dh = grad_h(t, dH, last_only, W_h_T, d_pre_t[t + 1] if t < T - 1 else None)
        torch.mul(dh, local_o[t], out=d_o[t])  # Eq. 9 back to o
        dc.addcmul_(dh, dh_to_dc[t])  # Eq. 9 back to c^(t)
        torch.mul(dc, local_gif[t], out=d_gif[t])  # Eq. 8 back to g, i, f
        dc.mul_(f[t])  # dL/dc^(t-1), through c^(t) = ... + c^(t-1) * f


class RNNRecurrence(torch.autograd.Function):
    """h^(t) = tanh(a^(t)),  a^(t) = W_hx x^(t) + W_hh h^(t-1) + b_h,  h^(0) = 0   (Eq. 1).

    apply(x, W_hx, W_hh, b_h) -> all hidden states, (T, batch, num_hidden);
    apply(x, W_hx, W_hh, b_h, True) -> the last one, h^(T), (batch, num_hidden).
    """

    @staticmethod
    def forward(ctx, x, W_hx, W_hh, b_h, last_only=False):
        T, batch, input_dim = x.shape
        n = W_hh.shape[0]
        _, (inputs,) = take("RNN forward", [(input_dim + n + 1, T + 1, batch)], x, owner=ctx)
        step_inputs(x, n, inputs)
        # A[:, t] starts as W_hx x^(t) + b_h for every t at once; the loop adds W_hh h^(t-1) in place.
        scratch, (A,) = take("RNN pre-activations", [(n, T, batch)], x)
        torch.addmm(b_h[:, None], W_hx, x.reshape(T * batch, -1).T, out=A.view(n, T * batch))
        H = inputs[input_dim:-1]  # column t: h^(t)
        a, h = A.unbind(1), H.unbind(1)  # views of every step, made once
        kernels = fused.kernels_for(x)
        for t in range(T):
            if t > 0:  # W_hh h^(0) = 0
                a[t].addmm_(W_hh, h[t])
            if kernels:
                kernels.rnn_forward_step(a[t], h[t + 1])  # Eq. 1, one C++ loop (fused.py)
            else:
                tanh(a[t], out=h[t + 1])  # Eq. 1
        give_back("RNN pre-activations", scratch)
        ctx.save_for_backward(inputs, W_hh, W_hx)
        ctx.last_only = last_only
        # A copy: the buffer goes back to the pool when this call's graph is gone; the output may live on.
        return H[:, T].T.contiguous() if last_only else H[:, 1:].permute(1, 2, 0).contiguous()

    @staticmethod
    def backward(ctx, dH):
        inputs, W_hh, W_hx = ctx.saved_tensors
        n = W_hh.shape[0]
        input_dim = inputs.shape[0] - n - 1
        H = inputs[input_dim:-1]  # column t: h^(t)
        T, batch = H.shape[1] - 1, H.shape[2]
        dH = dH.T if ctx.last_only else dH.permute(2, 0, 1)  # (n, batch) or (n, T, batch), like H
        scratch, (dA,) = take("RNN backward", [(n, T, batch)], inputs)
        kernels = fused.kernels_for(inputs)
        if not kernels:  # tanh'(a^(t)) = 1 - h^(t)^2 for every t at once; becomes dL/da^(t) below
            torch.addcmul(inputs.new_ones(()), H[:, 1:], H[:, 1:], value=-1, out=dA)
        da, h = dA.unbind(1), H.unbind(1)
        W_hh_T = transposed(W_hh)  # the products below read it faster than the transposed view
        for t in reversed(range(T)):
            dh = grad_h(t, dH, ctx.last_only, W_hh_T, da[t + 1] if t < T - 1 else None)
            if kernels:
                kernels.rnn_backward_step(dh.contiguous(), h[t + 1], da[t])  # the line below with tanh' in one C++ loop
            else:
                da[t].mul_(dh)  # dL/da^(t) = dL/dh^(t) * tanh'(a^(t))
        dW_hx, dW_hh, db_h = weight_grads(dA, inputs, input_dim)
        dx = grad_x(W_hx, dA) if ctx.needs_input_grad[0] else None
        give_back("RNN backward", scratch)
        return dx, dW_hx, dW_hh, db_h, None


class LSTMRecurrence(torch.autograd.Function):
    """Eq. 4-9 with the four gates' weights stacked as W_x = [W_gx; W_ix; W_fx; W_ox], W_h, b alike:

        [g; i; f; o]^(t) = [tanh; sigma; sigma; sigma](W_x x^(t) + W_h h^(t-1) + b)
        c^(t) = g * i + c^(t-1) * f,   h^(t) = tanh(c^(t)) * o,   h^(0) = c^(0) = 0

    apply(x, W_x, W_h, b) -> all hidden states, (T, batch, num_hidden);
    apply(x, W_x, W_h, b, True) -> the last one, h^(T), (batch, num_hidden): all a model with one
    read-out at the end needs, and its backward pass skips the gradients of the other states.
    """

    @staticmethod
    def forward(ctx, x, W_x, W_h, b, last_only=False):
        T, batch, input_dim = x.shape
        n = W_h.shape[1]
        # Eq. 4 as g = tanh(a) = 1 - 2 sigmoid(-2a) (see `tanh`): with the rows of g scaled by -2,
        # one sigmoid over all four gates' pre-activations serves Eq. 4-7.
        scale = W_h.new_ones(4 * n, 1)
        scale[:n] = -2
        # What the backward pass reads: [x; h; 1], the gates, c^(t) and u^(t) = sigmoid(-2 c^(t)).
        # (h^(T) is no step's input: it is kept only in inputs_T below, so that `inputs` is one matrix.)
        shapes = (input_dim + n + 1, T, batch), (T, 4 * n, batch), (T + 1, n, batch), (T, n, batch)
        _, (inputs, gates, C, U) = take("LSTM forward", shapes, x, owner=ctx)
        step_inputs(x, n, inputs)
        # The same inputs transposed, as the step products read them, and h^(T) (the forward pass's scratch)
        scratch, (inputs_T, h_last) = take("LSTM step inputs", [(T + 1, batch, input_dim + n + 1), (n, batch)], x)
        transposed_step_inputs(x, n, inputs_T)
        C[0] = 0  # c^(0)
        # W_x x^(t) + W_h h^(t-1) + b in one product per step: [W_x, W_h, b] [x^(t); h^(t-1); 1]
        W_scaled = torch.cat([W_x, W_h, b[:, None]], dim=1).mul_(scale)
        kernels = fused.kernels_for(x)
        if kernels:  # lstm_forward_loop in C++, each step's gate arithmetic in one pass (fused.py)
            kernels.lstm_forward_loop(W_scaled, x, inputs_T, gates, C, U, inputs, h_last, uses_onednn(x))
        else:
            lstm_forward_loop(W_scaled, x, inputs_T, gates, C, U, inputs, h_last)
        ctx.save_for_backward(inputs, W_h, gates, C, U, W_x)
        ctx.last_only = last_only
        # A copy: the buffer goes back to the pool now; the output may live on.
        output = (inputs_T[T] if last_only else inputs_T[1:])[..., input_dim:-1].clone(memory_format=torch.contiguous_format)
        give_back("LSTM step inputs", scratch)
        return output

    @staticmethod
    def backward(ctx, dH):
        inputs, W_h, gates, C, U, W_x = ctx.saved_tensors
        T, four_n, batch = gates.shape
        n = four_n // 4
        input_dim = inputs.shape[0] - n - 1
        # d_pre_T: dL/d(pre-activations) of one step transposed, as the fused kernel writes it for the next product
        shapes = (T, 4, n, batch), (T, n, batch), (T, n, batch), (4, n, T, batch), (n, batch), (batch, four_n)
        scratch, (local, tanh_c, dh_to_dc, d_pre, dc, d_pre_T) = take("LSTM backward", shapes, gates)
        kernels = fused.kernels_for(gates)
        if not kernels:  # the fused kernel computes them step by step
            local_derivatives(gates, C, U, local, tanh_c, dh_to_dc)
        dc.zero_()  # dL/dc^(t), carried back from step t+1 through f
        dH = dH.T if ctx.last_only else dH.permute(2, 0, 1)  # (n, batch) or (n, T, batch), like H
        W_h_T = transposed(W_h)  # oneDNN's linear op would copy the transposed view at every step
        if kernels:  # lstm_backward_loop in C++, each step's gate arithmetic and local derivatives in one pass (fused.py)
            kernels.lstm_backward_loop(dH, ctx.last_only, W_h_T, gates, C, U, dc, d_pre, d_pre_T, uses_onednn(W_h_T))
        else:
            lstm_backward_loop(dH, ctx.last_only, W_h_T, gates, local, dh_to_dc, dc, d_pre)
        dW_x, dW_h, db = weight_grads(d_pre.view(four_n, T, batch), inputs, input_dim)
        dx = grad_x(W_x, d_pre.view(four_n, T, batch)) if ctx.needs_input_grad[0] else None
        give_back("LSTM backward", scratch)
        return dx, dW_x, dW_h, db, None
