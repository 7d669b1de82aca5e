"""The gate arithmetic of one time step of bptt.py as one C++ loop (a "fused" kernel).

With PyTorch operations, one LSTM step's elementwise work (Eq. 4-9 after the matrix product) is
about a dozen kernels, each a pass over a (num_hidden, batch) block with its own call overhead; at
batch 128 and hidden 128 that overhead is most of their cost. The kernels here do the work of a
step, forward or backward, in one pass over the block: the same formulas as bptt.py's loops, with
tanh(a) = 1 - 2 sigmoid(-2a) and the rows of g scaled by -2 as there. The LSTM's kernels also write
what the next step's matrix product reads, h^(t) forward and dL/d(pre-activations) backward,
transposed to (batch, features): the layout in which oneDNN reads that operand as it lies, where
PyTorch would copy it at every step. The LSTM's time loops run here too (bptt.py has the same loops in
PyTorch operations), each step's matrix product called from C++: the same loops calling the kernels from
Python made a training step 2-12% slower (T = 10-50, batch 128, hidden 128, side by side on AMD EPYC).

They are compiled on first use with torch.utils.cpp_extension.load_inline (a C++ compiler is needed
at run time, not at install) and cached in torch's extension directory
(TORCH_EXTENSIONS_DIR, by default ~/.cache/torch_extensions): the first run pays 20-40 s on a
2-core Xeon, and says so on stderr; later runs load the cached library in a fraction of a second. The library is built for this CPU
(-march=native), so its name carries a hash of the CPU's flags as well as of the source.

Which path bptt.py takes: the environment variable PART1_KERNEL=fused (the default) or unfused,
or `use("fused" | "unfused")` from Python. Where the kernel cannot be built, bptt.py says so in one
line on stderr and runs the PyTorch operations (the unfused path). CUDA tensors always take the
unfused path.
"""
import hashlib
import os
import platform
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from part1 import common

CHOICES = ("fused", "unfused")

