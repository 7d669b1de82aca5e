"""The hand-written BPTT functions when only h^(T) is returned (the path the models take)."""
import pytest
import torch

from part1.bptt import LSTMRecurrence, RNNRecurrence, tanh


@pytest.mark.parametrize("recurrence,gates", [(RNNRecurrence, 1), (LSTMRecurrence, 4)])
def test_last_state_only_passes_gradcheck_and_equals_the_last_of_all_states(recurrence, gates):
    gen = torch.Generator().manual_seed(1)

    def randn(*shape):
        return (torch.randn(*shape, generator=gen, dtype=torch.float64) * 0.7).requires_grad_()

    x = torch.randn(5, 3, 4, generator=gen, dtype=torch.float64)
    weights = (randn(4 * gates, 4), randn(4 * gates, 4), randn(4 * gates))
    assert torch.equal(recurrence.apply(x, *weights, True), recurrence.apply(x, *weights)[-1])
    assert torch.autograd.gradcheck(lambda *w: recurrence.apply(x, *w, True), weights)


def test_tanh_through_the_sigmoid_equals_torch_tanh():
    a = torch.linspace(-30, 30, 10001, dtype=torch.float64)
    assert (tanh(a, out=torch.empty_like(a)) - torch.tanh(a)).abs().max() < 1e-15
    b = a.float()
    assert (tanh(b, out=b.clone()) - torch.tanh(b)).abs().max() < 1e-6
