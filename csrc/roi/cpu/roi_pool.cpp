// roi_pool forward and backward (torchvision ops/cpu/roi_pool_kernel.cpp semantics).
//
// Backward determinism: as in roi_align.cpp, a thread owns a range of channels and adds only
// into those channels' planes, walking the boxes in order; each plane has one writer.
#include <algorithm>
#include <atomic>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "core/errors.h"
#include "core/isa.h"
#include "core/parallel.h"
#include "core/scratch.h"
#include "roi/cpu/box_tiles.h"
#include "roi/cpu/roi_pool.h"

namespace fastconv::roi::cpu {

namespace {

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

#if FASTCONV_X86
// ---- forward, 8 channels at a time (float, AVX2) ----
//
// Scalar, a bin's window max is a chain of compares and unpredictable branches per pixel and
// channel. Here a box's region of 8 channels is copied into a channels-last tile, and each
// window pixel is one 8-wide compare and two blends (value, index) for 8 channels at once. The
// semantics are the scalar loop's: row-major order, strictly greater (first maximum kept, NaN
// never taken), running maximum from -FLT_MAX, index -1 until something beats it.

// A box's bin windows and the region they cover.
struct PoolBox {
  index_t batch;
  std::vector<Window> rows, cols;
  Window region_rows, region_cols;  // empty when every bin is
};

PoolBox pool_box(const RoiShape& s, const float* boxes, index_t k, double spatial_scale) {
  const PixelBox b = pixel_box(boxes, k, spatial_scale);
  PoolBox p{b.batch, std::vector<Window>(s.PH), std::vector<Window>(s.PW), {0, 0}, {0, 0}};
  for (index_t ph = 0; ph < s.PH; ++ph) p.rows[ph] = bin_window<float>(ph, s.PH, b.start_h, b.height, s.H);
  for (index_t pw = 0; pw < s.PW; ++pw) p.cols[pw] = bin_window<float>(pw, s.PW, b.start_w, b.width, s.W);
  // Bin windows are clipped runs whose union is one run per axis.
  auto cover = [](const std::vector<Window>& windows) {
    Window r{0, 0};
    for (const Window& w : windows)
      if (w.hi > w.lo) r = r.hi > r.lo ? Window{std::min(r.lo, w.lo), std::max(r.hi, w.hi)} : w;
    return r;
  };
  p.region_rows = cover(p.rows);
  p.region_cols = cover(p.cols);
  return p;
}

// The bins of one box for `lanes` (<= 8) planes starting at `in` (channel c0 of its image, whose
// first element is input index plane_start): values to out[j * bins + bin], indices to argmax.
__attribute__((target("avx2"))) void pool_eight_channels(const RoiShape& s, const PoolBox& box, const float* in,
                                                         index_t plane_start, int lanes, float* tile, float* values,
                                                         std::int32_t* indices, float* out, std::int64_t* argmax) {
  constexpr int L = kTileLanes;
  const index_t plane = s.H * s.W, bins = s.bins();
  const index_t r0 = box.region_rows.lo, c0 = box.region_cols.lo, span = box.region_cols.hi - c0;
  for (index_t h = r0; h < box.region_rows.hi; ++h)
    copy_span_x8(in + h * s.W + c0, plane, lanes, span, tile + (h - r0) * span * L);
  for (index_t ph = 0; ph < s.PH; ++ph)
    for (index_t pw = 0; pw < s.PW; ++pw) {
      const Window rows = box.rows[ph], cols = box.cols[pw];
      const index_t bin = ph * s.PW + pw;
      __m256 best = _mm256_set1_ps(-FLT_MAX);
      __m256i at = _mm256_set1_epi32(-1);
      for (index_t h = rows.lo; h < rows.hi; ++h)
        for (index_t w = cols.lo; w < cols.hi; ++w) {
          const __m256 v = _mm256_load_ps(tile + ((h - r0) * span + w - c0) * L);
          const __m256 greater = _mm256_cmp_ps(v, best, _CMP_GT_OQ);
          best = _mm256_blendv_ps(best, v, greater);
          at = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(at),
                                                    _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(h * s.W + w))),
                                                    greater));
        }
      if (rows.hi <= rows.lo || cols.hi <= cols.lo) best = _mm256_setzero_ps();  // empty bin: 0, index -1
      _mm256_store_ps(values + bin * L, best);
      _mm256_store_si256(reinterpret_cast<__m256i*>(indices + bin * L), at);
    }
  for (int j = 0; j < lanes; ++j)
    for (index_t bin = 0; bin < bins; ++bin) {
      const std::int32_t i = indices[bin * L + j];
      out[j * bins + bin] = values[bin * L + j];
      argmax[j * bins + bin] = i < 0 ? -1 : plane_start + j * plane + i;
    }
}

