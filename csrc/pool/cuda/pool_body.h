// The per-thread bodies of the pooling kernels (pool.cu), one output or input element each, in
// the order of operations of the CPU kernels (pool/cpu/pool.cpp), so that a host run over the
// whole grid (tests/cuda/test_pool_body.py) gives the CPU's results bit for bit.
//
// Forward kernels run one thread per output. Backward kernels gather: one thread per input
// element sums the gradients of the outputs whose window holds it, in the order the CPU's scatter
// adds them, so no two threads write one element and the sums are deterministic. Max pooling's
// backward is the exception: its windows are known only through the indices, so each output adds
// its gradient at its index (an atomic add on the GPU).
#pragma once
#include "common/c_headers.h"
#include "common/host_device.h"
#include "common/index.h"
#include "common/index_div.h"
#include "common/pool_geometry.h"

namespace fastconv::pool {

struct WindowGeometry {
  index_t H, W, P, Q;  // input and output plane sizes
  index_t kh, kw, sh, sw, ph, pw, dh, dw;
};

// PyTorch's max_pool2d: taps in row-major order, `if (v > best || isnan(v))`, -inf with the
// first in-bounds tap's index when nothing is taken. Writes y[o] and, when given, indices[o].
template <class T>
FASTCONV_HD void max_pool2d_forward_body(index_t o, const WindowGeometry& g, const T* x, T* y, int64_t* indices) {
  const PlaneIndex p = split_index(o, g.P, g.Q);
  const index_t h0 = p.row * g.sh - g.ph, w0 = p.col * g.sw - g.pw;
  const index_t first_h = first_tap(h0, g.dh), first_w = first_tap(w0, g.dw);
  const index_t h_end = index_min(h0 + (g.kh - 1) * g.dh + 1, g.H), w_end = index_min(w0 + (g.kw - 1) * g.dw + 1, g.W);
  const T* in = x + p.plane * g.H * g.W;
  T best = -static_cast<T>(INFINITY);
  index_t best_at = first_h * g.W + first_w;
  for (index_t ih = first_h; ih < h_end; ih += g.dh)
    for (index_t iw = first_w; iw < w_end; iw += g.dw) {
      const T v = in[ih * g.W + iw];
      if (v > best || v != v) {
        best = v;
        best_at = ih * g.W + iw;
      }
    }
  y[o] = best;
  if (indices) indices[o] = best_at;
}

// grad_x += grad_y at the index, as the CPU's loop does; grad_x was zeroed first. Indices
// outside the plane (a window of padding only) route nothing.
template <class T>
FASTCONV_HD void add_at(T* at, T value) {
#if defined(__CUDA_ARCH__)
  atomicAdd(at, value);
#else
  *at += value;
#endif
}

template <class T>
FASTCONV_HD void max_pool2d_backward_body(index_t o, index_t HW, index_t PQ, const T* grad_y, const int64_t* indices,
                                          T* grad_x) {
  const index_t at = indices[o];
  if (at >= 0 && at < HW) add_at(grad_x + index_div(o, PQ) * HW + at, grad_y[o]);
}

// PyTorch's divide_factor of avg_pool2d for output (oh, ow).
template <class T>
FASTCONV_HD T avg_divisor(const WindowGeometry& g, index_t oh, index_t ow, bool count_include_pad,
                          index_t divisor_override) {
  if (divisor_override) return T(divisor_override);
  const AvgExtent h = avg_extent(oh, g.sh, g.ph, g.kh, g.H), w = avg_extent(ow, g.sw, g.pw, g.kw, g.W);
  if (count_include_pad) return T(h.padded_size * w.padded_size);
  return T((h.end - h.start) * (w.end - w.start));
}

template <class T>
FASTCONV_HD void avg_pool2d_forward_body(index_t o, const WindowGeometry& g, bool count_include_pad,
                                         index_t divisor_override, const T* x, T* y) {
  const PlaneIndex p = split_index(o, g.P, g.Q);
  const AvgExtent h = avg_extent(p.row, g.sh, g.ph, g.kh, g.H), w = avg_extent(p.col, g.sw, g.pw, g.kw, g.W);
  const T* in = x + p.plane * g.H * g.W;
  T sum = 0;
  for (index_t ih = h.start; ih < h.end; ++ih)
    for (index_t iw = w.start; iw < w.end; ++iw) sum += in[ih * g.W + iw];
  y[o] = sum / avg_divisor<T>(g, p.row, p.col, count_include_pad, divisor_override);
}

// The outputs [lo, hi) along one axis whose window (start o*stride - pad, `kernel` long) holds
// input coordinate i: o*stride - pad <= i < o*stride - pad + kernel.
struct OutputRange {
  index_t lo, hi;
};

FASTCONV_HD inline OutputRange windows_holding(index_t i, index_t stride, index_t pad, index_t kernel, index_t outputs) {
  return {index_max(floor_div(i + pad - kernel, stride) + 1, 0), index_min(floor_div(i + pad, stride) + 1, outputs)};
}

// The CPU spreads each output row's shares in rows oh ascending and, within a row, by kernel
// column ascending, which for one input is output column descending: the same order here.
template <class T>
FASTCONV_HD void avg_pool2d_backward_body(index_t i, const WindowGeometry& g, bool count_include_pad,
                                          index_t divisor_override, const T* grad_y, T* grad_x) {
  const PlaneIndex p = split_index(i, g.H, g.W);
  const OutputRange rows = windows_holding(p.row, g.sh, g.ph, g.kh, g.P);
  const OutputRange cols = windows_holding(p.col, g.sw, g.pw, g.kw, g.Q);
  const T* dy = grad_y + p.plane * g.P * g.Q;
  T sum = 0;
  for (index_t oh = rows.lo; oh < rows.hi; ++oh)
    for (index_t ow = cols.hi - 1; ow >= cols.lo; --ow)
      sum += dy[oh * g.Q + ow] / avg_divisor<T>(g, oh, ow, count_include_pad, divisor_override);
  grad_x[i] = sum;
}

template <class T>
FASTCONV_HD void adaptive_avg_pool2d_forward_body(index_t o, index_t H, index_t W, index_t P, index_t Q, const T* x,
                                                  T* y) {
  const PlaneIndex p = split_index(o, P, Q);
  const index_t h0 = adaptive_start(p.row, H, P), h1 = adaptive_end(p.row, H, P);
  const index_t w0 = adaptive_start(p.col, W, Q), w1 = adaptive_end(p.col, W, Q);
  const T* in = x + p.plane * H * W;
  T sum = 0;
  for (index_t ih = h0; ih < h1; ++ih)
    for (index_t iw = w0; iw < w1; ++iw) sum += in[ih * W + iw];
  y[o] = sum / T(h1 - h0) / T(w1 - w0);  // PyTorch divides twice
}

// The adaptive windows holding input coordinate i: those of outputs near i * out / in (windows
// overlap by at most one element), each checked.
FASTCONV_HD inline OutputRange adaptive_candidates(index_t i, index_t in, index_t out) {
  return {index_max(i * out / in - 1, 0), index_min((i + 1) * out / in + 2, out)};
}

FASTCONV_HD inline bool adaptive_holds(index_t o, index_t i, index_t in, index_t out) {
  return adaptive_start(o, in, out) <= i && i < adaptive_end(o, in, out);
}

template <class T>
FASTCONV_HD void adaptive_avg_pool2d_backward_body(index_t i, index_t H, index_t W, index_t P, index_t Q,
                                                   const T* grad_y, T* grad_x) {
  const PlaneIndex p = split_index(i, H, W);
  const OutputRange rows = adaptive_candidates(p.row, H, P), cols = adaptive_candidates(p.col, W, Q);
  const T* dy = grad_y + p.plane * P * Q;
  T sum = 0;
  for (index_t oh = rows.lo; oh < rows.hi; ++oh) {
    if (!adaptive_holds(oh, p.row, H, P)) continue;
    const T rows_share = T(adaptive_end(oh, H, P) - adaptive_start(oh, H, P));
    for (index_t ow = cols.lo; ow < cols.hi; ++ow)
      if (adaptive_holds(ow, p.col, W, Q))
        sum += dy[oh * Q + ow] / rows_share / T(adaptive_end(ow, W, Q) - adaptive_start(ow, W, Q));
  }
  grad_x[i] = sum;
}

}  // namespace fastconv::pool
