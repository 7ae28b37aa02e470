// The fused LSTM cell. Forward: one GEMM computes all four gates of every row,
//   gates (N x 4H) = [x | h] (N x (I + H)) @ [W_ih | W_hh]^T ((I + H) x 4H),
// its depth the concatenation of the input's and the hidden state's, read in place by packers
// that switch source at k = I (no concatenated copy of either operand); then one pass per row
// adds both biases, applies the activations and updates the state. Backward: one pass per row
// turns the gradients of h' and c' into those of the pre-activation gates and of c.
#include "rnn/cpu/lstm_cell.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "core/parallel.h"
#include "gemm/gemm.h"

// The activations' range clamps are compares; under the default -ftrapping-math GCC keeps them
// as branches (a compare may raise an FP exception), which stops the loops from vectorising.
// Nothing here reads FP exception flags.
#pragma GCC optimize("no-trapping-math")

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

// e^x in a form the compiler vectorises (glibc's expf and exp are a call per value, which had
// made the activations cost 60 times numpy's vectorised ones): x = n ln2 + r with |r| <= ln2 / 2
// (Cody & Waite's two-part ln2), e^r by its Taylor polynomial to below the type's rounding
// error, and 2^n written into the exponent bits. x is first clamped to where e^x is a finite
// normal number; a NaN passes the clamps and the arithmetic as a NaN.
template <class T>
struct ExpConstants;
template <>
struct ExpConstants<float> {
  using Bits = std::uint32_t;
  static constexpr int mantissa_bits = 23, bias = 127, taylor_terms = 8;  // r^8 / 8! < 6e-9
  static constexpr float lowest = -87.0f, highest = 88.0f;
  static constexpr float ln2_high = 0.693359375f, ln2_low = -2.12194440e-4f;
};
template <>
struct ExpConstants<double> {
  using Bits = std::uint64_t;
  static constexpr int mantissa_bits = 52, bias = 1023, taylor_terms = 14;  // r^14 / 14! < 5e-18
  static constexpr double lowest = -708.0, highest = 709.0;
  static constexpr double ln2_high = 6.93147180369123816490e-01, ln2_low = 1.90821492927058770002e-10;
};

template <class T>
inline T vector_exp(T x) {
  using C = ExpConstants<T>;
  using Bits = typename C::Bits;
  x = x < C::lowest ? C::lowest : x;
  x = x > C::highest ? C::highest : x;
  // Adding 1.5 * 2^mantissa_bits rounds x / ln2 to an integer n and leaves n + bias in the low
  // bits of the sum, which shifted up are the bits of 2^n.
  const T shifter = T(1.5) * T(Bits(1) << C::mantissa_bits) + T(C::bias);
  const T shifted = x * T(1.44269504088896340736) + shifter;
  const T n = shifted - shifter;
  const T r = (x - n * C::ln2_high) - n * C::ln2_low;
  T poly = T(1);
  for (int k = C::taylor_terms - 1; k >= 1; --k) poly = T(1) + poly * r * (T(1) / T(k));  // Horner on r^k / k!
  Bits bits;
  std::memcpy(&bits, &shifted, sizeof bits);
  bits <<= C::mantissa_bits;
  T two_to_n;
  std::memcpy(&two_to_n, &bits, sizeof bits);
  return poly * two_to_n;
}

template <class T>
inline T sigmoid(T v) {
  return T(1) / (T(1) + vector_exp(-v));
}

// tanh v = 2 sigmoid(2v) - 1: its absolute error is the sigmoid's (a tiny v loses relative
// accuracy, not absolute, which is what the cell's sums see).
template <class T>
inline T vector_tanh(T v) {
  return T(2) / (T(1) + vector_exp(T(-2) * v)) - T(1);
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
      for (index_t j = 2 * H; j < 3 * H; ++j) gate[j] = vector_tanh(gate[j]);
      for (index_t j = 3 * H; j < 4 * H; ++j) gate[j] = sigmoid(gate[j]);
      const T *i = gate, *fg = gate + H, *g = gate + 2 * H, *o = gate + 3 * H, *c = f.c + n * H;
      T *__restrict c_out = f.c_out + n * H, *__restrict h_out = f.h_out + n * H;  // rows of their own
      for (index_t j = 0; j < H; ++j) c_out[j] = fg[j] * c[j] + i[j] * g[j];
      for (index_t j = 0; j < H; ++j) h_out[j] = o[j] * vector_tanh(c_out[j]);
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
      const T *i = b.gates + n * 4 * H, *f = i + H, *g = i + 2 * H, *o = i + 3 * H;
      const T *c = b.c + n * H, *c_out = b.c_out + n * H, *grad_h = b.grad_h + n * H, *grad_c = b.grad_c + n * H;
      T *__restrict grad_i = b.grad_gates + n * 4 * H, *__restrict grad_f = grad_i + H;  // outputs of their own
      T *__restrict grad_g = grad_i + 2 * H, *__restrict grad_o = grad_i + 3 * H;
      T* __restrict dc = b.grad_c_prev + n * H;  // holds dc' until the last loop makes it dc
      for (index_t j = 0; j < H; ++j) {
        const T tanh_c = vector_tanh(c_out[j]);
        dc[j] = grad_c[j] + grad_h[j] * o[j] * (T(1) - tanh_c * tanh_c);
        grad_o[j] = grad_h[j] * tanh_c * o[j] * (T(1) - o[j]);
      }
      for (index_t j = 0; j < H; ++j) {
        grad_i[j] = dc[j] * g[j] * i[j] * (T(1) - i[j]);
        grad_f[j] = dc[j] * c[j] * f[j] * (T(1) - f[j]);
        grad_g[j] = dc[j] * i[j] * (T(1) - g[j] * g[j]);
        dc[j] *= f[j];
      }
    }
  });
}

template void lstm_cell_forward<float>(const LstmShape&, const LstmCellForward<float>&);
template void lstm_cell_forward<double>(const LstmShape&, const LstmCellForward<double>&);
template void lstm_cell_backward<float>(const LstmShape&, const LstmCellBackward<float>&);
template void lstm_cell_backward<double>(const LstmShape&, const LstmCellBackward<double>&);

}  // namespace fastconv::rnn::cpu
