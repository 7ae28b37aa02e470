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
#include <cstring>
#include <vector>

#include "common/bilinear.h"
#include "core/parallel.h"
#include "vision/roi_align.h"

namespace fastconv::vision {

namespace {

using bilinear::Sample;

// One box in input coordinates, with its bin and sample-grid sizes (torchvision's arithmetic:
// coordinates computed in double from the box, then rounded to T).
template <class T>
struct AlignedBox {
  index_t batch;
  T start_h, start_w, bin_h, bin_w;
  index_t grid_h, grid_w;  // samples per bin along each axis
};

template <class T>
AlignedBox<T> aligned_box(const RoiShape& s, const RoiAlignParams& p, const T* boxes, index_t k) {
  const T* box = boxes + k * 5;
  const T offset = p.aligned ? T(0.5) : T(0);
  const T start_w = static_cast<T>(box[1] * p.spatial_scale - offset);
  const T start_h = static_cast<T>(box[2] * p.spatial_scale - offset);
  T width = static_cast<T>(box[3] * p.spatial_scale - offset) - start_w;
  T height = static_cast<T>(box[4] * p.spatial_scale - offset) - start_h;
  if (!p.aligned) {  // legacy behaviour: boxes are at least one pixel
    width = std::max(width, T(1));
    height = std::max(height, T(1));
  }
  const index_t grid_h = p.sampling_ratio > 0 ? p.sampling_ratio : static_cast<index_t>(std::ceil(height / T(s.PH)));
  const index_t grid_w = p.sampling_ratio > 0 ? p.sampling_ratio : static_cast<index_t>(std::ceil(width / T(s.PW)));
  return {roi_batch_index(boxes, k), start_h, start_w, height / T(s.PH), width / T(s.PW), grid_h, grid_w};
}

// Samples per bin; a box with an empty or inverted side has none.
template <class T>
index_t samples_per_bin(const AlignedBox<T>& b) {
  return std::max<index_t>(b.grid_h, 0) * std::max<index_t>(b.grid_w, 0);
}

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

// The mean of one bin's samples of a plane, summed in torchvision's order.
template <class T>
T bin_average(const T* plane, const Sample<T>* samples, index_t count) {
  T sum = 0;
  for (index_t i = 0; i < count; ++i) {
    const Sample<T>& q = samples[i];
    sum += q.weight[0] * plane[q.offset[0]] + q.weight[1] * plane[q.offset[1]] +
           q.weight[2] * plane[q.offset[2]] + q.weight[3] * plane[q.offset[3]];
  }
  return sum / T(std::max<index_t>(count, 1));
}

}  // namespace

template <class T>
void roi_align_forward(const RoiShape& s, const RoiAlignParams& p, const T* input, const T* boxes, T* out) {
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
            for (int corner = 0; corner < 4; ++corner) dst[q[i].offset[corner]] += g[bin] * q[i].weight[corner] / count;
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

}  // namespace fastconv::vision
