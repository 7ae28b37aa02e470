// The per-thread bodies of conv.cu's im2col and col2im: one output element each, so that a CPU
// test runs them over the whole grid (tests/cuda/test_conv_host.py).
//
// Columns are laid out as torch.nn.functional.unfold's, (N, C * R * S, P * Q): row
// (c * R + r) * S + s holds tap (r, s) of channel c for every output pixel p * Q + q. A group's
// rows are one block, so a grouped convolution is a GEMM per group on that block.
#pragma once
#include "common/conv_geometry.h"

namespace fastconv::conv {

// An im2col / col2im call: N images of C channels, and each spatial axis (pad_end is unused:
// P and Q already say how many outputs the axes have).
struct ColumnsGeometry {
  index_t N, C;
  ConvAxis h, w;
  index_t P, Q;
  FASTCONV_HD index_t rows() const { return C * h.kernel * w.kernel; }
};

// cols[n, (c * R + r) * S + s, p * Q + q] = x[n, c, p * sh - pt + r * dh, q * sw - pl + s * dw], 0 in
// the padding. Element i of cols, in its C order.
template <class T>
FASTCONV_HD inline T im2col_element(const ColumnsGeometry& g, const T* x, index_t i) {
  const index_t q = i % g.Q, p = i / g.Q % g.P, row = i / (g.P * g.Q) % g.rows(), n = i / (g.P * g.Q * g.rows());
  const index_t s = row % g.w.kernel, r = row / g.w.kernel % g.h.kernel, c = row / (g.w.kernel * g.h.kernel);
  const index_t h = p * g.h.stride - g.h.pad_begin + r * g.h.dilation;
  const index_t w = q * g.w.stride - g.w.pad_begin + s * g.w.dilation;
  if (h < 0 || h >= g.h.input || w < 0 || w >= g.w.input) return T(0);
  return x[((n * g.C + c) * g.h.input + h) * g.w.input + w];
}

// col2im, the adjoint of im2col, as a gather: element i of x (N, C, H, W) is the sum of the
// column entries that read it, taps in (r, s) order from 0, which is the order the CPU's
// col2im adds them in (conv/cpu/im2col.cpp), so the two agree to the bit. No thread writes
// another's element: no atomics, the same result every run.
template <class T>
FASTCONV_HD inline T col2im_element(const ColumnsGeometry& g, const T* cols, index_t i) {
  const index_t w = i % g.w.input, h = i / g.w.input % g.h.input, c = i / (g.h.input * g.w.input) % g.C;
  const index_t n = i / (g.h.input * g.w.input * g.C), R = g.h.kernel, S = g.w.kernel, PQ = g.P * g.Q;
  const T* image = cols + n * g.rows() * PQ;
  T sum = T(0);
  for (index_t r = 0; r < R; ++r) {
    const index_t p = tap_output(g.h, g.P, h, r);
    if (p < 0) continue;
    for (index_t s = 0; s < S; ++s) {
      const index_t q = tap_output(g.w, g.Q, w, s);
      if (q >= 0) sum += image[((c * R + r) * S + s) * PQ + p * g.Q + q];
    }
  }
  return sum;
}

}  // namespace fastconv::conv
