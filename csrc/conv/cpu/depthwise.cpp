// Direct depthwise convolution (one input channel per group, any channel multiplier, stride,
// padding and dilation). A GEMM per group would have a single row: pure packing overhead.
// Each output plane is a sum of R*S shifted, scaled input rows. With AVX2 (and stride 1 along
// the width) direct.h's row kernel sums them in registers (planes_by_row_kernel); otherwise
// plain loops run along contiguous rows, touching every plane once per kernel tap in cache.
#include <utility>
#include <vector>

#include "conv/cpu/kernels.h"
#include "conv/cpu/packing.h"
#include "conv/cpu/direct.h"
#include "core/isa.h"
#include "core/parallel.h"
#include "core/scratch.h"

namespace fastconv::conv::cpu {

namespace {

// dst[q] += weight * src[q * stride] for q in `qs` (src already offset by the tap).
template <class T>
inline void axpy_row(T* __restrict dst, const T* __restrict src, T weight, index_t stride, Range qs) {
  if (stride == 1) {
#pragma GCC ivdep
    for (index_t q = qs.lo; q < qs.hi; ++q) dst[q] += weight * src[q];
  } else {
    for (index_t q = qs.lo; q < qs.hi; ++q) dst[q] += weight * src[q * stride];
  }
}

// Calls tap(r, s, p, ih, w_offset, qs) for every kernel tap and output row that reads inside the
// input: the loop nest shared by the three kernels. The in-image ranges depend only on the tap,
// so they are computed once per tap, not per row.
template <class Fn>
void for_each_tap_row(const Conv2dShape& s, const Fn& tap) {
  const auto& prm = s.p;
  for (index_t r = 0; r < s.R; ++r) {
    const index_t h_offset = r * prm.dilation[0] - prm.pad_begin[0];
    const Range ps = valid_range(h_offset, prm.stride[0], s.H, s.P);
    for (index_t k = 0; k < s.S; ++k) {
      const index_t w_offset = k * prm.dilation[1] - prm.pad_begin[1];
      const Range qs = valid_range(w_offset, prm.stride[1], s.W, s.Q);
      for (index_t p = ps.lo; p < ps.hi; ++p) tap(r, k, p, p * prm.stride[0] + h_offset, w_offset, qs);
    }
  }
}

}  // namespace

// One output plane as direct's row kernel sees it (direct.h): `inputs` consecutive input planes
// of in_h x in_w, read from row top + op * sh + r * dh and column left + q + s * dw (0 outside),
// against weights [input][r][s] (direct's packing for one output channel).
struct PlaneGeometry {
  index_t in_h, in_w, out_h, out_w, inputs, R, S, top, left, sh, dh, dw;
};

// With AVX2 and stride 1 along the width, each output plane's inputs are copied zero-padded once
// and direct's row kernel (one channel, four vectors of pixels) sums an output row's taps in
// registers and stores it once: the plain loops below add R*S shifted rows into the output,
// rereading and rewriting it per tap (2x slower at 128 channels of 28x28).
// `plane_of(o)` gives output plane o's first input plane and its weights.
template <class T, class PlaneFn>
void planes_by_row_kernel(const PlaneGeometry& g, index_t planes, const PlaneFn& plane_of, const T* bias,
                          index_t channels, bool relu, T* out) {
  const direct::Tile tile = direct::row_tile<T>(g.out_w, 1);
  const index_t ld = round_up(g.out_w, tile.pixels) + (g.S - 1) * g.dw;
  const index_t rows = (g.out_h - 1) * g.sh + (g.R - 1) * g.dh + 1, in_size = g.in_h * g.in_w;
  const index_t out_size = g.out_h * g.out_w;
  const std::vector<index_t> taps = direct::taps_in_band(g.R, g.S, g.dh, g.dw, 1, ld, rows);
  parallel_for(0, planes, 1, [&](index_t lo, index_t hi) {
    T* padded = thread_scratch<T>(g.inputs * rows * ld, ScratchSlot::columns);
    for (index_t o = lo; o < hi; ++o) {
      const auto [in, w] = plane_of(o);
      for (index_t i = 0; i < g.inputs; ++i)
        copy_padded_rows(in + i * in_size, g.in_h, g.in_w, g.top, g.left, rows, ld, padded + i * rows * ld);
      for (index_t op = 0; op < g.out_h; ++op)
        direct::run_row_job(direct::RowJob<T>{padded + op * g.sh * ld, rows * ld, g.inputs, taps.data(),
                                               g.R * g.S, w, out + o * out_size + op * g.out_w, out_size, g.out_w, 1,
                                               bias ? bias + o % channels : nullptr, relu, tile.mr});
    }
  });
}

template <class T>
void conv2d_forward_depthwise(const Conv2dShape& s, const T* x, const T* w, const T* bias, bool relu, T* y) {
  const index_t multiplier = s.K_per_group(), HW = s.H * s.W, PQ = s.pixels();
  const auto& prm = s.p;
  if (active_isa() >= Isa::avx2 && prm.stride[1] == 1) {
    const PlaneGeometry g{s.H, s.W, s.P, s.Q, 1, s.R, s.S, -prm.pad_begin[0], -prm.pad_begin[1],
                          prm.stride[0], prm.dilation[0], prm.dilation[1]};
    return planes_by_row_kernel(g, s.N * s.K, [&](index_t o) {
      const index_t n = o / s.K, k = o % s.K;
      return std::pair{x + (n * s.C + k / multiplier) * HW, w + k * s.R * s.S};
    }, bias, s.K, relu, y);
  }
  parallel_for(0, s.N * s.K, 1, [&](index_t lo, index_t hi) {
    for (index_t plane = lo; plane < hi; ++plane) {
      const index_t n = plane / s.K, k = plane % s.K;
      const T* in = x + (n * s.C + k / multiplier) * HW;
      const T* weight = w + k * s.R * s.S;
      T* out = y + plane * PQ;
      std::fill(out, out + PQ, bias ? bias[k] : T(0));
      for_each_tap_row(s, [&](index_t r, index_t c, index_t p, index_t ih, index_t w_offset, Range qs) {
        axpy_row(out + p * s.Q, in + ih * s.W + w_offset, weight[r * s.S + c], s.p.stride[1], qs);
      });
      if (relu)
        for (index_t i = 0; i < PQ; ++i) out[i] = out[i] < T(0) ? T(0) : out[i];
    }
  });
}

template <class T>
void conv2d_backward_input_depthwise(const Conv2dShape& s, const T* grad_y, const T* w, T* grad_x) {
  const index_t multiplier = s.K_per_group(), HW = s.H * s.W, PQ = s.pixels();
  const auto& prm = s.p;
  if (active_isa() >= Isa::avx2 && prm.stride[0] == 1 && prm.stride[1] == 1) {
    // A stride-1 convolution's input gradient: grad_x[c] = sum over its `multiplier` outputs k
    // of grad_y[k] correlated with w[k] rotated (packing.h's rotated_transposed_weights).
    const std::vector<T> rotated = rotated_transposed_weights(s, w);
    const index_t dh = prm.dilation[0], dw = prm.dilation[1];
    const PlaneGeometry g{s.P, s.Q, s.H, s.W, multiplier, s.R, s.S, prm.pad_begin[0] - (s.R - 1) * dh,
                          prm.pad_begin[1] - (s.S - 1) * dw, 1, dh, dw};
    return planes_by_row_kernel(g, s.N * s.C, [&](index_t o) {
      const index_t n = o / s.C, c = o % s.C;
      return std::pair{grad_y + (n * s.K + c * multiplier) * PQ, rotated.data() + c * multiplier * s.R * s.S};
    }, static_cast<const T*>(nullptr), s.C, false, grad_x);
  }
  // One writer per input plane: the `multiplier` output channels reading it are summed here.
  parallel_for(0, s.N * s.C, 1, [&](index_t lo, index_t hi) {
    for (index_t plane = lo; plane < hi; ++plane) {
      const index_t n = plane / s.C, c = plane % s.C;
      T* dx = grad_x + plane * HW;
      std::fill(dx, dx + HW, T(0));
      for (index_t k = c * multiplier; k < (c + 1) * multiplier; ++k) {
        const T* dy = grad_y + (n * s.K + k) * PQ;
        const T* weight = w + k * s.R * s.S;
        for_each_tap_row(s, [&](index_t r, index_t col, index_t p, index_t ih, index_t w_offset, Range qs) {
          T* dst = dx + ih * s.W + w_offset;
          const T* src = dy + p * s.Q;
          const T wv = weight[r * s.S + col];
          for (index_t q = qs.lo; q < qs.hi; ++q) dst[q * s.p.stride[1]] += wv * src[q];
        });
      }
    }
  });
}

template <class T>
void conv2d_backward_weight_depthwise(const Conv2dShape& s, const T* x, const T* grad_y, T* grad_w, T* grad_bias) {
  const index_t multiplier = s.K_per_group(), HW = s.H * s.W, PQ = s.pixels(), RS = s.R * s.S;
  parallel_for(0, s.K, 1, [&](index_t lo, index_t hi) {
    std::vector<double> acc(RS);  // N*P*Q products per tap: accumulate wide
    for (index_t k = lo; k < hi; ++k) {
      std::fill(acc.begin(), acc.end(), 0.0);
      for (index_t n = 0; n < s.N; ++n) {
        const T* in = x + (n * s.C + k / multiplier) * HW;
        const T* dy = grad_y + (n * s.K + k) * PQ;
        for_each_tap_row(s, [&](index_t r, index_t col, index_t p, index_t ih, index_t w_offset, Range qs) {
          const T* src = in + ih * s.W + w_offset;
          const T* g = dy + p * s.Q;
          T sum = 0;
          for (index_t q = qs.lo; q < qs.hi; ++q) sum += g[q] * src[q * s.p.stride[1]];
          acc[r * s.S + col] += sum;
        });
      }
      for (index_t i = 0; i < RS; ++i) grad_w[k * RS + i] = static_cast<T>(acc[i]);
    }
  });
  if (grad_bias) conv2d_bias_grad(s, grad_y, grad_bias);
}

#define FASTCONV_INSTANTIATE(T)                                                                        \
  template void conv2d_forward_depthwise<T>(const Conv2dShape&, const T*, const T*, const T*, bool, T*); \
  template void conv2d_backward_input_depthwise<T>(const Conv2dShape&, const T*, const T*, T*);          \
  template void conv2d_backward_weight_depthwise<T>(const Conv2dShape&, const T*, const T*, T*, T*);
FASTCONV_INSTANTIATE(float)
FASTCONV_INSTANTIATE(double)
#undef FASTCONV_INSTANTIATE

}  // namespace fastconv::conv::cpu
