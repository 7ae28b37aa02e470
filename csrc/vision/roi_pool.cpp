// roi_pool forward and backward (torchvision ops/cpu/roi_pool_kernel.cpp semantics).
//
// Backward determinism: as in roi_align.cpp, a thread owns a range of channels and adds only
// into those channels' planes, walking the boxes in order; each plane has one writer.
#include <algorithm>
#include <atomic>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/parallel.h"
#include "vision/roi_pool.h"

namespace fastconv::vision {

namespace {

// A bin's window [lo, hi) along one axis, clipped to the input.
struct Window {
  index_t lo, hi;
};

// Bin `i` of `bins` over a box side starting at pixel `start` and `size` pixels long, clipped to
// [0, limit): floor and ceil of the bin's fractional edges, as torchvision.
template <class T>
Window bin_window(index_t i, index_t bins, index_t start, index_t size, index_t limit) {
  const T bin = T(size) / T(bins);
  const index_t lo = static_cast<index_t>(std::floor(T(i) * bin)), hi = static_cast<index_t>(std::ceil(T(i + 1) * bin));
  return {std::clamp<index_t>(lo + start, 0, limit), std::clamp<index_t>(hi + start, 0, limit)};
}

// A box rounded to whole pixels (half away from zero) and at least one pixel on each side.
struct PixelBox {
  index_t batch, start_h, start_w, height, width;
};

template <class T>
PixelBox pixel_box(const T* boxes, index_t k, double spatial_scale) {
  const T* box = boxes + k * 5;
  const index_t x1 = std::lround(box[1] * spatial_scale), y1 = std::lround(box[2] * spatial_scale);
  const index_t x2 = std::lround(box[3] * spatial_scale), y2 = std::lround(box[4] * spatial_scale);
  return {roi_batch_index(boxes, k), y1, x1, std::max<index_t>(y2 - y1 + 1, 1), std::max<index_t>(x2 - x1 + 1, 1)};
}

// The maximum of plane over a window and its index; an empty window gives 0 and -1. The
// running maximum starts at -FLT_MAX for both types, as torchvision's does.
template <class T>
void window_max(const T* plane, index_t width, Window rows, Window cols, T* out, index_t* at) {
  const bool empty = rows.hi <= rows.lo || cols.hi <= cols.lo;
  T best = empty ? T(0) : T(-FLT_MAX);
  index_t best_index = -1;
  for (index_t h = rows.lo; h < rows.hi; ++h)
    for (index_t w = cols.lo; w < cols.hi; ++w)
      if (plane[h * width + w] > best) {
        best = plane[h * width + w];
        best_index = h * width + w;
      }
  *out = best;
  *at = best_index;
}

}  // namespace

template <class T>
void roi_pool_forward(const RoiShape& s, double spatial_scale, const T* input, const T* boxes, T* out,
                      std::int64_t* argmax) {
  const index_t plane = s.H * s.W, bins = s.bins();
  const std::vector<index_t> order = boxes_by_image(boxes, s.K);
  parallel_for(0, s.K * s.C, 1, [&](index_t lo, index_t hi) {
    // A box's bin windows serve all its channels: computed when the box changes.
    std::vector<Window> rows(s.PH), cols(s.PW);
    PixelBox b{};
    for (index_t item = lo, box = -1; item < hi; ++item) {
      const index_t k = order[item / s.C], c = item % s.C;
      if (k != box) {
        b = pixel_box(boxes, k, spatial_scale);
        for (index_t ph = 0; ph < s.PH; ++ph) rows[ph] = bin_window<T>(ph, s.PH, b.start_h, b.height, s.H);
        for (index_t pw = 0; pw < s.PW; ++pw) cols[pw] = bin_window<T>(pw, s.PW, b.start_w, b.width, s.W);
        box = k;
      }
      const index_t plane_start = (b.batch * s.C + c) * plane;
      for (index_t ph = 0; ph < s.PH; ++ph)
        for (index_t pw = 0; pw < s.PW; ++pw) {
          const index_t bin = (k * s.C + c) * bins + ph * s.PW + pw;
          index_t at;
          window_max(input + plane_start, s.W, rows[ph], cols[pw], out + bin, &at);
          argmax[bin] = at < 0 ? -1 : plane_start + at;
        }
    }
  });
}

namespace {

// The first entry of argmax (flat index) that is neither -1 nor an index into its own channel's
// plane of some image, or K * C * bins when every entry is.
index_t first_bad_argmax(const RoiShape& s, const std::int64_t* argmax) {
  const index_t plane = s.H * s.W, image = s.C * plane, numel = s.N * image, bins = s.bins(), total = s.K * s.C * bins;
  for (index_t i = 0; i < total; ++i) {
    const std::int64_t at = argmax[i];
    const index_t c = i / bins % s.C;
    if (at == -1 || (at >= 0 && at < numel && at % image >= c * plane && at % image < (c + 1) * plane)) continue;
    return i;
  }
  return total;
}

}  // namespace

// The backward validates argmax while it scatters (one compare per entry, in the pass that reads
// argmax anyway), raising this same error; a separate pass over the int64 argmax cost as much
// as a third of the backward.
void check_roi_pool_argmax(const RoiShape&, const std::int64_t*) {}

template <class T>
void roi_pool_backward(const RoiShape& s, const T* grad_out, const std::int64_t* argmax, T* grad_input) {
  const index_t plane = s.H * s.W, image = s.C * plane, numel = s.N * image, bins = s.bins();
  std::atomic<bool> bad{false};
  // A thread owns whole channels and finishes one before the next: channel c's N planes (40 KB
  // at 50x50) stay in cache while every box adds into them, where walking boxes outermost
  // swept all of the thread's planes per box. Each pixel still adds its terms in box order.
  parallel_for(0, s.C, 1, [&](index_t c0, index_t c1) {
    for (index_t c = c0; c < c1; ++c) {
      for (index_t n = 0; n < s.N; ++n) std::memset(grad_input + (n * s.C + c) * plane, 0, sizeof(T) * plane);
      index_t expect = c * plane;  // the plane an entry most likely indexes: the last valid one's
      for (index_t k = 0; k < s.K; ++k) {
        const std::int64_t* at = argmax + (k * s.C + c) * bins;
        const T* g = grad_out + (k * s.C + c) * bins;
        for (index_t i = 0; i < bins; ++i) {
          if (at[i] == -1) continue;
          if (static_cast<std::uint64_t>(at[i] - expect) >= static_cast<std::uint64_t>(plane)) {
            // Another image's plane of channel c, or not an index into channel c at all.
            const bool valid = at[i] >= 0 && at[i] < numel && at[i] % image >= c * plane && at[i] % image < (c + 1) * plane;
            if (!valid) {
              bad.store(true, std::memory_order_relaxed);
              continue;
            }
            expect = at[i] / image * image + c * plane;
          }
          grad_input[at[i]] += g[i];
        }
      }
    }
  });
  if (!bad.load()) return;
  const index_t i = first_bad_argmax(s, argmax), item = i / bins, bin = i % bins;
  fail<ValueError>("argmax: entry ", argmax[i], " at (", item / s.C, ", ", item % s.C, ", ", bin / s.PW, ", ",
                   bin % s.PW, ") is neither -1 nor an index into input's channel ", item % s.C);
}

#define FASTCONV_INSTANTIATE(T)                                                                      \
  template void roi_pool_forward<T>(const RoiShape&, double, const T*, const T*, T*, std::int64_t*); \
  template void roi_pool_backward<T>(const RoiShape&, const T*, const std::int64_t*, T*);
FASTCONV_INSTANTIATE(float)
FASTCONV_INSTANTIATE(double)
#undef FASTCONV_INSTANTIATE

}  // namespace fastconv::vision
