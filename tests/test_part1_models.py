"""The hand-written RNN and LSTM against PyTorch's own modules, gradients included."""
import ast
import math
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from part1.bptt import PATHS
from part1.dataset import encode_digits
from part1.fast.bptt import LSTMRecurrence, RNNRecurrence
from part1.lstm import LSTM
from part1.vanilla_rnn import VanillaRNN

ROOT = Path(__file__).resolve().parent.parent
CASES = [(1, 1), (3, 4), (7, 9), (25, 16)]  # (input length, batch size)
SEQ_LENGTH = 25  # the models' seq_length: the longest input they read


def digits(batch, length, seed=0):
    return torch.randint(0, 10, (batch, length), generator=torch.Generator().manual_seed(seed))


def rnn_pair(input_dim, num_hidden=12, seed=0, path="fast"):
    torch.manual_seed(seed)
    ours = VanillaRNN(SEQ_LENGTH, input_dim, num_hidden, 10, path=path).double()
    ref = nn.RNN(input_dim, num_hidden, batch_first=True).double()
    with torch.no_grad():
        ref.weight_ih_l0.copy_(ours.W_hx)
        ref.weight_hh_l0.copy_(ours.W_hh)
        # Random biases, so that a wrongly placed bias cannot hide behind a zero initialisation.
        ours.b_h.normal_()
        ours.b_p.normal_()
        ref.bias_ih_l0.copy_(ours.b_h)
        ref.bias_hh_l0.zero_()
    return ours, ref


def lstm_pair(input_dim, num_hidden=12, seed=0, path="fast"):
    torch.manual_seed(seed)
    ours = LSTM(SEQ_LENGTH, input_dim, num_hidden, 10, path=path).double()
    ref = nn.LSTM(input_dim, num_hidden, batch_first=True).double()
    with torch.no_grad():
        for gate in "gifo":
            getattr(ours, f"b_{gate}").normal_()
        ours.b_p.normal_()
        # torch stacks the gates as i, f, g, o and adds two biases.
        ref.weight_ih_l0.copy_(torch.cat([ours.W_ix, ours.W_fx, ours.W_gx, ours.W_ox]))
        ref.weight_hh_l0.copy_(torch.cat([ours.W_ih, ours.W_fh, ours.W_gh, ours.W_oh]))
        ref.bias_ih_l0.copy_(torch.cat([ours.b_i, ours.b_f, ours.b_g, ours.b_o]))
        ref.bias_hh_l0.zero_()
    return ours, ref


def reference_logits(ours, ref, x):
    out, _ = ref(encode_digits(x, ours.input_dim, torch.float64))
    return out[:, -1] @ ours.W_ph.T + ours.b_p  # linear read-out, Eq. 2 / Eq. 10


def reference_grads(ours, ref, loss):
    """Gradients of the reference module, mapped onto our parameter names."""
    wx, wh, bx = torch.autograd.grad(loss, [ref.weight_ih_l0, ref.weight_hh_l0, ref.bias_ih_l0], retain_graph=True)
    if isinstance(ref, nn.RNN):
        return {"W_hx": wx, "W_hh": wh, "b_h": bx}
    n = ours.num_hidden
    grads = {}
    for k, gate in enumerate("ifgo"):
        rows = slice(k * n, (k + 1) * n)
        grads.update({f"W_{gate}x": wx[rows], f"W_{gate}h": wh[rows], f"b_{gate}": bx[rows]})
    return grads


@pytest.mark.parametrize("length,batch", CASES)
@pytest.mark.parametrize("input_dim", [1, 10])
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("make_pair", [rnn_pair, lstm_pair], ids=["rnn", "lstm"])
def test_output_and_every_gradient_equal_pytorch(make_pair, path, input_dim, length, batch):
    ours, ref = make_pair(input_dim, path=path)
    x = digits(batch, length)
    y = digits(batch, 1, seed=1)[:, 0]
    logits = ours(x)
    ref_logits = reference_logits(ours, ref, x)
    assert logits.shape == (batch, 10)
    assert (logits - ref_logits).abs().max() < 1e-9

    loss = nn.functional.cross_entropy(logits, y)
    ref_loss = nn.functional.cross_entropy(ref_logits, y)
    ours.zero_grad()
    loss.backward(retain_graph=True)
    expected = reference_grads(ours, ref, ref_loss)
    assert len(expected) + 2 == len(list(ours.parameters()))
    for name, grad in expected.items():
        assert (getattr(ours, name).grad - grad).abs().max() < 1e-9, name
    read_out = torch.autograd.grad(ref_loss, [ours.W_ph, ours.b_p])
    assert (ours.W_ph.grad - read_out[0]).abs().max() < 1e-9
    assert (ours.b_p.grad - read_out[1]).abs().max() < 1e-9


