// roi_align forward and backward (torchvision ops/cpu/roi_align_kernel.cpp semantics).
//
// The bilinear samples of a box depend on the box only, not on the channel, so each thread
// builds a box's sample table once (every bin's grid of samples: four offsets and weights each)
// and applies it to all the channels it was given.
//
// Backward determinism: boxes overlap, so several output bins add into the same input pixel.
// The backward splits the work by channel: a thread owns channels [c0, c1) of every image, walks
// all boxes (image by image, each image's in box order) and adds only into its own planes. Each
// input-gradient plane has exactly one writer and a fixed order of additions, so results are
// race-free and bitwise reproducible whatever the number of threads.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "common/bilinear.h"
#include "core/isa.h"
#include "core/parallel.h"
#include "core/scratch.h"
#include "roi/cpu/box_tiles.h"
#include "roi/cpu/roi_align.h"

#if FASTCONV_X86
#include <immintrin.h>
#endif

namespace fastconv::roi::cpu {

namespace {

using bilinear::Sample;

// table[(ph * PW + pw) * samples + iy * grid_w + ix]: the samples of every bin of the box.
template <class T>
void build_sample_table(const RoiShape& s, const AlignedBox<T>& b, std::vector<Sample<T>>& table) {
  const index_t samples = samples_per_bin(b);
  table.resize(s.bins() * samples);
  Sample<T>* out = table.data();
  for (index_t ph = 0; ph < s.PH; ++ph)
    for (index_t pw = 0; pw < s.PW; ++pw)
      for (index_t iy = 0; iy < b.grid_h; ++iy) {
        const T y = b.start_h + T(ph) * b.bin_h + T(iy + .5f) * b.bin_h / T(b.grid_h);
        for (index_t ix = 0; ix < b.grid_w; ++ix) {
          const T x = b.start_w + T(pw) * b.bin_w + T(ix + .5f) * b.bin_w / T(b.grid_w);
          bilinear::roi_align_sample(y, x, s.H, s.W, out++);
        }
      }
}

// A sample more than a pixel outside the plane (roi_align_sample's zero sample): it adds 0 and
// reads nothing, as in torchvision's CUDA kernel, so that a NaN pixel leaks into no bin that does
// not sample it. (A sample inside the plane has weights summing to 1.)
template <class T>
bool outside_plane(const Sample<T>& q) {
  return q.weight[0] == T(0) && q.weight[1] == T(0) && q.weight[2] == T(0) && q.weight[3] == T(0);
}

// The mean of one bin's samples of a plane, summed in torchvision's order.
template <class T>
T bin_average(const T* plane, const Sample<T>* samples, index_t count) {
  T sum = 0;
  for (index_t i = 0; i < count; ++i) {
    const Sample<T>& q = samples[i];
    if (outside_plane(q)) continue;
    sum += q.weight[0] * plane[q.offset[0]] + q.weight[1] * plane[q.offset[1]] +
           q.weight[2] * plane[q.offset[2]] + q.weight[3] * plane[q.offset[3]];
  }
  return sum / T(std::max<index_t>(count, 1));
}

#if FASTCONV_X86
// ---- forward, 8 channels at a time (float, AVX2) ----
//
// Per channel, the scalar path spends most of its time loading each sample's four offsets and
// weights again for every plane. Here a box's samples read a small lattice of pixels: the rows
// and columns its corners touch (at most 2 * PH * grid_h by 2 * PW * grid_w, fewer for small
// boxes whose samples share pixels). The lattice of 8 channels is copied into a channels-last
// tile, so that each sample is four 8-wide loads and multiply-adds for 8 channels at once. The
// arithmetic is the scalar path's (separate multiplies and adds, same order): same bits.

constexpr int kLanes = kTileLanes;

// A sample of the tile: its four corners as element offsets of 8-channel pixels (64-bit: a box
// over a plane of more than 2^28 pixels has a tile of more than 2^31 floats), and weights.
struct TileSample {
  index_t at[4];
  float weight[4];
};

// The lattice a box's samples read: pixel row and column lists, and the samples re-indexed onto
// it. The corners of samples outside the plane read the zero pixel that follows the lattice in
// the tile (zero_pixel()), so that they add 0 whatever the plane holds.
struct BoxLattice {
  std::vector<index_t> rows, cols;
  std::vector<TileSample> samples;
  std::vector<std::int32_t> row_at, col_at;  // pixel row/column -> lattice index, -1 if unused
  bool contiguous = false;                    // cols is a run of consecutive columns

