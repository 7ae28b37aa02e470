// The fused LSTM cell. Forward: one GEMM computes all four gates of every row,
//   gates (N x 4H) = [x | h] (N x (I + H)) @ [W_ih | W_hh]^T ((I + H) x 4H),
// its depth the concatenation of the input's and the hidden state's, read in place by packers
// that switch source at k = I (no concatenated copy of either operand); then one pass per row
// adds both biases, applies the activations and updates the state. Backward: one pass per row
// turns the gradients of h' and c' into those of the pre-activation gates and of c.
#include "rnn/cpu/lstm_cell.h"

#include <algorithm>
#include <cmath>

#include "core/parallel.h"
#include "gemm/gemm.h"

namespace fastconv::rnn::cpu {

namespace {

// The depth range [k0, k0 + kc) of a product whose depth is two operands' stacked (the first
// `split` steps from one, the rest from the other), as the part in each: pack(first, k, kc, at)
// is called for each nonempty part, `at` counting steps from k0.
template <class Pack>
void for_each_depth_part(index_t split, index_t k0, index_t kc, const Pack& pack) {
  const index_t in_first = std::clamp<index_t>(split - k0, 0, kc);
  if (in_first > 0) pack(true, k0, in_first, 0);
  if (in_first < kc) pack(false, std::max<index_t>(k0 - split, 0), kc - in_first, in_first);
}

// [x | h] as the GEMM's A: an A panel is kc steps of mr values, so a part starting `at` steps in
// lands at dst + at * mr.
template <class T>
struct PackStackedColumns {
  gemm::PackMatrixA<T> first, second;
  index_t split;

  void operator()(index_t i0, index_t rows, index_t k0, index_t kc, int mr, T* dst) const {
    for_each_depth_part(split, k0, kc, [&](bool in_first, index_t k, index_t n, index_t at) {
      (in_first ? first : second)(i0, rows, k, n, mr, dst + at * mr);
    });
  }
};

// [W_ih | W_hh]^T as the GEMM's B: a B panel is kc steps of nr values.
template <class T>
struct PackStackedRows {
  gemm::PackMatrixB<T> first, second;
  index_t split;

  void operator()(index_t k0, index_t kc, index_t j0, index_t cols, int nr, T* dst) const {
    for_each_depth_part(split, k0, kc, [&](bool in_first, index_t k, index_t n, index_t at) {
      (in_first ? first : second)(k, n, j0, cols, nr, dst + at * nr);
    });
  }
};

template <class T>
T sigmoid(T v) {
  return T(1) / (T(1) + std::exp(-v));
}

// Rows per thread chunk of the pointwise passes: each row is 4H exponentials and tanhs.
index_t pointwise_grain(const LstmShape& s) { return std::max<index_t>(1, 4096 / std::max<index_t>(1, s.H)); }

template <class T>
void lstm_pointwise_forward(const LstmShape& s, const LstmCellForward<T>& f) {
  const index_t H = s.H;
  parallel_for(0, s.N, pointwise_grain(s), [&](index_t lo, index_t hi) {
    for (index_t n = lo; n < hi; ++n) {
      T* gate = f.gates + n * 4 * H;
      if (f.b_ih)
        for (index_t j = 0; j < 4 * H; ++j) gate[j] += f.b_ih[j];
      if (f.b_hh)
        for (index_t j = 0; j < 4 * H; ++j) gate[j] += f.b_hh[j];
      // i and f, then g (tanh), then o: one activation per loop, so that each vectorises
      for (index_t j = 0; j < 2 * H; ++j) gate[j] = sigmoid(gate[j]);
      for (index_t j = 2 * H; j < 3 * H; ++j) gate[j] = std::tanh(gate[j]);
      for (index_t j = 3 * H; j < 4 * H; ++j) gate[j] = sigmoid(gate[j]);
      const T *i = gate, *fg = gate + H, *g = gate + 2 * H, *o = gate + 3 * H;
      for (index_t j = 0; j < H; ++j) {
        const T c = fg[j] * f.c[n * H + j] + i[j] * g[j];
        f.c_out[n * H + j] = c;
        f.h_out[n * H + j] = o[j] * std::tanh(c);
      }
    }
  });
}

}  // namespace

template <class T>
void lstm_cell_forward(const LstmShape& s, const LstmCellForward<T>& f) {
  const index_t depth = s.I + s.H;
  const PackStackedColumns<T> a{{dense_matrix(f.x, s.N, s.I)}, {dense_matrix(f.h, s.N, s.H)}, s.I};
  const PackStackedRows<T> b{{dense_matrix(f.w_ih, s.gate_width(), s.I).transposed()},
                             {dense_matrix(f.w_hh, s.gate_width(), s.H).transposed()}, s.I};
  gemm::gemm_packed(s.N, s.gate_width(), depth, a, b, dense_matrix(f.gates, s.N, s.gate_width()),
                    gemm::Epilogue<T>{});
  lstm_pointwise_forward(s, f);
}

// With c' = f c + i g and h' = o tanh(c'): dc' (total) = grad_c + grad_h o (1 - tanh^2 c'), and
// each gate's pre-activation gradient is its output's gradient times its activation's slope,
// read from the activated value (sigmoid' = s (1 - s), tanh' = 1 - t^2).
template <class T>
void lstm_cell_backward(const LstmShape& s, const LstmCellBackward<T>& b) {
  const index_t H = s.H;
  parallel_for(0, s.N, pointwise_grain(s), [&](index_t lo, index_t hi) {
    for (index_t n = lo; n < hi; ++n) {
      const T* gate = b.gates + n * 4 * H;
      T* grad = b.grad_gates + n * 4 * H;
      for (index_t j = 0; j < H; ++j) {
        const index_t at = n * H + j;
        const T i = gate[j], f = gate[H + j], g = gate[2 * H + j], o = gate[3 * H + j];
        const T tanh_c = std::tanh(b.c_out[at]);
        const T dc = b.grad_c[at] + b.grad_h[at] * o * (T(1) - tanh_c * tanh_c);
        grad[j] = dc * g * i * (T(1) - i);
        grad[H + j] = dc * b.c[at] * f * (T(1) - f);
        grad[2 * H + j] = dc * i * (T(1) - g * g);
        grad[3 * H + j] = b.grad_h[at] * tanh_c * o * (T(1) - o);
        b.grad_c_prev[at] = dc * f;
      }
    }
  });
}

template void lstm_cell_forward<float>(const LstmShape&, const LstmCellForward<float>&);
template void lstm_cell_forward<double>(const LstmShape&, const LstmCellForward<double>&);
template void lstm_cell_backward<float>(const LstmShape&, const LstmCellBackward<float>&);
template void lstm_cell_backward<double>(const LstmShape&, const LstmCellBackward<double>&);

}  // namespace fastconv::rnn::cpu