@pytest.mark.parametrize("recurrence,gates", [(RNNRecurrence, 1), (LSTMRecurrence, 4)])
def test_hand_written_bptt_passes_gradcheck_with_a_loss_on_every_hidden_state(recurrence, gates):
    gen = torch.Generator().manual_seed(0)

    def randn(*shape, scale=0.7):
        return (torch.randn(*shape, generator=gen, dtype=torch.float64) * scale).requires_grad_()

    x = randn(6, 3, 5, scale=1.0)  # the input's gradient too
    assert torch.autograd.gradcheck(recurrence.apply, (x, randn(4 * gates, 5), randn(4 * gates, 4), randn(4 * gates)))


@pytest.mark.parametrize("make_pair", [rnn_pair, lstm_pair], ids=["rnn", "lstm"])
def test_recurrences_return_every_hidden_state_or_only_the_last(make_pair):
    ours, ref = make_pair(10)
    inputs = encode_digits(digits(3, 7), 10, torch.float64)
    expected, _ = ref(inputs)  # h^(1), ..., h^(T): (batch, T, num_hidden)
    if isinstance(ref, nn.RNN):
        recurrence, weights = RNNRecurrence, (ours.W_hx, ours.W_hh, ours.b_h)
    else:  # the gates' weights stacked as [g; i; f; o]
        recurrence = LSTMRecurrence
        weights = [torch.cat([getattr(ours, f"{kind}_{gate}{suffix}") for gate in "gifo"])
                   for kind, suffix in (("W", "x"), ("W", "h"), ("b", ""))]
    every = recurrence.apply(inputs.transpose(0, 1), *weights)  # time first
    assert every.shape == (7, 3, 12)
    assert (every - expected.transpose(0, 1)).abs().max() < 1e-9
    last = recurrence.apply(inputs.transpose(0, 1), *weights, True)
    assert last.shape == (3, 12) and (last - expected[:, -1]).abs().max() < 1e-9


@pytest.mark.parametrize("model_class", [VanillaRNN, LSTM])
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("input_dim", [3, 10])
def test_gradcheck_of_the_parameters_and_of_encoded_inputs(model_class, path, input_dim):
    """input_dim 10: digits, one-hot encoded by the model; input_dim 3: vectors, x's gradient checked too."""
    torch.manual_seed(0)
    model = model_class(4, input_dim, 5, 10, path=path).double()
    x = digits(3, 4) if input_dim == 10 else torch.randn(3, 4, input_dim, dtype=torch.float64, requires_grad=True)
    names = [name for name, _ in model.named_parameters()]

    def logits(x, *values):
        return torch.func.functional_call(model, dict(zip(names, values, strict=True)), (x,))

    assert torch.autograd.gradcheck(logits, (x, *(p.detach().clone().requires_grad_() for p in model.parameters())))


def inputs_as_fed(kind, x, input_dim):
    """The batch of digits x as a student may feed it: the DataLoader's floats or already encoded."""
    if kind == "long digits":
        return x
    if kind == "float digits":  # what the template's DataLoader yields: float32 (batch, T)
        return x.float()
    return encode_digits(x, input_dim, torch.float64).requires_grad_()  # x.unsqueeze(-1) or one-hot


@pytest.mark.parametrize("input_dim", [1, 10])
@pytest.mark.parametrize("kind", ["long digits", "float digits", "vectors"])
@pytest.mark.parametrize("model_class", [VanillaRNN, LSTM])
def test_every_path_takes_every_input_form_with_the_same_output_and_gradients(model_class, kind, input_dim):
    torch.manual_seed(0)
    model = model_class(SEQ_LENGTH, input_dim, 12, 10).double()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith("b_"):
                p.normal_()
    batch = digits(9, 7)
    y = digits(9, 1, seed=1)[:, 0]
    results = {}
    for path in PATHS:
        model.path = path
        x = inputs_as_fed(kind, batch, input_dim)
        model.zero_grad()
        logits = model(x)
        nn.functional.cross_entropy(logits, y).backward()
        results[path] = [logits, x.grad] + [p.grad for p in model.parameters()]
    assert (results["autograd"][0] - model(batch)).abs().max() < 1e-9  # every form is the same batch
    for path in ("fast", "reference"):
        for k, (value, expected) in enumerate(zip(results[path], results["autograd"], strict=True)):
            if expected is None:  # digits: no gradient to x
                assert value is None and kind != "vectors"
            else:
                assert (value - expected).abs().max() < 1e-9, (path, k)
    assert (kind == "vectors") == (results["autograd"][1] is not None)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("model_class", [VanillaRNN, LSTM])
