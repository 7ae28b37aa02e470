// Pooling, one plane (image, channel) per task. Windowed pooling walks one output row at a time:
// for each kernel tap (r, k) it sweeps the whole row of outputs, so the innermost loop runs over
// contiguous output columns and a strided input row, and per-window bounds are computed once
// per tap instead of once per output. For a fixed output the taps are visited in PyTorch's
// order (row-major over the window), so ties and NaNs resolve exactly as PyTorch's do. The
// sweeps and the plain 2x2 row kernel are pool_loops.h's, compiled per ISA.
#include "pool/cpu/pool.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "common/conv_geometry.h"
#include "common/pool_geometry.h"
#include "core/parallel.h"
#include "pool/cpu/pool_loops.h"

namespace fastconv::pool::cpu {

namespace {

// Output columns whose tap lands inside the row: a convolution's valid_range.
using conv::Range;
using conv::valid_range;

template <class Fn>
void for_each_plane(const Pool2dShape& s, const Fn& fn) {
  parallel_for_dynamic(0, s.N * s.C, [&](index_t lo, index_t hi) {
    for (index_t plane = lo; plane < hi; ++plane) fn(plane);
  });
}

// Which compiled stride a sweep of pool_loops.h takes for the input stride `stride`.
int stride_kind(index_t stride) { return stride == 1 || stride == 2 ? static_cast<int>(stride) : 0; }

// The taps [lo, hi) of a window along one axis that can land in [0, limit) for some output:
// tap t reads offset + t * dilation from window start o * stride - padding, o in [0, outputs).
// In ceil mode a window may be far longer than the padded input (kernel 2^30 at stride 2^30
// has one output); the loops run over these taps only, in the same order, so that their cost is
// the input's, not the kernel's.
Range reachable_taps(index_t kernel, index_t dilation, index_t padding, index_t stride, index_t outputs,
                     index_t limit) {
  const index_t last_start = (outputs - 1) * stride - padding;  // the window furthest along
  const index_t lo = last_start >= 0 ? 0 : (-last_start + dilation - 1) / dilation;
  const index_t hi = std::min(kernel, (limit + padding + dilation - 1) / dilation);
  return {std::min(lo, hi), hi};
}

// One output row of max pooling. The row's indices are kept as int32, the width of a float
// lane, so the selects vectorise; they are widened to PyTorch's int64 once per row.
// `row_idx` holds Q values; `columns[k]` is kernel column k's valid_range, the same for every row.
template <class T, bool kIndices>
void max_pool_row(const Pool2dShape& s, Range taps, const std::vector<Range>& columns, const T* in, index_t oh, T* y,
                  std::int32_t* row_idx) {
  const auto& w = s.win;
  const index_t h0 = oh * w.stride[0] - w.padding[0];
  const index_t first_h = first_tap(h0, w.dilation[0]);
  for (index_t q = 0; q < s.Q; ++q) {
    y[q] = -std::numeric_limits<T>::infinity();
    if constexpr (kIndices)
      row_idx[q] = static_cast<std::int32_t>(first_h * s.W + first_tap(q * w.stride[1] - w.padding[1], w.dilation[1]));
  }
  const auto max_tap = pool_loops<T>().max_tap[kIndices][stride_kind(w.stride[1])];
  // the rows of this window inside the input: h0 + r * dilation in [0, H)
  const index_t r0 = h0 >= 0 ? 0 : (-h0 + w.dilation[0] - 1) / w.dilation[0];
  const index_t r1 = h0 >= s.H ? 0 : std::min(w.kernel[0], (s.H - h0 + w.dilation[0] - 1) / w.dilation[0]);
  for (index_t r = r0; r < r1; ++r) {
    const index_t ih = h0 + r * w.dilation[0];
    if (ih < 0 || ih >= s.H) continue;
    for (index_t k = taps.lo; k < taps.hi; ++k) {
      const index_t offset = k * w.dilation[1] - w.padding[1];
      const Range qs = columns[k - taps.lo];
      const T* src = in + ih * s.W + offset;
      const auto tap0 = static_cast<std::int32_t>(ih * s.W + offset);
      max_tap(src, qs.lo, qs.hi, w.stride[1], tap0, y, row_idx);
    }
  }
}

// The window nearly every network pools with: 2x2 at stride 2, no padding, no dilation, every
// window inside the input.
bool is_plain_2x2(const Pool2dShape& s) {
  const auto& w = s.win;
  return w.kernel[0] == 2 && w.kernel[1] == 2 && w.stride[0] == 2 && w.stride[1] == 2 && w.padding[0] == 0 &&
         w.padding[1] == 0 && w.dilation[0] == 1 && w.dilation[1] == 1 && 2 * s.P <= s.H && 2 * s.Q <= s.W;
}

// Sum (forward) or spread (backward) one output row of avg_pool2d over its taps:
// apply(input_row_at_tap, q_range, stride) for each in-bounds tap.
template <class Fn>
void for_each_avg_tap(const Pool2dShape& s, index_t oh, const Fn& apply) {
  const auto& w = s.win;
  const AvgExtent he = avg_extent(oh, w.stride[0], w.padding[0], w.kernel[0], s.H);
  const Range taps = reachable_taps(w.kernel[1], 1, w.padding[1], w.stride[1], s.Q, s.W);
  for (index_t ih = he.start; ih < he.end; ++ih)
    for (index_t k = taps.lo; k < taps.hi; ++k) {
      const index_t offset = k - w.padding[1];
      apply(ih * s.W + offset, valid_range(offset, w.stride[1], s.W, s.Q));
    }
}

}  // namespace

template <class T>
void max_pool2d_forward(const Pool2dShape& s, const T* x, T* y, std::int64_t* indices) {
  const auto& w = s.win;
  const Range taps = reachable_taps(w.kernel[1], w.dilation[1], w.padding[1], w.stride[1], s.Q, s.W);
  std::vector<Range> columns(taps.hi - taps.lo);
  for (index_t k = taps.lo; k < taps.hi; ++k)
    columns[k - taps.lo] = valid_range(k * w.dilation[1] - w.padding[1], w.stride[1], s.W, s.Q);
  if (is_plain_2x2(s)) {
    const auto max_2x2_row = pool_loops<T>().max_2x2_row[indices != nullptr];
    for_each_plane(s, [&](index_t plane) {
      const T* in = x + plane * s.H * s.W;
      for (index_t oh = 0; oh < s.P; ++oh) {
        const index_t o = (plane * s.P + oh) * s.Q, row_start = 2 * oh * s.W;
        max_2x2_row(in + row_start, s.W, s.Q, y + o, indices ? indices + o : nullptr, row_start);
      }
    });
    return;
  }
  for_each_plane(s, [&](index_t plane) {
    const T* in = x + plane * s.H * s.W;
    std::vector<std::int32_t> row_idx(indices ? s.Q : 0);
    for (index_t oh = 0; oh < s.P; ++oh) {
      const index_t o = (plane * s.P + oh) * s.Q;
      if (!indices) {
        max_pool_row<T, false>(s, taps, columns, in, oh, y + o, nullptr);
        continue;
      }
      max_pool_row<T, true>(s, taps, columns, in, oh, y + o, row_idx.data());
      std::copy(row_idx.begin(), row_idx.end(), indices + o);
    }
  });
}

template <class T>
void max_pool2d_backward(const Pool2dShape& s, const T* grad_y, const std::int64_t* indices, T* grad_x) {
  const index_t HW = s.H * s.W, PQ = s.P * s.Q;
  for_each_plane(s, [&](index_t plane) {
    T* dx = grad_x + plane * HW;
    std::fill(dx, dx + HW, T(0));
    const T* dy = grad_y + plane * PQ;
    const std::int64_t* idx = indices + plane * PQ;
    // An index outside the plane marks a window with no input in it (possible with dilation):
    // nothing to route.
    for (index_t j = 0; j < PQ; ++j)
      if (idx[j] >= 0 && idx[j] < HW) dx[idx[j]] += dy[j];
  });
}

template <class T>
void avg_pool2d_forward(const Pool2dShape& s, bool count_include_pad, index_t divisor_override, const T* x, T* y) {
  const auto& w = s.win;
  const auto sum_tap = pool_loops<T>().sum_tap[stride_kind(w.stride[1])];
  for_each_plane(s, [&](index_t plane) {
    const T* in = x + plane * s.H * s.W;
    for (index_t oh = 0; oh < s.P; ++oh) {
      T* out = y + (plane * s.P + oh) * s.Q;
      std::fill(out, out + s.Q, T(0));
      for_each_avg_tap(s, oh, [&](index_t at, Range qs) { sum_tap(in + at, qs.lo, qs.hi, w.stride[1], out); });
      const AvgExtent he = avg_extent(oh, w.stride[0], w.padding[0], w.kernel[0], s.H);
      for (index_t q = 0; q < s.Q; ++q)
        out[q] /= avg_divisor<T>(count_include_pad, divisor_override, he,
                                 avg_extent(q, w.stride[1], w.padding[1], w.kernel[1], s.W));
    }
  });
}

template <class T>
void avg_pool2d_backward(const Pool2dShape& s, bool count_include_pad, index_t divisor_override,
                         const T* grad_y, T* grad_x) {
  const auto& w = s.win;
  const auto spread_tap = pool_loops<T>().spread_tap[stride_kind(w.stride[1])];
  for_each_plane(s, [&](index_t plane) {
    T* dx = grad_x + plane * s.H * s.W;
    std::fill(dx, dx + s.H * s.W, T(0));
    std::vector<T> share(s.Q);  // each output's gradient divided among its window
    for (index_t oh = 0; oh < s.P; ++oh) {
      const T* dy = grad_y + (plane * s.P + oh) * s.Q;
      const AvgExtent he = avg_extent(oh, w.stride[0], w.padding[0], w.kernel[0], s.H);
      for (index_t q = 0; q < s.Q; ++q)
        share[q] = dy[q] / avg_divisor<T>(count_include_pad, divisor_override, he,
                                          avg_extent(q, w.stride[1], w.padding[1], w.kernel[1], s.W));
      for_each_avg_tap(s, oh,
                       [&](index_t at, Range qs) { spread_tap(share.data(), qs.lo, qs.hi, w.stride[1], dx + at); });
    }
  });
}

template <class T>
void adaptive_avg_pool2d_forward(const Pool2dShape& s, const T* x, T* y) {
  for_each_plane(s, [&](index_t plane) {
    const T* in = x + plane * s.H * s.W;
    for (index_t oh = 0; oh < s.P; ++oh) {
      const index_t h0 = adaptive_start(oh, s.H, s.P), h1 = adaptive_end(oh, s.H, s.P);
      for (index_t ow = 0; ow < s.Q; ++ow) {
        const index_t w0 = adaptive_start(ow, s.W, s.Q), w1 = adaptive_end(ow, s.W, s.Q);
        T sum = 0;
        for (index_t ih = h0; ih < h1; ++ih)
          for (index_t iw = w0; iw < w1; ++iw) sum += in[ih * s.W + iw];
        y[(plane * s.P + oh) * s.Q + ow] = sum / T(h1 - h0) / T(w1 - w0);  // PyTorch divides twice
      }
    }
  });
}

template <class T>
void adaptive_avg_pool2d_backward(const Pool2dShape& s, const T* grad_y, T* grad_x) {
  for_each_plane(s, [&](index_t plane) {
    T* dx = grad_x + plane * s.H * s.W;
    std::fill(dx, dx + s.H * s.W, T(0));
    for (index_t oh = 0; oh < s.P; ++oh) {
      const index_t h0 = adaptive_start(oh, s.H, s.P), h1 = adaptive_end(oh, s.H, s.P);
      for (index_t ow = 0; ow < s.Q; ++ow) {
        const index_t w0 = adaptive_start(ow, s.W, s.Q), w1 = adaptive_end(ow, s.W, s.Q);
        const T share = grad_y[(plane * s.P + oh) * s.Q + ow] / T(h1 - h0) / T(w1 - w0);
        for (index_t ih = h0; ih < h1; ++ih)
          for (index_t iw = w0; iw < w1; ++iw) dx[ih * s.W + iw] += share;
      }
    }
  });
}

#define FASTCONV_INSTANTIATE(T)                                                                            \
  template void max_pool2d_forward<T>(const Pool2dShape&, const T*, T*, std::int64_t*);                   \
  template void max_pool2d_backward<T>(const Pool2dShape&, const T*, const std::int64_t*, T*);            \
  template void avg_pool2d_forward<T>(const Pool2dShape&, bool, index_t, const T*, T*);                    \
  template void avg_pool2d_backward<T>(const Pool2dShape&, bool, index_t, const T*, T*);                   \
  template void adaptive_avg_pool2d_forward<T>(const Pool2dShape&, const T*, T*);                          \
  template void adaptive_avg_pool2d_backward<T>(const Pool2dShape&, const T*, T*);
FASTCONV_INSTANTIATE(float)
FASTCONV_INSTANTIATE(double)
#undef FASTCONV_INSTANTIATE

}  // namespace fastconv::pool::cpu
