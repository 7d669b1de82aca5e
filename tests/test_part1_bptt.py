"""The hand-written BPTT functions: the fast ones when only h^(T) is returned (the path the models
take), and the textbook ones of part1/bptt.py."""
import pytest
import torch

from part1.bptt import LSTM_PARAMETERS, LSTMBPTT, RNNBPTT
from part1.fast.bptt import LSTMRecurrence, RNNRecurrence, tanh


@pytest.mark.parametrize("recurrence,gates", [(RNNRecurrence, 1), (LSTMRecurrence, 4)])
def test_last_state_only_passes_gradcheck_and_equals_the_last_of_all_states(recurrence, gates):
    gen = torch.Generator().manual_seed(1)

    def randn(*shape):
        return (torch.randn(*shape, generator=gen, dtype=torch.float64) * 0.7).requires_grad_()

    x = randn(5, 3, 4)
    weights = (randn(4 * gates, 4), randn(4 * gates, 4), randn(4 * gates))
    assert torch.equal(recurrence.apply(x, *weights, True), recurrence.apply(x, *weights)[-1])
    assert torch.autograd.gradcheck(lambda *inputs: recurrence.apply(*inputs, True), (x, *weights))


def test_tanh_through_the_sigmoid_equals_torch_tanh():
    a = torch.linspace(-30, 30, 10001, dtype=torch.float64)
    assert (tanh(a, out=torch.empty_like(a)) - torch.tanh(a)).abs().max() < 1e-15
    b = a.float()
    assert (tanh(b, out=b.clone()) - torch.tanh(b)).abs().max() < 1e-6


@pytest.mark.parametrize("recurrence,gates", [(RNNRecurrence, 1), (LSTMRecurrence, 4)])
@pytest.mark.parametrize("last_only", [False, True])
def test_kept_outputs_and_retained_graphs_do_not_see_later_calls(recurrence, gates, last_only):
    """The functions reuse their buffers between calls (bptt.take): an output kept, or a graph kept
    for a second backward pass, must not change when later calls of the same shapes run."""
    gen = torch.Generator().manual_seed(2)
    x1, x2 = (torch.randn(5, 3, 4, generator=gen, dtype=torch.float64).requires_grad_() for _ in range(2))
    weights = [torch.randn(*shape, generator=gen, dtype=torch.float64).requires_grad_()
               for shape in ((4 * gates, 4), (4 * gates, 4), (4 * gates,))]

    def later_calls():  # each with its backward pass, taking buffers from the pool and giving them back
        for _ in range(3):
            torch.autograd.grad(recurrence.apply(x2, *weights, last_only).sum(), [x2, *weights])

    with torch.no_grad():
        kept = recurrence.apply(x1, *weights, last_only)
    expected = kept.clone()
    later_calls()
    assert torch.equal(kept, expected)
    out = recurrence.apply(x1, *weights, last_only)
    grads = torch.autograd.grad(out.sum(), [x1, *weights], retain_graph=True)
    later_calls()
    for again, first in zip(torch.autograd.grad(out.sum(), [x1, *weights]), grads, strict=True):
        assert torch.equal(again, first)


def reference_inputs(function, batch=3, length=4, input_dim=3, n=4, classes=5):
    """Random float64 inputs of RNNBPTT or LSTMBPTT that require grad: x (batch, T, input_dim), then the parameters."""
    gen = torch.Generator().manual_seed(3)
    cell = [(n, input_dim), (n, n), (n,)] * (1 if function is RNNBPTT else 4)  # W_*x, W_*h, b_* of each gate
    shapes = [(batch, length, input_dim), *cell, (classes, n), (classes,)]  # x, ..., W_ph, b_p
    return [(torch.randn(*shape, generator=gen, dtype=torch.float64) * 0.7).requires_grad_() for shape in shapes]


@pytest.mark.parametrize("function", [RNNBPTT, LSTMBPTT])
def test_textbook_bptt_passes_gradcheck_in_the_inputs_and_every_parameter(function):
    inputs = reference_inputs(function)
    assert len(inputs) == 1 + (5 if function is RNNBPTT else len(LSTM_PARAMETERS))
    assert function.apply(*inputs).shape == (3, 5)
    assert torch.autograd.gradcheck(function.apply, tuple(inputs))
    assert torch.autograd.gradcheck(function.apply, tuple(reference_inputs(function, length=1)))