SOURCE = r"""
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <algorithm>
#include <cmath>

// sigma(a) = 1 / (1 + e^-a); under -ffast-math GCC vectorises std::exp through glibc's libmvec, and may
// divide by a reciprocal estimate refined by Newton's method, which turns 1 / inf into nan: e^-a is
// therefore kept finite (sigma(-80) = 1.8e-35, within 1e-34 of sigma at any a below).
template <typename T> static inline T sigmoid(T a) { return T(1) / (T(1) + std::exp(std::min(-a, T(80)))); }

// A 2-D block whose rows are contiguous (a step's view of bptt.py's buffers: its rows are strided).
template <typename T> struct Rows {
  T* data;
  int64_t stride;
  explicit Rows(const torch::Tensor& x) : data(x.data_ptr<T>()), stride(x.stride(0)) {
    TORCH_CHECK(x.dim() == 2 && (x.stride(1) == 1 || x.size(1) == 1), "fused kernels need blocks with contiguous rows");
  }
  T* operator[](int64_t r) const { return data + r * stride; }
};

// body(r) for every row r < rows, split across torch's threads in chunks of at least 4K elements:
// PyTorch's own elementwise operations split only above 32K, leaving a 128 x 128 block to one core.
// A chunk goes in tiles of 16 rows; after(r0, r1) runs on each tile once its rows are done, while they are in cache.
template <typename F, typename G> static void for_rows(int64_t rows, int64_t cols, const F& body, const G& after) {
  at::parallel_for(0, rows, std::max<int64_t>(1, 4096 / std::max<int64_t>(cols, 1)), [&](int64_t begin, int64_t end) {
    for (int64_t r0 = begin; r0 < end; r0 += 16) {
      const int64_t r1 = std::min(r0 + 16, end);
      for (int64_t r = r0; r < r1; ++r) body(r);
      after(r0, r1);
    }
  });
}
template <typename F> static void for_rows(int64_t rows, int64_t cols, const F& body) {
  for_rows(rows, cols, body, [](int64_t, int64_t) {});
}

// Eq. 4-9 at one step. pre: the pre-activations [g; i; f; o] (4n, batch), the rows of g scaled by -2; written:
// the gates z (4n, batch), c = c^(t), u = sigma(-2 c^(t)), and h^(t) twice: as h (n, batch) and transposed as
// h_T (batch, n), the layout that the next step's product reads.
template <typename T> static void lstm_forward(const torch::Tensor& pre_, const torch::Tensor& z_,
    const torch::Tensor& c_prev_, const torch::Tensor& c_, const torch::Tensor& u_,
    const torch::Tensor& h_, const torch::Tensor& h_T_) {
  Rows<T> pre(pre_), z(z_), c_prev(c_prev_), c(c_), u(u_), h(h_), h_T(h_T_);
  const int64_t n = c_.size(0), batch = c_.size(1), h_T_stride = h_T.stride;
  for_rows(n, batch, [&](int64_t j) {
    T *pg = pre[j], *pi = pre[n + j], *pf = pre[2 * n + j], *po = pre[3 * n + j];
    T *g = z[j], *i = z[n + j], *f = z[2 * n + j], *o = z[3 * n + j];
    T *cp = c_prev[j], *cj = c[j], *uj = u[j], *hj = h[j], *h_Tj = h_T.data + j;
#pragma omp simd
    for (int64_t b = 0; b < batch; ++b) {
      g[b] = 1 - 2 * sigmoid(pg[b]);  // Eq. 4: tanh(a) = 1 - 2 sigma(-2a)
      i[b] = sigmoid(pi[b]);  // Eq. 5
      f[b] = sigmoid(pf[b]);  // Eq. 6
      o[b] = sigmoid(po[b]);  // Eq. 7
      cj[b] = g[b] * i[b] + cp[b] * f[b];  // Eq. 8
      uj[b] = sigmoid(-2 * cj[b]);
      hj[b] = o[b] - 2 * uj[b] * o[b];  // Eq. 9: tanh(c) = 1 - 2u
      h_Tj[b * h_T_stride] = hj[b];
    }
  });
}

// One step of BPTT back through Eq. 9-4: from dh = dL/dh^(t) and dc = dL/dc^(t) carried from step t+1,
// d_pre (4, n, batch) = dL/d(pre-activations of g, i, f, o), also written transposed as d_pre_T (batch, 4n),
// the layout of the next product; dc becomes dL/dc^(t-1).
template <typename T> static void lstm_backward(const torch::Tensor& dh_, const torch::Tensor& gates_,
    const torch::Tensor& c_prev_, const torch::Tensor& u_, const torch::Tensor& dc_, const torch::Tensor& d_pre_,
    const torch::Tensor& d_pre_T_) {
  Rows<T> dh(dh_), gates(gates_), c_prev(c_prev_), u(u_), dc(dc_), d_pre_T(d_pre_T_);
  TORCH_CHECK(d_pre_.dim() == 3 && (d_pre_.stride(2) == 1 || d_pre_.size(2) == 1), "d_pre: (4, n, batch), contiguous rows");
  T* d_pre = d_pre_.data_ptr<T>();
  const int64_t n = dc_.size(0), batch = dc_.size(1), gate_stride = d_pre_.stride(0), row_stride = d_pre_.stride(1);
  const int64_t T_stride = d_pre_T.stride;
  for_rows(n, batch, [&](int64_t j) {
    T *g = gates[j], *i = gates[n + j], *f = gates[2 * n + j], *o = gates[3 * n + j];
    T *dhj = dh[j], *cp = c_prev[j], *uj = u[j], *dcj = dc[j], *d_g = d_pre + j * row_stride;
    T *d_i = d_g + gate_stride, *d_f = d_i + gate_stride, *d_o = d_f + gate_stride;
#pragma omp simd
    for (int64_t b = 0; b < batch; ++b) {
      T tanh_c = 1 - 2 * uj[b];
      d_o[b] = dhj[b] * tanh_c * o[b] * (1 - o[b]);  // Eq. 9 back to o (sigma' = sigma (1 - sigma))
      T d_c = dcj[b] + dhj[b] * o[b] * (1 - tanh_c * tanh_c);  // Eq. 9 back to c^(t) (tanh' = 1 - tanh^2)
      d_g[b] = d_c * i[b] * (1 - g[b] * g[b]);  // Eq. 8 back to g
      d_i[b] = d_c * g[b] * i[b] * (1 - i[b]);  // Eq. 8 back to i
      d_f[b] = d_c * cp[b] * f[b] * (1 - f[b]);  // Eq. 8 back to f
      dcj[b] = d_c * f[b];  // dL/dc^(t-1), through c^(t) = ... + c^(t-1) * f
    }
  }, [&](int64_t j0, int64_t j1) {  // the rows j0..j1 just written, transposed into d_pre_T
    for (int64_t k = 0; k < 4; ++k)
      for (int64_t b = 0; b < batch; ++b) {
        const T* from = d_pre + k * gate_stride + b;
        T* to = d_pre_T[b] + k * n;
        for (int64_t j = j0; j < j1; ++j) to[j] = from[j * row_stride];
      }
  });
}

// Eq. 1 after the matrix product: h = tanh(a) = 1 - 2 sigma(-2a).
template <typename T> static void rnn_forward(const torch::Tensor& a_, const torch::Tensor& h_) {
  Rows<T> a(a_), h(h_);
  const int64_t batch = a_.size(1);
  for_rows(a_.size(0), batch, [&](int64_t j) {
    T *aj = a[j], *hj = h[j];
#pragma omp simd
    for (int64_t b = 0; b < batch; ++b) hj[b] = 1 - 2 * sigmoid(-2 * aj[b]);
  });
}

// Eq. 1 backward: da = dL/da^(t) = dL/dh^(t) * tanh'(a^(t)) = dh * (1 - h^2).
template <typename T> static void rnn_backward(const torch::Tensor& dh_, const torch::Tensor& h_, const torch::Tensor& da_) {
  Rows<T> dh(dh_), h(h_), da(da_);
  const int64_t batch = h_.size(1);
  for_rows(h_.size(0), batch, [&](int64_t j) {
    T *dhj = dh[j], *hj = h[j], *daj = da[j];
#pragma omp simd
    for (int64_t b = 0; b < batch; ++b) daj[b] = dhj[b] * (1 - hj[b] * hj[b]);
  });
}

// a^T as a new contiguous tensor, a 2-D block with contiguous rows, copied in tiles of 16 x 16 that stay in
// cache: PyTorch copies a transposed view of a (512, 128) block at about a seventh of its speed on a plain one.
torch::Tensor transposed(torch::Tensor a) {
  TORCH_CHECK(a.dim() == 2 && (a.stride(1) == 1 || a.size(1) == 1), "transposed needs a block with contiguous rows");
  auto out = at::empty({a.size(1), a.size(0)}, a.options());
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "transposed", [&] {
    const Rows<scalar_t> from(a);
    scalar_t* to = out.data_ptr<scalar_t>();
    const int64_t rows = a.size(0), cols = a.size(1);
    for_rows(rows, cols, [](int64_t) {}, [&](int64_t r0, int64_t r1) {  // rows r0..r1, 16 columns at a time
      scalar_t tile[16][16];
      for (int64_t c0 = 0; c0 < cols; c0 += 16) {
        const int64_t nc = std::min<int64_t>(16, cols - c0);
        if (r1 - r0 == 16 && nc == 16) {  // a whole tile: fixed bounds, which GCC vectorises
          for (int r = 0; r < 16; ++r)
            for (int c = 0; c < 16; ++c) tile[c][r] = from[r0 + r][c0 + c];
          for (int c = 0; c < 16; ++c)
            for (int r = 0; r < 16; ++r) to[(c0 + c) * rows + r0 + r] = tile[c][r];
        } else {
          for (int64_t c = c0; c < c0 + nc; ++c)
            for (int64_t r = r0; r < r1; ++r) to[c * rows + r] = from[r][c];
        }
      }
    });
  });
  return out;
}

// a @ b_rows^T: through PyTorch's oneDNN linear op where `onednn` (bptt.uses_onednn decides), else torch.mm.
static torch::Tensor product(const torch::Tensor& a, const torch::Tensor& b_rows, bool onednn) {
  if (!onednn) return at::mm(a, b_rows.t());
  using Linear = at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&, c10::string_view,
                            c10::List<std::optional<c10::Scalar>>, std::optional<c10::string_view>);
  static const auto linear =
      c10::Dispatcher::singleton().findSchemaOrThrow("mkldnn::_linear_pointwise", "").typed<Linear>();
  return linear.call(a, b_rows, std::nullopt, "none", c10::List<std::optional<c10::Scalar>>(), "");
}

// bptt.lstm_forward_loop: at each step the product [W_x, W_h, b] [x^(t); h^(t-1); 1], then Eq. 4-9 in one pass.
// Called once per forward pass, so that the Python around each step's product and kernel is gone.
void lstm_forward_loop(torch::Tensor W, torch::Tensor x, torch::Tensor inputs_T, torch::Tensor gates, torch::Tensor C,
                       torch::Tensor U, torch::Tensor inputs, torch::Tensor h_last, bool onednn) {
  const int64_t T = gates.size(0), input_dim = x.size(2), K = W.size(1);
  const auto H = inputs.slice(0, input_dim, K - 1), H_T = inputs_T.slice(2, input_dim, K - 1);  // h^(t) both ways
  for (int64_t t = 0; t < T; ++t) {
    // h^(0) = 0: the first product takes the x and 1 columns only
    const auto pre = t == 0 ? at::addmm(W.slice(1, K - 1), W.slice(1, 0, input_dim), x[0].t())
                            : product(W, inputs_T[t], onednn);
    const auto h = t + 1 < T ? H.select(1, t + 1) : h_last;
    AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "lstm_forward_loop",
                               [&] { lstm_forward<scalar_t>(pre, gates[t], C[t], C[t + 1], U[t], h, H_T[t + 1]); });
  }
}

// bptt.lstm_backward_loop: from step T down to 1, dL/dh^(t) = dH^(t) + W_h^T dL/d(pre-activations of step t+1)
// (dH^(t) only at the last step, or only there when last_only), then back through Eq. 9-4 in one pass.
void lstm_backward_loop(torch::Tensor dH, bool last_only, torch::Tensor W_h_T, torch::Tensor gates, torch::Tensor C,
                        torch::Tensor U, torch::Tensor dc, torch::Tensor d_pre, torch::Tensor d_pre_T, bool onednn) {
  const int64_t T = gates.size(0);
  for (int64_t t = T - 1; t >= 0; --t) {
    auto dh = t == T - 1 ? (last_only ? dH : dH.select(1, t)) : product(W_h_T, d_pre_T, onednn);
    if (t < T - 1 && !last_only) dh.add_(dH.select(1, t));
    if (!dh.is_contiguous()) dh = dh.t().stride(1) == 1 ? transposed(dh.t()) : dh.contiguous();  // dH: a transposed view
    AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "lstm_backward_loop",
                               [&] { lstm_backward<scalar_t>(dh, gates[t], C[t], U[t], dc, d_pre.select(2, t), d_pre_T); });
  }
}

void rnn_forward_step(torch::Tensor a, torch::Tensor h) {
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "rnn_forward_step", [&] { rnn_forward<scalar_t>(a, h); });
}

void rnn_backward_step(torch::Tensor dh, torch::Tensor h, torch::Tensor da) {
  AT_DISPATCH_FLOATING_TYPES(dh.scalar_type(), "rnn_backward_step", [&] { rnn_backward<scalar_t>(dh, h, da); });
}
"""

