// Pooling, one plane (image, channel) per task. Windowed pooling walks one output row at a time:
// for each kernel tap (r, k) it sweeps the whole row of outputs, so the innermost loop runs over
// contiguous output columns and a strided input row, and per-window bounds are computed once
// per tap instead of once per output. For a fixed output the taps are visited in PyTorch's
// order (row-major over the window), so ties and NaNs resolve exactly as PyTorch's do.
#include "pool/cpu/pool.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "common/conv_geometry.h"
#include "common/pool_geometry.h"
#include "core/parallel.h"

namespace fastconv::pool::cpu {

namespace {

// Output columns whose tap lands inside the row: a convolution's valid_range.
using conv::Range;
using conv::valid_range;

template <class Fn>
void for_each_plane(const Pool2dShape& s, const Fn& fn) {
  parallel_for(0, s.N * s.C, 1, [&](index_t lo, index_t hi) {
    for (index_t plane = lo; plane < hi; ++plane) fn(plane);
  });
}

// One kernel tap swept over a row of outputs: PyTorch's update as unconditional selects (a
// branch on real data mispredicts often). kStride > 0 fixes
// the input stride at compile time (1 and 2 are the common ones), so the strided loads vectorise.
template <class T, bool kIndices, index_t kStride>
void max_pool_tap(const T* __restrict src, Range qs, index_t runtime_stride, std::int32_t tap0, T* __restrict y,
                  std::int32_t* __restrict row_idx) {
  const index_t sw = kStride > 0 ? kStride : runtime_stride;
  for (index_t q = qs.lo; q < qs.hi; ++q) {
    const T v = src[q * sw], best = y[q];
    const bool take = replaces(v, best);
    y[q] = take ? v : best;
    if constexpr (kIndices) row_idx[q] = take ? tap0 + static_cast<std::int32_t>(q * sw) : row_idx[q];
  }
}

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
  const index_t sw = w.stride[1];
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
      if (sw == 1) max_pool_tap<T, kIndices, 1>(src, qs, sw, tap0, y, row_idx);
      else if (sw == 2) max_pool_tap<T, kIndices, 2>(src, qs, sw, tap0, y, row_idx);
      else max_pool_tap<T, kIndices, 0>(src, qs, sw, tap0, y, row_idx);
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

// Plain 2x2 pooling on 16-byte vectors (GCC/Clang vector extensions: SSE2 on x86-64, NEON on
// aarch64), a row of outputs at a time. Each output picks within its top pair, within its bottom
// pair, then between the two: PyTorch folds the four taps in row-major order, and its update
// keeps the last NaN or else the first maximum, which this tree gives too (the fold is
// associative), so values, signed zeros and indices are PyTorch's. The generic row sweep spends
// more on window arithmetic than on data for these small windows.
template <class T>
struct Lanes;
template <>
struct Lanes<float> {
  typedef float Vec __attribute__((vector_size(16)));
  typedef std::int32_t Mask __attribute__((vector_size(16)));
  typedef std::int64_t Wide __attribute__((vector_size(32)));  // a Mask's lanes as indices
  static constexpr int N = 4;
  static Wide left_columns() { return Wide{0, 2, 4, 6}; }  // the windows' left taps, from the first
  // lanes 0, 2, 4, 6 and 1, 3, 5, 7 of the pair (a, b): the left and right taps of 4 windows
  static Vec evens(Vec a, Vec b) {
#if defined(__clang__)
    return __builtin_shufflevector(a, b, 0, 2, 4, 6);
#else
    return __builtin_shuffle(a, b, Mask{0, 2, 4, 6});
#endif
  }
  static Vec odds(Vec a, Vec b) {
#if defined(__clang__)
    return __builtin_shufflevector(a, b, 1, 3, 5, 7);
#else
    return __builtin_shuffle(a, b, Mask{1, 3, 5, 7});
#endif
  }
};
template <>
struct Lanes<double> {
  typedef double Vec __attribute__((vector_size(16)));
  typedef std::int64_t Mask __attribute__((vector_size(16)));
  typedef std::int64_t Wide __attribute__((vector_size(16)));
  static constexpr int N = 2;
  static Wide left_columns() { return Wide{0, 2}; }
  static Vec evens(Vec a, Vec b) {
#if defined(__clang__)
    return __builtin_shufflevector(a, b, 0, 2);
#else
    return __builtin_shuffle(a, b, Mask{0, 2});
#endif
  }
  static Vec odds(Vec a, Vec b) {
#if defined(__clang__)
    return __builtin_shufflevector(a, b, 1, 3);
#else
    return __builtin_shuffle(a, b, Mask{1, 3});
#endif
  }
};

// Output q of a plain 2x2 row, one at a time (the row's tail), with its index from the row's top
// left tap.
template <class T>
T max_pool_2x2_one(const T* top, index_t width, index_t q, index_t* index) {
  const T a = top[2 * q], b = top[2 * q + 1], c = top[width + 2 * q], d = top[width + 2 * q + 1];
  const bool right_top = replaces(b, a), right_bottom = replaces(d, c);
  const T upper = right_top ? b : a, lower = right_bottom ? d : c;
  const bool below = replaces(lower, upper);
  *index = (below ? width : 0) + 2 * q + ((below ? right_bottom : right_top) ? 1 : 0);
  return below ? lower : upper;
}

// One output row: `top` is the window row's first input row; indices (if given) count from the
// plane's start, `row_start` being top's offset in the plane.
template <class T, bool kIndices>
void max_pool_2x2_row(const T* __restrict top, index_t width, index_t Q, T* __restrict out,
                      std::int64_t* __restrict indices, index_t row_start) {
  using L = Lanes<T>;
  using Vec = typename L::Vec;
  using Mask = typename L::Mask;
  const T* bottom = top + width;
  index_t q = 0;
  for (; q + L::N <= Q; q += L::N) {
    Vec t0, t1, b0, b1;  // memcpy: unaligned loads without aliasing questions
    std::memcpy(&t0, top + 2 * q, sizeof(Vec));
    std::memcpy(&t1, top + 2 * q + L::N, sizeof(Vec));
    std::memcpy(&b0, bottom + 2 * q, sizeof(Vec));
    std::memcpy(&b1, bottom + 2 * q + L::N, sizeof(Vec));
    const Vec top_left = L::evens(t0, t1), top_right = L::odds(t0, t1);
    const Vec bottom_left = L::evens(b0, b1), bottom_right = L::odds(b0, b1);
    const Mask right_top = (top_right > top_left) | (top_right != top_right);
    const Mask right_bottom = (bottom_right > bottom_left) | (bottom_right != bottom_right);
    const Vec upper = right_top ? top_right : top_left, lower = right_bottom ? bottom_right : bottom_left;
    const Mask below = (lower > upper) | (lower != lower);
    const Vec best = below ? lower : upper;
    std::memcpy(out + q, &best, sizeof(Vec));
    if constexpr (kIndices) {  // masks are -1 (true) or 0
      using Wide = typename L::Wide;
      const Wide right = __builtin_convertvector(below ? right_bottom : right_top, Wide);
      const Wide down = __builtin_convertvector(below, Wide);
      const Wide at = (row_start + 2 * q) + L::left_columns() + (down & width) - right;
      std::memcpy(indices + q, &at, sizeof(Wide));
    }
  }
  for (; q < Q; ++q) {
    index_t at;
    out[q] = max_pool_2x2_one(top, width, q, &at);
    if constexpr (kIndices) indices[q] = row_start + at;
  }
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
    for_each_plane(s, [&](index_t plane) {
      const T* in = x + plane * s.H * s.W;
      for (index_t oh = 0; oh < s.P; ++oh) {
        const index_t o = (plane * s.P + oh) * s.Q, row_start = 2 * oh * s.W;
        if (indices)
          max_pool_2x2_row<T, true>(in + row_start, s.W, s.Q, y + o, indices + o, row_start);
        else
          max_pool_2x2_row<T, false>(in + row_start, s.W, s.Q, y + o, nullptr, row_start);
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
  for_each_plane(s, [&](index_t plane) {
    const T* in = x + plane * s.H * s.W;
    for (index_t oh = 0; oh < s.P; ++oh) {
      T* out = y + (plane * s.P + oh) * s.Q;
      std::fill(out, out + s.Q, T(0));
      for_each_avg_tap(s, oh, [&](index_t at, Range qs) {
        const T* src = in + at;
        for (index_t q = qs.lo; q < qs.hi; ++q) out[q] += src[q * w.stride[1]];
      });
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
      for_each_avg_tap(s, oh, [&](index_t at, Range qs) {
        T* dst = dx + at;
        for (index_t q = qs.lo; q < qs.hi; ++q) dst[q * w.stride[1]] += share[q];
      });
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
