// Pooling over channels_last memory (N, H, W, C): a pixel's C channels are adjacent, so every
// window tap is one contiguous, vectorised pass over the channels of one input pixel into those
// of one output pixel, and no window arithmetic is repeated per channel. Forward kernels take
// one output row (image, oh) per task. The backward kernels scatter (max_pool2d's gathers
// where windows do not overlap): a task owns one image's block of channels of grad_x, which no
// other task writes. The loops over a pixel's channels are pool_loops.h's, compiled per ISA.
//
// For a fixed output the taps are visited in PyTorch's order (row-major over the window), so max
// pooling's values, ties, NaNs and indices, average pooling's sums and adaptive pooling both
// ways are the NCHW kernels' bit for bit. avg_pool2d's backward adds overlapping windows'
// shares to an input in another order (output by output here): equal to float rounding.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <limits>
#include <vector>

#include "common/conv_geometry.h"
#include "common/pool_geometry.h"
#include "core/parallel.h"
#include "pool/cpu/pool.h"
#include "pool/cpu/pool_loops.h"

namespace fastconv::pool::cpu {

namespace {

using conv::Range;

// The taps t in [0, kernel) of a window starting at `start` whose coordinate start + t *
// dilation lies in [0, limit). In ceil mode a window may be far longer than the padded input
// (kernel 2^30): the loops run over these taps only, so their cost is the input's.
Range window_taps(index_t start, index_t kernel, index_t dilation, index_t limit) {
  const index_t lo = start >= 0 ? 0 : (-start + dilation - 1) / dilation;
  const index_t hi = start >= limit ? 0 : std::min(kernel, (limit - start + dilation - 1) / dilation);
  return {std::min(lo, hi), hi};
}

// fn(n, oh) for every output row, the rows split among threads.
template <class Fn>
void for_each_output_row(const Pool2dShape& s, const Fn& fn) {
  parallel_for(0, s.N * s.P, 1, [&](index_t lo, index_t hi) {
    for (index_t row = lo; row < hi; ++row) fn(row / s.P, row % s.P);
  });
}

// Channels per task of a backward kernel: whole pixels for the usual widths, blocks of them
// beyond, so that wide layers still split among threads. Blocks of 8 or 16 ran 3x slower at
// C = 64: each task then reads grad_output and the indices in strided pieces.
constexpr index_t kChannelBlock = 64;

// fn(n, c0, c1, dx) for every image n and block [c0, c1) of its channels; dx is image n's grad_x.
template <class T, class Fn>
void for_each_channel_block(const Pool2dShape& s, T* grad_x, const Fn& fn) {
  const index_t blocks = (s.C + kChannelBlock - 1) / kChannelBlock;
  parallel_for(0, s.N * blocks, 1, [&](index_t lo, index_t hi) {
    for (index_t task = lo; task < hi; ++task) {
      const index_t n = task / blocks, c0 = task % blocks * kChannelBlock, c1 = std::min(s.C, c0 + kChannelBlock);
      fn(n, c0, c1, grad_x + n * s.H * s.W * s.C);
    }
  });
}

// Zeroes channels [c0, c1) of every pixel of image dx.
template <class T>
void zero_channels(const Pool2dShape& s, index_t c0, index_t c1, T* dx) {
  const index_t HW = s.H * s.W;
  if (c1 - c0 == s.C) std::fill(dx, dx + HW * s.C, T(0));  // the whole image: one contiguous span
  else
    for (index_t pixel = 0; pixel < HW; ++pixel) std::fill(dx + pixel * s.C + c0, dx + pixel * s.C + c1, T(0));
}

// for_each_channel_block with each block of grad_x zeroed first.
template <class T, class Fn>
void for_each_gradient_block(const Pool2dShape& s, T* grad_x, const Fn& fn) {
  for_each_channel_block(s, grad_x, [&](index_t n, index_t c0, index_t c1, T* dx) {
    zero_channels(s, c0, c1, dx);
    fn(n, c0, c1, dx);
  });
}

// max_pool2d's backward for image n's channels [c0, c1) of zeroed gradients, one channel at a
// time: each output's gradient added where its index points. An index outside the plane marks
// a window with no input in it (possible with dilation): nothing to route.
template <class T>
void scatter_max_gradient(const Pool2dShape& s, index_t n, index_t c0, index_t c1, const T* grad_y,
                          const std::int64_t* indices, T* dx) {
  const index_t HW = s.H * s.W, PQ = s.P * s.Q, C = s.C;
  for (index_t o = n * PQ; o < (n + 1) * PQ; ++o) {
    const T* dy = grad_y + o * C;
    const std::int64_t* idx = indices + o * C;
    for (index_t c = c0; c < c1; ++c)
      if (idx[c] >= 0 && idx[c] < HW) dx[idx[c] * C + c] += dy[c];
  }
}

// The same as a gather: the backward has no window, but where windows do not overlap (2x2 at
// stride 2, the usual case) the inputs an output (oh, ow) can point at lie in the block of
// H / P rows from row oh * (H / P) and W / Q columns from column ow * (W / Q). Each of its
// pixels takes the output's gradient where the index names it, else 0 (pool_loops.h's
// gather_max_gradient_cl): contiguous and vectorised over the channels, each value written
// once, no zeroing. An index can match once at most, so all of them were routed if the matches
// number the indices inside the plane; otherwise (overlapping windows, or a caller's own
// indices) returns false, the block part written.
template <class T>
bool gather_max_gradient(const Pool2dShape& s, index_t n, index_t c0, index_t c1, const T* grad_y,
                         const std::int64_t* indices, T* dx) {
  const index_t rows = s.H / s.P, columns = s.W / s.Q, C = s.C;
  if (rows == 0 || columns == 0) return false;  // more outputs than inputs: padding
  if (s.H * s.W > std::numeric_limits<LaneIndex<T>>::max()) return false;  // pixels past T-wide lanes
  const auto gather = pool_loops<T>().gather_max_gradient_cl;
  std::vector<LaneIndex<T>> lanes(static_cast<std::size_t>(c1 - c0));
  std::int64_t balance = 0;  // matches less indices inside the plane
  for (index_t oh = 0; oh < s.P; ++oh)
    for (index_t ow = 0; ow < s.Q; ++ow) {
      const index_t o = (n * s.P + oh) * s.Q + ow;
      balance += gather(grad_y + o * C + c0, indices + o * C + c0, c1 - c0, C, rows, columns, s.W,
                        oh * rows * s.W + ow * columns, s.H * s.W, lanes.data(), dx + c0);
    }
  // the pixels no block covers: the rows below the last and the columns right of it
  for (index_t h = 0; h < s.H; ++h)
    for (index_t w = h < s.P * rows ? s.Q * columns : 0; w < s.W; ++w)
      std::fill(dx + (h * s.W + w) * C + c0, dx + (h * s.W + w) * C + c1, T(0));
  return balance == 0;
}

// One output pixel of max pooling. PyTorch starts from -inf and the index of the window's first
// tap inside the input; its first update then takes that tap whatever its value (a -inf is not
// taken, but is the same value), so the fold starts at that tap. A window with no input (dilated
// over padding) keeps -inf and that index, past the plane.
template <class T, bool kIndices>
void max_pool_pixel(const Pool2dShape& s, const T* image, index_t oh, index_t ow, T* y, LaneIndex<T>* indices) {
  const auto& w = s.win;
  const index_t C = s.C, h0 = oh * w.stride[0] - w.padding[0], w0 = ow * w.stride[1] - w.padding[1];
  const index_t first = first_tap(h0, w.dilation[0]) * s.W + first_tap(w0, w.dilation[1]);
  if constexpr (kIndices) std::fill(indices, indices + C, static_cast<LaneIndex<T>>(first));
  const Range rows = window_taps(h0, w.kernel[0], w.dilation[0], s.H);
  const Range columns = window_taps(w0, w.kernel[1], w.dilation[1], s.W);
  if (rows.lo == rows.hi || columns.lo == columns.hi) {
    std::fill(y, y + C, -std::numeric_limits<T>::infinity());
    return;
  }
  std::copy(image + first * C, image + (first + 1) * C, y);
  const auto max_tap = pool_loops<T>().max_tap_cl[kIndices];
  for (index_t r = rows.lo; r < rows.hi; ++r)
    for (index_t k = r == rows.lo ? columns.lo + 1 : columns.lo; k < columns.hi; ++k) {
      const index_t at = (h0 + r * w.dilation[0]) * s.W + w0 + k * w.dilation[1];
      max_tap(image + at * C, C, static_cast<LaneIndex<T>>(at), y, indices);
    }
}

// The input window [start, end) of output (oh, ow) of avg_pool2d, and its divisor.
struct AvgWindow {
  AvgExtent h, w;
  static AvgWindow of(const Pool2dShape& s, index_t oh, index_t ow) {
    const auto& win = s.win;
    return {avg_extent(oh, win.stride[0], win.padding[0], win.kernel[0], s.H),
            avg_extent(ow, win.stride[1], win.padding[1], win.kernel[1], s.W)};
  }
};

// The input window of adaptive pooling's output (oh, ow), as an AvgWindow whose divisor PyTorch
// applies in two divisions.
AvgWindow adaptive_window(const Pool2dShape& s, index_t oh, index_t ow) {
  const index_t h0 = adaptive_start(oh, s.H, s.P), h1 = adaptive_end(oh, s.H, s.P);
  const index_t w0 = adaptive_start(ow, s.W, s.Q), w1 = adaptive_end(ow, s.W, s.Q);
  return {{h0, h1, h1 - h0}, {w0, w1, w1 - w0}};
}

// y[c] = the sum of the window's pixels' channel c, in PyTorch's order.
template <class T>
void sum_window(const Pool2dShape& s, const T* image, const AvgWindow& win, T* y) {
  pool_loops<T>().sum_window_cl(image, s.W, s.C, win.h.start, win.h.end, win.w.start, win.w.end, s.C, y);
}

// dx[window pixels][c0, c1) += share[c0, c1).
template <class T>
void spread_window(const Pool2dShape& s, const AvgWindow& win, const T* share, index_t c0, index_t c1, T* dx) {
  pool_loops<T>().spread_window_cl(share + c0, s.W, s.C, win.h.start, win.h.end, win.w.start, win.w.end, c1 - c0,
                                   dx + c0);
}

// Every output pixel of a window pooling: fn(image, oh, ow, y) with y the pixel's C outputs.
template <class T, class Fn>
void for_each_output_pixel(const Pool2dShape& s, const T* x, T* y, const Fn& fn) {
  for_each_output_row(s, [&](index_t n, index_t oh) {
    const T* image = x + n * s.H * s.W * s.C;
    for (index_t ow = 0; ow < s.Q; ++ow) fn(image, oh, ow, y + ((n * s.P + oh) * s.Q + ow) * s.C);
  });
}

// The backward of a window pooling: share(window, dy, share) fills channels [c0, c1) of `share`
// with what output pixel dy gives each input of its window, which is then spread over it.
template <class T, class Window, class Share>
void spread_windows(const Pool2dShape& s, const T* grad_y, T* grad_x, const Window& window, const Share& share) {
  for_each_gradient_block(s, grad_x, [&](index_t n, index_t c0, index_t c1, T* dx) {
    std::vector<T> shares(static_cast<std::size_t>(s.C));
    for (index_t oh = 0; oh < s.P; ++oh)
      for (index_t ow = 0; ow < s.Q; ++ow) {
        const AvgWindow win = window(oh, ow);
        const T* dy = grad_y + ((n * s.P + oh) * s.Q + ow) * s.C;
        share(win, dy, c0, c1, shares.data());
        spread_window(s, win, shares.data(), c0, c1, dx);
      }
  });
}

}  // namespace

template <class T>
void max_pool2d_forward_channels_last(const Pool2dShape& s, const T* x, T* y, std::int64_t* indices) {
  for_each_output_row(s, [&](index_t n, index_t oh) {
    const T* image = x + n * s.H * s.W * s.C;
    std::vector<LaneIndex<T>> pixel_indices(indices ? s.C : 0);
    for (index_t ow = 0; ow < s.Q; ++ow) {
      const index_t o = ((n * s.P + oh) * s.Q + ow) * s.C;
      if (!indices) {
        max_pool_pixel<T, false>(s, image, oh, ow, y + o, nullptr);
        continue;
      }
      max_pool_pixel<T, true>(s, image, oh, ow, y + o, pixel_indices.data());
      std::copy(pixel_indices.begin(), pixel_indices.end(), indices + o);
    }
  });
}

template <class T>
void max_pool2d_backward_channels_last(const Pool2dShape& s, const T* grad_y, const std::int64_t* indices,
                                       T* grad_x) {
  std::atomic<bool> gather_failed{false};  // windows overlap: the other blocks will not gather either
  for_each_channel_block(s, grad_x, [&](index_t n, index_t c0, index_t c1, T* dx) {
    if (!gather_failed.load(std::memory_order_relaxed) && gather_max_gradient(s, n, c0, c1, grad_y, indices, dx))
      return;
    gather_failed.store(true, std::memory_order_relaxed);
    zero_channels(s, c0, c1, dx);
    scatter_max_gradient(s, n, c0, c1, grad_y, indices, dx);
  });
}

template <class T>
void avg_pool2d_forward_channels_last(const Pool2dShape& s, bool count_include_pad, index_t divisor_override,
                                      const T* x, T* y) {
  for_each_output_pixel(s, x, y, [&](const T* image, index_t oh, index_t ow, T* __restrict out) {
    const AvgWindow win = AvgWindow::of(s, oh, ow);
    sum_window(s, image, win, out);
    const T divisor = avg_divisor<T>(count_include_pad, divisor_override, win.h, win.w);
    pool_loops<T>().divide_cl[0](out, s.C, divisor, T(1), out);
  });
}

template <class T>
void avg_pool2d_backward_channels_last(const Pool2dShape& s, bool count_include_pad, index_t divisor_override,
                                       const T* grad_y, T* grad_x) {
  spread_windows(s, grad_y, grad_x, [&](index_t oh, index_t ow) { return AvgWindow::of(s, oh, ow); },
                 [&](const AvgWindow& win, const T* dy, index_t c0, index_t c1, T* share) {
                   const T divisor = avg_divisor<T>(count_include_pad, divisor_override, win.h, win.w);
                   pool_loops<T>().divide_cl[0](dy + c0, c1 - c0, divisor, T(1), share + c0);
                 });
}

template <class T>
void adaptive_avg_pool2d_forward_channels_last(const Pool2dShape& s, const T* x, T* y) {
  for_each_output_pixel(s, x, y, [&](const T* image, index_t oh, index_t ow, T* __restrict out) {
    const AvgWindow win = adaptive_window(s, oh, ow);
    sum_window(s, image, win, out);
    pool_loops<T>().divide_cl[1](out, s.C, T(win.h.padded_size), T(win.w.padded_size), out);  // as PyTorch: twice
  });
}

template <class T>
void adaptive_avg_pool2d_backward_channels_last(const Pool2dShape& s, const T* grad_y, T* grad_x) {
  spread_windows(s, grad_y, grad_x, [&](index_t oh, index_t ow) { return adaptive_window(s, oh, ow); },
                 [&](const AvgWindow& win, const T* dy, index_t c0, index_t c1, T* share) {
                   pool_loops<T>().divide_cl[1](dy + c0, c1 - c0, T(win.h.padded_size), T(win.w.padded_size),
                                                share + c0);
                 });
}

#define FASTCONV_INSTANTIATE(T)                                                                                 \
  template void max_pool2d_forward_channels_last<T>(const Pool2dShape&, const T*, T*, std::int64_t*);          \
  template void max_pool2d_backward_channels_last<T>(const Pool2dShape&, const T*, const std::int64_t*, T*);   \
  template void avg_pool2d_forward_channels_last<T>(const Pool2dShape&, bool, index_t, const T*, T*);           \
  template void avg_pool2d_backward_channels_last<T>(const Pool2dShape&, bool, index_t, const T*, T*);          \
  template void adaptive_avg_pool2d_forward_channels_last<T>(const Pool2dShape&, const T*, T*);                 \
  template void adaptive_avg_pool2d_backward_channels_last<T>(const Pool2dShape&, const T*, T*);
FASTCONV_INSTANTIATE(float)
FASTCONV_INSTANTIATE(double)
#undef FASTCONV_INSTANTIATE

}  // namespace fastconv::pool::cpu