FUNCTIONS = ["transposed", "lstm_forward_loop", "lstm_backward_loop", "rnn_forward_step", "rnn_backward_step"]
# -ffast-math lets GCC call glibc's vector exp (libmvec), which it does not without -ffinite-math-only
# (`sigmoid` keeps e^-a finite). Where the CPU has AVX-512, GCC uses 256-bit vectors unless asked for 512.
FLAGS = ["-O3", "-march=native", *(["-mprefer-vector-width=512"] if platform.machine() in ("x86_64", "AMD64") else []),
         "-ffast-math", "-fopenmp"]

_choice = os.environ.get("PART1_KERNEL", "fused")
_module = None  # the compiled kernels once loaded; False once loading failed
load_seconds = None  # how long loading took (compiling, or reading the cache)


def use(choice):
    """Choose the path of bptt.py from now on: "fused" (where it can be built) or "unfused"."""
    global _choice
    if choice not in CHOICES:
        raise ValueError(f"kernel must be one of {', '.join(CHOICES)}, got '{choice}'")
    _choice = choice


def cpu_flags():
    """The CPU's feature flags as /proc/cpuinfo lists them ('' where there is no such file)."""
    try:
        return next((line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), "")
    except OSError:
        return ""


def say(message):
    """One line on stderr, above a progress bar if one is showing."""
    tqdm.write(f"part1: {message}", file=sys.stderr)


