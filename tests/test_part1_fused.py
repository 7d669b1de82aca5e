"""The fused gate kernels (part1/fast/fused.py) against the PyTorch operations they replace, autograd
and torch.nn; the fall-back where they cannot be built; the benchmark that times them."""
import shutil
from pathlib import Path

import pytest
import torch

from part1 import common
from part1.fast import bptt, fused
from part1.fast.bptt import LSTMRecurrence, RNNRecurrence
from tests import test_part1_bptt, test_part1_models
from tests.scripts import run_python, run_script
from tests.test_part1_models import CASES, lstm_pair, rnn_pair

KERNELS = pytest.mark.parametrize("kernel", fused.CHOICES)


@pytest.fixture(autouse=True)
def restore_choice():
    choice = fused._choice
    yield
    fused.use(choice)


@pytest.mark.skipif(shutil.which("c++") is None, reason="no C++ compiler: the unfused path runs")
def test_the_kernels_build_where_there_is_a_compiler():
    """The default path is the fused one: a machine with a compiler must build it, not fall back."""
    assert fused.load() is not None


@KERNELS
@pytest.mark.parametrize("length,batch", CASES)
@pytest.mark.parametrize("make_pair", [rnn_pair, lstm_pair], ids=["rnn", "lstm"])
def test_each_kernel_gives_pytorchs_output_and_every_gradient(kernel, make_pair, length, batch):
    fused.use(kernel)
    test_part1_models.test_output_and_every_gradient_equal_pytorch(make_pair, "fast", 10, length, batch)


@KERNELS
@pytest.mark.parametrize("recurrence,gates", [(RNNRecurrence, 1), (LSTMRecurrence, 4)])
def test_each_kernel_passes_gradcheck(kernel, recurrence, gates):
    fused.use(kernel)
    test_part1_models.test_hand_written_bptt_passes_gradcheck_with_a_loss_on_every_hidden_state(recurrence, gates)
    test_part1_bptt.test_last_state_only_passes_gradcheck_and_equals_the_last_of_all_states(recurrence, gates)


def outputs_and_grads(recurrence, gates, dtype, last_only, kernel, scale=0.7, seed=0, hidden=12, batch=16):
    """h of the recurrence on random inputs and the gradients of a random linear loss on it."""
    fused.use(kernel)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(9, batch, 10, generator=gen, dtype=dtype)
    weights = [(torch.randn(*shape, generator=gen, dtype=dtype) * scale).requires_grad_()
               for shape in [(hidden * gates, 10), (hidden * gates, hidden), (hidden * gates,)]]
    h = recurrence.apply(x, *weights, last_only)
    (h * torch.randn(h.shape, generator=gen, dtype=dtype)).sum().backward()
    return [h.detach(), *(w.grad for w in weights)]


