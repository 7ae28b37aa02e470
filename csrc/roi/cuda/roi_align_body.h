// The per-thread bodies of roi.cu's roi_align kernels, so that a CPU test runs each over the
// whole grid (tests/cuda/test_roi_host.py). Every sample is common/bilinear.h's
// roi_align_sample of a box binned by common/roi_boxes.h, as the CPU kernel takes it
// (roi/cpu/roi_align.cpp).
//
// The backward comes in two formulations:
//  - scatter: a thread per output bin adds its samples' shares into the input gradient through
//    `add` (atomicAdd on the GPU; torchvision's CUDA kernel). Fast; the order of the adds, and
//    so the last bits, change from run to run.
//  - gather: a thread per input-gradient element walks the boxes of its image in box order and
//    sums the shares that land on it, in the CPU kernel's order (box, bin, sample, corner). No
//    thread writes another's element, so it needs no atomics, gives the same bits every run, and
//    the CPU kernel's bits.
#pragma once
#include "common/bilinear.h"
#include "common/roi_boxes.h"

namespace fastconv::roi {

// The coordinate of sample i of bin `bin` along one axis of box b, as the CPU kernel's sample
// table computes it (including iy + .5f in float).
template <class T>
FASTCONV_HD inline T aligned_sample_coordinate(T start, T bin_size, index_t bin, index_t i, index_t grid) {
  return start + T(bin) * bin_size + T(i + .5f) * bin_size / T(grid);
}

template <class T>
FASTCONV_HD inline T sample_y(const AlignedBox<T>& b, index_t ph, index_t iy) {
  return aligned_sample_coordinate(b.start_h, b.bin_h, ph, iy, b.grid_h);
}

template <class T>
FASTCONV_HD inline T sample_x(const AlignedBox<T>& b, index_t pw, index_t ix) {
  return aligned_sample_coordinate(b.start_w, b.bin_w, pw, ix, b.grid_w);
}

// Element i of the output (K, C, PH, PW): the mean of its bin's samples, summed in the CPU
// kernel's order.
template <class T>
FASTCONV_HD inline T roi_align_forward_element(const RoiShape& s, const RoiAlignParams& p, const T* input,
                                               const T* boxes, index_t i) {
  const index_t pw = i % s.PW, ph = i / s.PW % s.PH, c = i / s.bins() % s.C, k = i / (s.bins() * s.C);
  const AlignedBox<T> b = aligned_box(s, p, boxes, k);
  const T* plane = input + (b.batch * s.C + c) * s.H * s.W;
  T sum = 0;
  for (index_t iy = 0; iy < b.grid_h; ++iy) {
    const T y = sample_y(b, ph, iy);
    for (index_t ix = 0; ix < b.grid_w; ++ix) {
      bilinear::Sample<T> q;
      bilinear::roi_align_sample(y, sample_x(b, pw, ix), s.H, s.W, &q);
      sum += q.weight[0] * plane[q.offset[0]] + q.weight[1] * plane[q.offset[1]] + q.weight[2] * plane[q.offset[2]] +
             q.weight[3] * plane[q.offset[3]];
    }
  }
  return sum / T(index_max(samples_per_bin(b), 1));
}

// Scatter backward, element i of grad_output (K, C, PH, PW): add(address, share) for every
// corner of every sample of its bin. Corners of weight 0 (samples outside the plane, the far
// corner of a sample on a pixel) are skipped: their share, +-0, changes no sum, and the GPU is
// spared an atomic into pixel 0.
template <class T, class Add>
FASTCONV_HD inline void roi_align_backward_scatter(const RoiShape& s, const RoiAlignParams& p, const T* grad_output,
                                                   const T* boxes, index_t i, T* grad_input, const Add& add) {
  const index_t pw = i % s.PW, ph = i / s.PW % s.PH, c = i / s.bins() % s.C, k = i / (s.bins() * s.C);
  const AlignedBox<T> b = aligned_box(s, p, boxes, k);
  const index_t samples = samples_per_bin(b);
  if (samples == 0) return;
  const T g = grad_output[i], count = T(samples);
  T* plane = grad_input + (b.batch * s.C + c) * s.H * s.W;
  for (index_t iy = 0; iy < b.grid_h; ++iy) {
    const T y = sample_y(b, ph, iy);
    for (index_t ix = 0; ix < b.grid_w; ++ix) {
      bilinear::Sample<T> q;
      bilinear::roi_align_sample(y, sample_x(b, pw, ix), s.H, s.W, &q);
      for (int corner = 0; corner < 4; ++corner)
        if (q.weight[corner] != T(0)) add(plane + q.offset[corner], g * q.weight[corner] / count);
    }
  }
}

// Whether roi_align_sample's corners at coordinate v of an axis of `size` pixels include pixel
// `at`: the per-axis part of its rule (outside by more than a pixel: none; clamped onto the
// edge pixels; else floor(v) and the next).
template <class T>
FASTCONV_HD inline bool sample_reaches(T v, index_t size, index_t at) {
  if (v < T(-1) || v > T(size)) return false;
  const index_t low = static_cast<index_t>(v <= 0 ? T(0) : v);
  if (low >= size - 1) return at == size - 1;
  return at == low || at == low + 1;
}

// Whether any sample of bin `bin` (along an axis: start, bin size, samples per bin) reaches `at`.
template <class T>
FASTCONV_HD inline bool bin_reaches(T start, T bin_size, index_t bin, index_t grid, index_t size, index_t at) {
  for (index_t i = 0; i < grid; ++i)
    if (sample_reaches(aligned_sample_coordinate(start, bin_size, bin, i, grid), size, at)) return true;
  return false;
}

// Whether box b's samples may reach pixel row or column `at` along an axis: a cheap, generous
// test on the span of the samples (they lie between the box's edges, up to rounding; a sample
// reaches the pixels within one of it, and one up to a pixel before the plane reaches pixels 0
// and 1, the latter with weight 0, a term the CPU kernel adds too), so that the exact walk below
// skips the boxes far from the pixel.
template <class T>
FASTCONV_HD inline bool box_may_reach(T start, T extent, index_t at) {
  const double lo = double(start), hi = double(start) + double(extent);
  const double slack = 1e-3 * (1.0 + fabs(lo) + fabs(double(extent)));
  const double first = (lo < hi ? lo : hi) - slack, last = (lo < hi ? hi : lo) + slack;
  return last >= double(at) - 2 && first <= double(at) + 1;
}

// Gather backward, element i of grad_input (N, C, H, W): the sum of the shares of every sample
// corner that lands on it, in the CPU kernel's order (boxes of its image in box order, then
// bins, samples and corners), from 0.
template <class T>
FASTCONV_HD inline T roi_align_backward_gather(const RoiShape& s, const RoiAlignParams& p, const T* grad_output,
                                               const T* boxes, index_t i) {
  const index_t w = i % s.W, h = i / s.W % s.H, c = i / (s.H * s.W) % s.C, n = i / (s.H * s.W * s.C);
  const index_t at = h * s.W + w;
  T sum = 0;
  for (index_t k = 0; k < s.K; ++k) {
    if (roi_batch_index(boxes, k) != n) continue;
    const AlignedBox<T> b = aligned_box(s, p, boxes, k);
    const index_t samples = samples_per_bin(b);
    if (samples == 0 || !box_may_reach(b.start_h, T(s.PH) * b.bin_h, h) ||
        !box_may_reach(b.start_w, T(s.PW) * b.bin_w, w))
      continue;
    const T count = T(samples);
    const T* g = grad_output + (k * s.C + c) * s.bins();
    for (index_t ph = 0; ph < s.PH; ++ph) {
      if (!bin_reaches(b.start_h, b.bin_h, ph, b.grid_h, s.H, h)) continue;
      for (index_t pw = 0; pw < s.PW; ++pw) {
        if (!bin_reaches(b.start_w, b.bin_w, pw, b.grid_w, s.W, w)) continue;
        for (index_t iy = 0; iy < b.grid_h; ++iy) {
          const T y = sample_y(b, ph, iy);
          if (!sample_reaches(y, s.H, h)) continue;
          for (index_t ix = 0; ix < b.grid_w; ++ix) {
            const T x = sample_x(b, pw, ix);
            if (!sample_reaches(x, s.W, w)) continue;
            bilinear::Sample<T> q;
            bilinear::roi_align_sample(y, x, s.H, s.W, &q);
            for (int corner = 0; corner < 4; ++corner)
              if (q.offset[corner] == at) sum += g[ph * s.PW + pw] * q.weight[corner] / count;
          }
        }
      }
    }
  }
  return sum;
}

}  // namespace fastconv::roi