def cached(name):
    """Whether torch's extension directory holds the library `name` already, so that loading it takes a
    fraction of a second rather than a compilation."""
    from torch.utils import cpp_extension

    try:
        folder = Path(cpp_extension._get_build_directory(name, verbose=False))  # a private helper of torch's
    except Exception:  # where it has changed, assume cached: nothing is said before loading
        return True
    return any((folder / f"{name}{suffix}").exists() for suffix in (".so", ".pyd"))


def load():
    """Compile (or load from the cache) and return the kernels, saying so on stderr when compiling; None,
    with one line on stderr, where that fails."""
    global _module, load_seconds
    if _module is None:
        from torch.utils import cpp_extension  # imported here: it takes a while, and the unfused path does not need it

        try:  # the ninja that requirements.txt installs, also where its virtual environment is not activated
            import ninja
            os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + os.environ.get("PATH", "")
        except ImportError:
            pass  # a ninja on PATH, if any
        key = hashlib.sha256("\n".join([SOURCE, *FLAGS, cpu_flags(), torch.__version__]).encode()).hexdigest()[:12]
        name = f"part1_fused_{key}"
        compiling = not cached(name)
        if compiling:
            say("compiling the fused kernels for this CPU, once (about 30 s; torch's extension directory keeps them)")
        start = time.perf_counter()
        try:
            _module = cpp_extension.load_inline(name, SOURCE, functions=FUNCTIONS, extra_cflags=FLAGS,
                                                extra_ldflags=["-fopenmp"])
        except Exception as e:  # no compiler, a failed build, a library that does not load: all the same to us
            say(f"fused kernels unavailable ({common.first_line(e)[:200]}); using PyTorch operations")
            _module = False
        load_seconds = time.perf_counter() - start
        if compiling and _module:
            say(f"fused kernels compiled in {load_seconds:.0f} s")
    return _module or None


def kernels_for(like):
    """The fused kernels for tensors like `like` (CPU, float32 or float64) when chosen, else None."""
    if _choice not in CHOICES:
        raise ValueError(f"PART1_KERNEL must be one of {', '.join(CHOICES)}, got '{_choice}'")
    if _choice != "fused" or like.device.type != "cpu" or like.dtype not in (torch.float32, torch.float64):
        return None
    return load()