// The float forward with AVX2: work items are (group of 8 channels, image), as roi_align's, so
// that the group's planes stay in L2 while all the image's boxes read them.
void roi_pool_forward_avx2(const RoiShape& s, double spatial_scale, const float* input, const float* boxes,
                           float* out, std::int64_t* argmax) {
  constexpr int L = kTileLanes;
  const index_t plane = s.H * s.W, bins = s.bins(), groups = ceil_div(s.C, index_t(L));
  const std::vector<index_t> order = boxes_by_image(boxes, s.K);
  const std::vector<index_t> image_start = image_starts(boxes, s.K, s.N);
  std::vector<PoolBox> pool_boxes(s.K);
  index_t largest = 0;
  for (index_t k = 0; k < s.K; ++k) {
    pool_boxes[k] = pool_box(s, boxes, k, spatial_scale);
    const PoolBox& b = pool_boxes[k];
    largest = std::max(largest, (b.region_rows.hi - b.region_rows.lo) * (b.region_cols.hi - b.region_cols.lo));
  }
  parallel_for(0, groups * s.N, 1, [&](index_t lo, index_t hi) {
    // tile, then values (bins x 8) and indices (bins x 8), each 32-byte aligned
    std::vector<float> storage((largest + 2 * bins) * L + L);
    float* tile = storage.data() + (32 - reinterpret_cast<std::uintptr_t>(storage.data()) % 32) % 32 / sizeof(float);
    float* values = tile + largest * L;
    std::int32_t* indices = reinterpret_cast<std::int32_t*>(values + bins * L);
    for (index_t item = lo; item < hi; ++item) {
      const index_t n = item % s.N, c0 = item / s.N * L;
      const int lanes = static_cast<int>(std::min<index_t>(L, s.C - c0));
      const index_t plane_start = (n * s.C + c0) * plane;
      for (index_t i = image_start[n]; i < image_start[n + 1]; ++i) {
        const index_t k = order[i];
        pool_eight_channels(s, pool_boxes[k], input + plane_start, plane_start, lanes, tile, values, indices,
                            out + (k * s.C + c0) * bins, argmax + (k * s.C + c0) * bins);
      }
    }
  });
}
#endif  // FASTCONV_X86

}  // namespace

template <class T>
void roi_pool_forward(const RoiShape& s, double spatial_scale, const T* input, const T* boxes, T* out,
                      std::int64_t* argmax) {
  if (s.K * s.C == 0) return;  // an empty output: no per-thread scratch for bins it never fills
#if FASTCONV_X86
  if constexpr (std::is_same_v<T, float>) {
    // the tile's indices are 32-bit
    if (active_isa() >= Isa::avx2 && s.H * s.W <= INT32_MAX) return roi_pool_forward_avx2(s, spatial_scale, input, boxes, out, argmax);
  }
#endif
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
// argmax anyway): a separate pass over the int64 argmax cost as much as a third of the backward.
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

}  // namespace fastconv::roi::cpu