def test_bad_input_shapes_are_one_clear_value_error(model_class, path):
    model = model_class(6, 10, 4, 10, path=path)
    bad = {
        "vectors of size 1, but the model's input_dim is 10": torch.zeros(2, 6, 1),
        "more than the model's seq_length 6": torch.zeros(8, 6, 10).transpose(0, 1),  # time first
        "x has 7 time steps": digits(2, 7),
        "no time steps": digits(2, 0),
        r"digits \(batch, seq_length\) or vectors": digits(1, 6)[0],
    }
    for message, x in bad.items():
        for call in (model, model.hidden_states):
            with pytest.raises(ValueError, match=message):
                call(x)
    with pytest.raises(ValueError, match="input_dim must be 1 .* or 10 .* to encode digits, got 3"):
        model_class(6, 3, 4, 10, path=path)(digits(2, 6))
    with pytest.raises(ValueError, match="path must be one of fast, reference, autograd, got 'slow'"):
        model_class(6, 10, 4, 10, path="slow")


@pytest.mark.parametrize("model_class", [VanillaRNN, LSTM])
def test_the_fast_keyword_still_chooses_the_path(model_class):
    assert model_class(5, 10, 4, 10).path == "fast"
    assert model_class(5, 10, 4, 10, fast=False).path == "autograd"
    assert model_class(5, 10, 4, 10, fast=False, path="reference").path == "reference"


def test_parameters_are_named_and_shaped_after_the_equations():
    lstm = LSTM(6, 10, 8, 10)
    expected = {f"{w}_{g}{s}" for g in "gifo" for w, s in (("W", "x"), ("W", "h"))} | {f"b_{g}" for g in "gifo"}
    assert {name for name, _ in lstm.named_parameters()} == expected | {"W_ph", "b_p"}
    assert lstm.W_gx.shape == (8, 10) and lstm.W_gh.shape == (8, 8) and lstm.W_ph.shape == (10, 8)
    rnn = VanillaRNN(6, 1, 8, 10)
    for model, input_dim in ((lstm, 10), (rnn, 1)):  # the course template's attributes
        assert (model.seq_length, model.input_dim, model.num_hidden, model.num_classes) == (6, input_dim, 8, 10)
    shapes = {name: tuple(p.shape) for name, p in rnn.named_parameters()}
    assert shapes == {"W_hx": (8, 1), "W_hh": (8, 8), "b_h": (8,), "W_ph": (10, 8), "b_p": (10,)}


@pytest.mark.parametrize("model_class", [VanillaRNN, LSTM])
def test_initialisation_is_pytorchs_uniform_with_zero_biases(model_class):
    torch.manual_seed(0)
    model = model_class(5, 10, 64, 10)
    bound = 1 / math.sqrt(64)  # what torch.nn.RNN / LSTM draw from: U(-1/sqrt(n), 1/sqrt(n))
    for name, p in model.named_parameters():
        if name.startswith("W_"):
            assert 0.95 * bound < p.abs().max() <= bound and abs(p.mean()) < 0.1 * bound, name
        else:
            assert torch.all(p == 0), name


def test_identity_and_chrono_initialisations():
    rnn = VanillaRNN(5, 10, 8, 10, identity_init=True)
    assert torch.equal(rnn.W_hh.detach(), torch.eye(8))
    torch.manual_seed(0)
    lstm = LSTM(5, 10, 64, 10, chrono=100)
    b_f = lstm.b_f.detach()
    assert torch.equal(lstm.b_i.detach(), -b_f) and torch.all(lstm.b_g == 0) and torch.all(lstm.b_o == 0)
    # b_f = log U(1, T_max - 1): time scales spread over the whole range up to 99 steps.
    assert 0 <= b_f.min() < math.log(20) and math.log(80) < b_f.max() <= math.log(99)
    assert torch.all(LSTM(5, 10, 8, 10, chrono=2).b_f == 0)  # U(1, 1): log 1
    b_f = LSTM(5, 10, 64, 10, chrono=3).b_f.detach()  # U(1, 2): up to log 2, and not all 0
    assert 0 <= b_f.min() and math.log(1.5) < b_f.max() <= math.log(2)


def test_forget_bias_sets_b_f_only():
    model = LSTM(3, 10, 4, 10, forget_bias=2.0)
    assert torch.all(model.b_f == 2.0)
    assert torch.all(model.b_i == 0) and torch.all(model.b_g == 0) and torch.all(model.b_o == 0)


BANNED = {"Linear", "RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell", "RNNBase", "linear", "Bilinear"}


@pytest.mark.parametrize("filename", ["vanilla_rnn.py", "lstm.py"])
def test_model_files_use_no_high_level_building_block(filename):
    tree = ast.parse((ROOT / "part1" / filename).read_text())
    used = set()
    for node in ast.walk(tree):
        # nn.Linear, torch.nn.LSTM, F.linear, ... : an attribute of some module
        if isinstance(node, ast.Attribute) and node.attr in BANNED:
            used.add(node.attr)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("torch"):
            used |= {alias.name for alias in node.names if alias.name in BANNED}
    assert not used, f"{filename} uses {sorted(used)}"