@pytest.mark.parametrize("last_only", [False, True])
@pytest.mark.parametrize("recurrence,gates", [(RNNRecurrence, 1), (LSTMRecurrence, 4)])
def test_fused_equals_unfused_in_float64_and_to_rounding_in_float32(recurrence, gates, last_only):
    for dtype, tolerance in [(torch.float64, 1e-12), (torch.float32, 1e-5)]:
        ours = outputs_and_grads(recurrence, gates, dtype, last_only, "fused")
        theirs = outputs_and_grads(recurrence, gates, dtype, last_only, "unfused")
        for a, b in zip(ours, theirs, strict=True):
            assert a.dtype == dtype and (a - b).abs().max() < tolerance * (1 + b.abs().max())


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("hidden,batch", [(37, 5), (130, 33)])
def test_fused_lstm_equals_unfused_across_tiles_and_threads(hidden, batch, threads):
    """The LSTM kernels write h^(t) and dL/d(pre-activations) also transposed, in tiles of 16 rows of
    each thread's share: sizes with partial tiles, and rows split between two threads (batch 33: 124 rows
    a thread at least, of 130), must give the unfused path's outputs and gradients."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for last_only in (False, True):
            ours = outputs_and_grads(LSTMRecurrence, 4, torch.float64, last_only, "fused", hidden=hidden, batch=batch)
            theirs = outputs_and_grads(LSTMRecurrence, 4, torch.float64, last_only, "unfused", hidden=hidden, batch=batch)
            for a, b in zip(ours, theirs, strict=True):
                assert (a - b).abs().max() < 1e-12 * (1 + b.abs().max())
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("threads", [1, 2])
def test_the_tiled_transpose_equals_the_transposed_view(threads):
    """fused.transposed copies in tiles of 16 x 16, split across threads by tiles of rows: sizes with partial
    tiles at both edges, single rows and columns, and a view whose rows lie apart (as bptt.py's blocks do)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for big in (torch.randn(150, 530, dtype=torch.float64), torch.randn(150, 530)):
            for a in [big[:1, :1], big[:1, :37], big[:37, :1], big[:16, :16], big[:33, :17], big[:139, :512], big[3:142, 5:133]]:
                out = fused.load().transposed(a)
                assert out.is_contiguous() and torch.equal(out, a.T)
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("recurrence,gates", [(RNNRecurrence, 1), (LSTMRecurrence, 4)])
def test_saturated_gates_stay_finite_and_equal(recurrence, gates):
    """Pre-activations in the hundreds (weights 60x): e^-a overflows inside sigma, which must still give 0 and 1.
    (In float32 the gradients of saturated gates are rounding noise, sigma' = sigma (1 - sigma) with
    1 - sigma near its last bit, so only the outputs are compared there.)"""
    for dtype, compared, tolerance in [(torch.float64, 4, 1e-9), (torch.float32, 1, 1e-4)]:
        ours = outputs_and_grads(recurrence, gates, dtype, False, "fused", scale=60.0)
        theirs = outputs_and_grads(recurrence, gates, dtype, False, "unfused", scale=60.0)
        assert all(torch.isfinite(a).all() for a in ours)
        for a, b in zip(ours[:compared], theirs[:compared], strict=True):
            assert (a - b).abs().max() < tolerance * (1 + b.abs().max())


def test_the_unfused_choice_runs_no_kernel_and_bad_choices_are_refused(monkeypatch):
    x = torch.zeros(2, 3)
    fused.use("unfused")
    assert fused.kernels_for(x) is None
    fused.use("fused")
    assert fused.kernels_for(x) is fused.load()
    assert fused.kernels_for(x.to(torch.bfloat16)) is None  # the kernels are float32 and float64 only
    with pytest.raises(ValueError, match="fused, unfused"):
        fused.use("fast")
    monkeypatch.setattr(fused, "_choice", "fast")  # as from PART1_KERNEL=fast
    with pytest.raises(ValueError, match="PART1_KERNEL"):
        fused.kernels_for(x)


@pytest.mark.new_python
def test_the_environment_variable_chooses_the_path():
    code = ("import os; os.environ['PART1_KERNEL'] = '{}'; import torch; from part1.fast import fused; "
            "print(fused.kernels_for(torch.zeros(1)) is None)")
    assert run_python("-c", code.format("fused"), timeout=300).stdout.split() == ["False"]
    result = run_python("-c", code.format("unfused"))
    assert result.stdout.split() == ["True"] and result.stderr == ""


def test_a_failed_build_falls_back_to_pytorch_operations_with_one_line(monkeypatch, capsys):
    from torch.utils import cpp_extension

    def no_compiler(*args, **kwargs):
        raise RuntimeError("Error building extension: g++: command not found\nmore detail")

    expected = outputs_and_grads(LSTMRecurrence, 4, torch.float64, True, "unfused")
    monkeypatch.setattr(cpp_extension, "load_inline", no_compiler)
    monkeypatch.setattr(fused, "_module", None)
    monkeypatch.setattr(fused, "cached", lambda name: True)  # a library in the cache that does not load
    got = outputs_and_grads(LSTMRecurrence, 4, torch.float64, True, "fused")
    outputs_and_grads(LSTMRecurrence, 4, torch.float64, True, "fused")  # says it once
    for a, b in zip(got, expected, strict=True):
        assert torch.equal(a, b)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "g++: command not found" in err and "using PyTorch operations" in err


def test_compiling_is_announced_and_its_time_reported(monkeypatch, capsys):
    from torch.utils import cpp_extension

    library = object()
    monkeypatch.setattr(cpp_extension, "load_inline", lambda *args, **kwargs: library)
    monkeypatch.setattr(fused, "_module", None)
    monkeypatch.setattr(fused, "cached", lambda name: False)
    assert fused.load() is library and fused.load() is library  # compiled once
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and "compiling the fused kernels" in lines[0] and "compiled in" in lines[1]
    monkeypatch.setattr(fused, "_module", None)
    monkeypatch.setattr(fused, "cached", lambda name: True)
    assert fused.load() is library and capsys.readouterr().err == ""  # loaded from the cache: nothing said


@pytest.mark.skipif(shutil.which("c++") is None, reason="no C++ compiler: the unfused path runs")
def test_the_built_library_is_found_in_the_cache():
    library = Path(fused.load().__file__)
    assert fused.cached(library.stem) and not fused.cached("part1_fused_no_such_library")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_tensors_take_the_unfused_path():
    assert fused.kernels_for(torch.zeros(1, device="cuda")) is None


def test_the_tanh_of_the_unfused_path_is_the_one_the_kernels_compute():
    """Both paths write tanh(a) = 1 - 2 sigma(-2a); the RNN's forward kernel against bptt.tanh."""
    a = torch.linspace(-30, 30, 4001, dtype=torch.float64).view(1, -1)
    h = torch.empty_like(a)
    fused.load().rnn_forward_step(a, h)
    assert (h - bptt.tanh(a, out=torch.empty_like(a))).abs().max() < 1e-15


def test_cpu_description_names_the_cpu_and_its_vector_extension():
    text = common.cpu_description()
    assert text.startswith(common.cpu_name())
    assert any(name in text for name in ("AVX-512", "AVX2", "AVX", "SSE2", "NEON", "unknown"))


def test_benchmark_writes_both_paths_and_the_floor(tmp_path):
    out = tmp_path / "benchmark.md"
    result = run_script("part1/experiments/benchmark.py", "--lengths", "3", "--batch_size", "4", "--num_hidden", "6",
                        "--rounds", "1", "--num_threads", "1", "--note", "A test.", "--output", out)
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert common.cpu_description() in text and "A test." in text and "kernels ready in" in text
    main = [line for line in text.splitlines() if line.startswith(("| RNN | 3 |", "| LSTM | 3 |"))]
    assert [len(line.split("|")) for line in main] == [9, 9, 11, 11]  # the main table, then fused, unfused, floor
    times = [float(cell) for cell in main[3].split("|")[3:6]]  # LSTM: fused, unfused, floor (ms/step)
    assert all(t > 0 for t in times) and times[2] < min(times[:2])


@pytest.mark.skipif(bptt._onednn_linear is None, reason="this PyTorch has no oneDNN linear op: torch.mm runs")
def test_float32_products_through_onednn_equal_torch_mm_to_rounding(monkeypatch):
    a, b = torch.randn(512, 139), torch.randn(150, 140)[3:142, 5:133]  # b a strided view, as bptt.py's
    assert (bptt.matmul(a, b) - a @ b).abs().max() < 1e-5 * (a.abs() @ b.abs()).max()
    for last_only in (False, True):
        ours = outputs_and_grads(LSTMRecurrence, 4, torch.float32, last_only, "fused")
        monkeypatch.setattr(bptt, "_onednn_linear", None)  # every product by torch.mm
        theirs = outputs_and_grads(LSTMRecurrence, 4, torch.float32, last_only, "fused")
        monkeypatch.undo()
        for x, y in zip(ours, theirs, strict=True):
            assert (x - y).abs().max() < 1e-5 * (1 + y.abs().max())


def test_float64_products_are_torch_mm(monkeypatch):
    def fail(*args):
        raise AssertionError("oneDNN called in float64")
    monkeypatch.setattr(bptt, "_onednn_linear", fail)
    a, b = torch.randn(8, 5, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    assert torch.equal(bptt.matmul(a, b), a @ b)
