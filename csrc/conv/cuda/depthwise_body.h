// Depthwise convolution on CUDA (groups == in_channels, K = C * multiplier output channels),
// the twin of the CPU's conv/cpu/depthwise.cpp: output channel k reads input channel
// k / multiplier alone, through its own R x S filter. A GEMM per group would have one row, so
// each direction is a direct loop over the R * S taps:
//   forward          one thread per output element (n, k, p, q): bias + its taps, then the ReLU;
//   input gradient   one thread per input element (n, c, h, w) gathers the output-gradient
//                    values that read it (no thread writes another's element: no atomics);
//   weight gradient  each (k, r, s) is a sum over the N * P * Q output positions, cut into
//                    `parts` interleaved partial sums (part j takes positions j, j + parts, ...,
//                    so a warp's threads read neighbouring values), then one thread per (k, r, s)
//                    adds its parts in order: the same sum every run, no atomics.
// The per-thread bodies of conv.cu's depthwise kernels, run over the whole grid on the CPU by
// tests/cuda/test_conv_depthwise_host.py. Sums run in the CPU kernel's order (taps r-major, then
// s; the multiplier's channels in order for the input gradient); the weight gradient's are
// double, as the CPU's are.
#pragma once
#include "common/conv_geometry.h"
#include "common/host_device.h"
#include "common/index.h"
#include "common/index_div.h"

namespace fastconv::conv::depthwise {

// N images of C channels in, K = C * multiplier channels out; pad_end is unused (P and Q say
// how many outputs each axis has).
struct Geometry {
  index_t N, C, K;
  ConvAxis h, w;
  index_t P, Q;
  FASTCONV_HD index_t multiplier() const { return index_div(K, C); }
  FASTCONV_HD index_t taps() const { return h.kernel * w.kernel; }
};

// The input position tap t of output position o reads along `axis` (maybe in the padding).
FASTCONV_HD inline index_t tap_input(const ConvAxis& axis, index_t o, index_t t) {
  return o * axis.stride - axis.pad_begin + t * axis.dilation;
}

FASTCONV_HD inline bool inside(index_t at, index_t size) { return at >= 0 && at < size; }

// y[n, k, p, q] = relu?(bias[k] + sum_{r, s} w[k, 0, r, s] x[n, k / multiplier, p sh - ph + r dh,
// q sw - pw + s dw]), 0 in the padding; element i of y in its C order. NaN passes the ReLU, as
// torch.relu's.
template <class T>
FASTCONV_HD inline T forward_element(const Geometry& g, const T* x, const T* w, const T* bias, bool relu, index_t i) {
  const PlaneIndex o = split_index(i, g.P, g.Q);  // o.plane = n * K + k
  const index_t k = index_mod(o.plane, g.K), n = index_div(o.plane, g.K);
  const T* in = x + (n * g.C + index_div(k, g.multiplier())) * g.h.input * g.w.input;
  const T* filter = w + k * g.taps();
  T sum = bias ? bias[k] : T(0);
  for (index_t r = 0; r < g.h.kernel; ++r) {
    const index_t ih = tap_input(g.h, o.row, r);
    if (!inside(ih, g.h.input)) continue;
    for (index_t s = 0; s < g.w.kernel; ++s) {
      const index_t iw = tap_input(g.w, o.col, s);
      if (inside(iw, g.w.input)) sum += filter[r * g.w.kernel + s] * in[ih * g.w.input + iw];
    }
  }
  return relu && sum < T(0) ? T(0) : sum;
}

// grad_x[n, c, h, w]: the sum, over the multiplier's output channels k of c and the taps (r, s)
// that read (h, w) from some output (p, q), of w[k, 0, r, s] grad_y[n, k, p, q]. Element i of
// grad_x in its C order.
template <class T>
FASTCONV_HD inline T input_gradient_element(const Geometry& g, const T* grad_y, const T* w, index_t i) {
  const PlaneIndex at = split_index(i, g.h.input, g.w.input);  // at.plane = n * C + c
  const index_t c = index_mod(at.plane, g.C), n = index_div(at.plane, g.C), multiplier = g.multiplier();
  T sum = T(0);
  for (index_t k = c * multiplier; k < (c + 1) * multiplier; ++k) {
    const T* dy = grad_y + (n * g.K + k) * g.P * g.Q;
    const T* filter = w + k * g.taps();
    for (index_t r = 0; r < g.h.kernel; ++r) {
      const index_t p = tap_output(g.h, g.P, at.row, r);
      if (p < 0) continue;
      for (index_t s = 0; s < g.w.kernel; ++s) {
        const index_t q = tap_output(g.w, g.Q, at.col, s);
        if (q >= 0) sum += filter[r * g.w.kernel + s] * dy[p * g.Q + q];
      }
    }
  }
  return sum;
}

// Part `part` (of `parts`) of the weight gradient of tap t = (k * R + r) * S + s: the sum of
// grad_y[n, k, p, q] x[n, k / multiplier, p sh - ph + r dh, q sw - pw + s dw] over the output
// positions j = (n * P + p) * Q + q in {part, part + parts, ...}, in that order, in double.
template <class T>
FASTCONV_HD inline double weight_gradient_part(const Geometry& g, const T* x, const T* grad_y, index_t t,
                                               index_t part, index_t parts) {
  const index_t k = index_div(t, g.taps()), tap = index_mod(t, g.taps());
  const index_t r = index_div(tap, g.w.kernel), s = index_mod(tap, g.w.kernel), c = index_div(k, g.multiplier());
  const index_t PQ = g.P * g.Q, HW = g.h.input * g.w.input;
  double sum = 0.0;
  for (index_t j = part; j < g.N * PQ; j += parts) {
    const PlaneIndex o = split_index(j, g.P, g.Q);  // o.plane = n
    const index_t ih = tap_input(g.h, o.row, r), iw = tap_input(g.w, o.col, s);
    if (inside(ih, g.h.input) && inside(iw, g.w.input))
      sum += static_cast<double>(grad_y[(o.plane * g.K + k) * PQ + o.row * g.Q + o.col]) *
             static_cast<double>(x[(o.plane * g.C + c) * HW + ih * g.w.input + iw]);
  }
  return sum;
}

// grad_w[t] for tap t: its `parts` partial sums (partials[t * parts + j]) added in order.
FASTCONV_HD inline double sum_parts(const double* partials, index_t t, index_t parts) {
  double sum = 0.0;
  for (index_t j = 0; j < parts; ++j) sum += partials[t * parts + j];
  return sum;
}

}  // namespace fastconv::conv::depthwise