  // The tile offset of the zero pixel after the lattice's rows x cols pixels.
  index_t zero_pixel() const { return static_cast<index_t>(rows.size() * cols.size()) * kLanes; }

  void build(const RoiShape& s, const std::vector<Sample<float>>& table) {
    row_at.assign(s.H, -1);
    col_at.assign(s.W, -1);
    for (const Sample<float>& q : table)
      for (int k = 0; k < 4 && !outside_plane(q); ++k) {
        row_at[q.offset[k] / s.W] = 0;
        col_at[q.offset[k] % s.W] = 0;
      }
    rows.clear();
    cols.clear();
    for (index_t h = 0; h < s.H; ++h)
      if (row_at[h] >= 0) row_at[h] = static_cast<std::int32_t>(rows.size()), rows.push_back(h);
    for (index_t w = 0; w < s.W; ++w)
      if (col_at[w] >= 0) col_at[w] = static_cast<std::int32_t>(cols.size()), cols.push_back(w);
    // Small and mid-sized boxes read nearly every column between their first and last: then the
    // tile takes that whole span, so that rows copy in runs of 8 (see copy_span_x8).
    // (A box without samples has an empty lattice.)
    const index_t span = cols.empty() ? 0 : cols.back() - cols.front() + 1;
    contiguous = !cols.empty() && span <= 2 * static_cast<index_t>(cols.size()) + kLanes;
    if (contiguous) {
      const index_t first = cols.front();
      cols.resize(span);
      for (index_t w = 0; w < span; ++w) cols[w] = first + w, col_at[first + w] = static_cast<std::int32_t>(w);
    }
    samples.resize(table.size());
    const index_t ncols = static_cast<index_t>(cols.size());
    for (std::size_t i = 0; i < table.size(); ++i)
      for (int k = 0; k < 4; ++k) {
        const index_t off = table[i].offset[k];
        const index_t lattice_pixel = row_at[off / s.W] * ncols + col_at[off % s.W];
        samples[i].at[k] = outside_plane(table[i]) ? zero_pixel() : lattice_pixel * kLanes;
        samples[i].weight[k] = table[i].weight[k];
      }
  }
};

// out[j * out_stride + bin] for the `lanes` (<= 8) planes at `in`, plane_size apart: copies the
// lattice into `tile` (pixel-major, 8 channels a pixel; lanes past `lanes` are left as they are
// and never stored) followed by the zero pixel, then averages each bin's samples into `result` (bins x 8, aligned) and
// stores them.
__attribute__((target("avx2"))) void align_eight_channels(const BoxLattice& lat, index_t width, index_t plane_size,
                                                          const float* in, int lanes, index_t bins, index_t samples,
                                                          float* tile, float* result, float* out, index_t out_stride) {
  const index_t nrows = static_cast<index_t>(lat.rows.size()), ncols = static_cast<index_t>(lat.cols.size());
  if (lat.contiguous) {
    for (index_t r = 0; r < nrows; ++r) copy_span_x8(in + lat.rows[r] * width + lat.cols[0], plane_size, lanes, ncols,
                                                  tile + r * ncols * kLanes);
  } else {
    for (int j = 0; j < lanes; ++j) {
      const float* plane = in + j * plane_size;
      for (index_t r = 0; r < nrows; ++r) {
        const float* row = plane + lat.rows[r] * width;
        float* dst = tile + r * ncols * kLanes + j;
        for (index_t c = 0; c < ncols; ++c) dst[c * kLanes] = row[lat.cols[c]];
      }
    }
  }
  _mm256_store_ps(tile + lat.zero_pixel(), _mm256_setzero_ps());
  const __m256 divisor = _mm256_set1_ps(float(std::max<index_t>(samples, 1)));
  const TileSample* q = lat.samples.data();
  for (index_t bin = 0; bin < bins; ++bin) {
    __m256 sum = _mm256_setzero_ps();
    for (index_t i = 0; i < samples; ++i, ++q) {
      // w0 * v0 + w1 * v1 + w2 * v2 + w3 * v3, left to right, unfused: the scalar path's bits
      __m256 v = _mm256_mul_ps(_mm256_set1_ps(q->weight[0]), _mm256_load_ps(tile + q->at[0]));
      v = _mm256_add_ps(v, _mm256_mul_ps(_mm256_set1_ps(q->weight[1]), _mm256_load_ps(tile + q->at[1])));
      v = _mm256_add_ps(v, _mm256_mul_ps(_mm256_set1_ps(q->weight[2]), _mm256_load_ps(tile + q->at[2])));
      v = _mm256_add_ps(v, _mm256_mul_ps(_mm256_set1_ps(q->weight[3]), _mm256_load_ps(tile + q->at[3])));
      sum = _mm256_add_ps(sum, v);
    }
    _mm256_store_ps(result + bin * kLanes, _mm256_div_ps(sum, divisor));
  }
  // result is bin-major; each channel's bins are a contiguous run of out
  for (int j = 0; j < lanes; ++j)
    for (index_t bin = 0; bin < bins; ++bin) out[j * out_stride + bin] = result[bin * kLanes + j];
}

// A 32-byte aligned float buffer that only grows.
struct AlignedBuffer {
  std::vector<float> storage;
  float* get(std::size_t n) {
    storage.resize(n + kLanes);
    const auto p = reinterpret_cast<std::uintptr_t>(storage.data());
    return storage.data() + ((32 - p % 32) % 32) / sizeof(float);
  }
};

// The float forward with AVX2. First every box's lattice (in parallel over boxes); then work
// items are (group of 8 channels, image): an item's 8 planes are contiguous (80 KB for 50x50)
// and stay in L2 while all the image's boxes are sampled from them, instead of every box
// pulling its region of all C planes from memory again.
void roi_align_forward_avx2(const RoiShape& s, const RoiAlignParams& p, const float* input, const float* boxes,
                            float* out) {
  const index_t plane = s.H * s.W, bins = s.bins(), groups = ceil_div(s.C, index_t(kLanes));
  const std::vector<index_t> order = boxes_by_image(boxes, s.K);
  const std::vector<index_t> image_start = image_starts(boxes, s.K, s.N);
  std::vector<BoxLattice> lattices(s.K);
  std::vector<index_t> samples(s.K);
  std::size_t largest_tile = 0;
  parallel_for(0, s.K, 1, [&](index_t lo, index_t hi) {
    std::vector<Sample<float>> table;
    for (index_t k = lo; k < hi; ++k) {
      const AlignedBox<float> b = aligned_box(s, p, boxes, k);
      build_sample_table(s, b, table);
      samples[k] = samples_per_bin(b);
      lattices[k].build(s, table);
    }
  });
  for (const BoxLattice& lat : lattices) largest_tile = std::max(largest_tile, lat.rows.size() * lat.cols.size() + 1);
  parallel_for(0, groups * s.N, 1, [&](index_t lo, index_t hi) {
    AlignedBuffer buffer;
    float* tile = buffer.get((largest_tile + bins) * kLanes);
    float* result = tile + largest_tile * kLanes;
    for (index_t item = lo; item < hi; ++item) {
      const index_t n = item % s.N, c0 = item / s.N * kLanes;
      const int lanes = static_cast<int>(std::min<index_t>(kLanes, s.C - c0));
      const float* in = input + (n * s.C + c0) * plane;
      for (index_t i = image_start[n]; i < image_start[n + 1]; ++i) {
        const index_t k = order[i];
        align_eight_channels(lattices[k], s.W, plane, in, lanes, bins, samples[k], tile, result,
                             out + (k * s.C + c0) * bins, bins);
      }
    }
  });
}
#endif  // FASTCONV_X86

}  // namespace

template <class T>
void roi_align_forward(const RoiShape& s, const RoiAlignParams& p, const T* input, const T* boxes, T* out) {
  if (s.K * s.C == 0) return;  // an empty output: no per-thread scratch for bins it never fills
#if FASTCONV_X86
  if constexpr (std::is_same_v<T, float>) {
    if (active_isa() >= Isa::avx2) return roi_align_forward_avx2(s, p, input, boxes, out);
  }
#endif
  const index_t plane = s.H * s.W, bins = s.bins();
  const std::vector<index_t> order = boxes_by_image(boxes, s.K);
  // Work items are (box, channel) pairs, so a single large box still uses every thread.
  parallel_for(0, s.K * s.C, 1, [&](index_t lo, index_t hi) {
    std::vector<Sample<T>> table;
    index_t table_box = -1, samples = 0;
    for (index_t item = lo; item < hi; ++item) {
      const index_t k = order[item / s.C], c = item % s.C;
      if (k != table_box) {
        const AlignedBox<T> b = aligned_box(s, p, boxes, k);
        build_sample_table(s, b, table);
        samples = samples_per_bin(b);
        table_box = k;
      }
      const T* in = input + (roi_batch_index(boxes, k) * s.C + c) * plane;
      T* dst = out + (k * s.C + c) * bins;
      for (index_t bin = 0; bin < bins; ++bin) dst[bin] = bin_average(in, table.data() + bin * samples, samples);
    }
  });
}

template <class T>
void roi_align_backward(const RoiShape& s, const RoiAlignParams& p, const T* grad_out, const T* boxes,
                        T* grad_input) {
  const index_t plane = s.H * s.W, bins = s.bins();
  const std::vector<index_t> order = boxes_by_image(boxes, s.K);
  parallel_for(0, s.C, 1, [&](index_t c0, index_t c1) {
    for (index_t n = 0; n < s.N; ++n) std::memset(grad_input + (n * s.C + c0) * plane, 0, sizeof(T) * (c1 - c0) * plane);
    std::vector<Sample<T>> table;
    for (const index_t k : order) {
      const AlignedBox<T> b = aligned_box(s, p, boxes, k);
      const index_t samples = samples_per_bin(b);
      if (samples == 0) continue;
      build_sample_table(s, b, table);
      const T count = T(samples);
      for (index_t c = c0; c < c1; ++c) {
        T* dst = grad_input + (b.batch * s.C + c) * plane;
        const T* g = grad_out + (k * s.C + c) * bins;
        for (index_t bin = 0; bin < bins; ++bin) {
          const Sample<T>* q = table.data() + bin * samples;
          for (index_t i = 0; i < samples; ++i)
            for (int corner = 0; corner < 4 && !outside_plane(q[i]); ++corner) dst[q[i].offset[corner]] += g[bin] * q[i].weight[corner] / count;
        }
      }
    }
  });
}

#define FASTCONV_INSTANTIATE(T)                                                                           \
  template void roi_align_forward<T>(const RoiShape&, const RoiAlignParams&, const T*, const T*, T*);  \
  template void roi_align_backward<T>(const RoiShape&, const RoiAlignParams&, const T*, const T*, T*);
FASTCONV_INSTANTIATE(float)
FASTCONV_INSTANTIATE(double)
#undef FASTCONV_INSTANTIATE

}  // namespace fastconv::roi::cpu
