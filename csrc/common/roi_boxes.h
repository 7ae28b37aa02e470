// Regions of interest as roi_align and roi_pool read them: a (K, 5) array of rows
// [batch_index, x1, y1, x2, y2] in input coordinates (torchvision's roi format), and the box
// arithmetic of each op, operation for operation as torchvision's kernels do it, so that every
// device's kernel bins a box the same way.
#pragma once
#include "common/c_headers.h"

#include "common/host_device.h"
#include "common/index.h"

namespace fastconv::roi {

// The sizes every roi kernel needs: the input (N, C, H, W), K boxes, a (PH, PW) output grid.
struct RoiShape {
  index_t N, C, H, W, K, PH, PW;
  FASTCONV_HD index_t bins() const { return PH * PW; }
};

template <class T>
FASTCONV_HD inline index_t roi_batch_index(const T* boxes, index_t k) {
  return static_cast<index_t>(boxes[k * 5]);
}

// Whether a box's batch index names an image of a batch of N: the kernels index memory with it.
template <class T>
FASTCONV_HD inline bool valid_batch_index(T b, index_t N) {
  return isfinite(b) && b == floor(b) && b >= 0 && b < T(N);
}

// ---- roi_align (Mask R-CNN, He et al. 2017) ----

struct RoiAlignParams {
  double spatial_scale;    // box coordinates * spatial_scale = input coordinates
  index_t sampling_ratio;  // samples per bin and axis; <= 0: ceil(roi size / output size)
  bool aligned;            // shift boxes by -0.5 pixel so that pixel centres are at +0.5
};

// One box in input coordinates, with its bin and sample-grid sizes (torchvision's arithmetic:
// coordinates computed in double from the box, then rounded to T).
template <class T>
struct AlignedBox {
  index_t batch;
  T start_h, start_w, bin_h, bin_w;
  index_t grid_h, grid_w;  // samples per bin along each axis
};

// A box's corner and sides in input coordinates, before binning (torchvision's arithmetic).
template <class T>
struct AlignedExtent {
  T start_h, start_w, height, width;
};

template <class T>
FASTCONV_HD inline AlignedExtent<T> aligned_extent(const RoiAlignParams& p, const T* box) {
  const T offset = p.aligned ? T(0.5) : T(0);
  const T start_w = static_cast<T>(box[1] * p.spatial_scale - offset);
  const T start_h = static_cast<T>(box[2] * p.spatial_scale - offset);
  T width = static_cast<T>(box[3] * p.spatial_scale - offset) - start_w;
  T height = static_cast<T>(box[4] * p.spatial_scale - offset) - start_h;
  if (!p.aligned) {  // legacy behaviour: boxes are at least one pixel
    width = width < T(1) ? T(1) : width;
    height = height < T(1) ? T(1) : height;
  }
  return {start_h, start_w, height, width};
}

// The most samples one box's table may hold (bins * grid_h * grid_w; 48 to 64 bytes each): a
// box's table is built whole before it is read, so the bound is the memory one table may take.
constexpr double kMaxSamplesPerBox = 67108864.0;  // 2^26

// What is wrong with a box for roi_align, first problem first; none: aligned_box(k) is safe
// (every coordinate it makes is finite and its sample table has at most kMaxSamplesPerBox).
enum class AlignedBoxError { none, non_finite, too_many_samples };

// A box's sample grid per bin (grid_h, grid_w as aligned_box makes them, empty sides as 0),
// counted in double so that no box overflows it.
struct SampleGrid {
  double grid_h, grid_w;
};

template <class T>
FASTCONV_HD inline SampleGrid aligned_sample_grid(const RoiShape& s, const RoiAlignParams& p, const AlignedExtent<T>& e) {
  const double h = p.sampling_ratio > 0 ? double(p.sampling_ratio) : ceil(double(e.height / T(s.PH)));
  const double w = p.sampling_ratio > 0 ? double(p.sampling_ratio) : ceil(double(e.width / T(s.PW)));
  return {h > 0 ? h : 0, w > 0 ? w : 0};
}

// The samples of a box's whole table: bins times its grid.
FASTCONV_HD inline double table_samples(const RoiShape& s, const SampleGrid& g) {
  return g.grid_h * g.grid_w * double(s.PH) * double(s.PW);
}

template <class T>
FASTCONV_HD inline AlignedBoxError aligned_box_error(const RoiShape& s, const RoiAlignParams& p, const T* box) {
  // a corner at -inf can still give a finite extent (legacy boxes are at least one pixel)
  for (int i = 1; i < 5; ++i)
    if (!isfinite(static_cast<T>(box[i] * p.spatial_scale))) return AlignedBoxError::non_finite;
  const AlignedExtent<T> e = aligned_extent(p, box);
  if (!isfinite(e.start_h) || !isfinite(e.start_w) || !isfinite(e.height) || !isfinite(e.width))
    return AlignedBoxError::non_finite;
  // each side on its own too: an empty side makes the product 0 whatever the other's size
  const SampleGrid g = aligned_sample_grid(s, p, e);
  if (g.grid_h > kMaxSamplesPerBox || g.grid_w > kMaxSamplesPerBox || table_samples(s, g) > kMaxSamplesPerBox)
    return AlignedBoxError::too_many_samples;
  return AlignedBoxError::none;
}

template <class T>
FASTCONV_HD inline AlignedBox<T> aligned_box(const RoiShape& s, const RoiAlignParams& p, const T* boxes, index_t k) {
  const AlignedExtent<T> e = aligned_extent(p, boxes + k * 5);
  const index_t grid_h = p.sampling_ratio > 0 ? p.sampling_ratio : static_cast<index_t>(ceil(e.height / T(s.PH)));
  const index_t grid_w = p.sampling_ratio > 0 ? p.sampling_ratio : static_cast<index_t>(ceil(e.width / T(s.PW)));
  return {roi_batch_index(boxes, k), e.start_h, e.start_w, e.height / T(s.PH), e.width / T(s.PW), grid_h, grid_w};
}

// Samples per bin; a box with an empty or inverted side has none.
template <class T>
FASTCONV_HD inline index_t samples_per_bin(const AlignedBox<T>& b) {
  return index_max(b.grid_h, 0) * index_max(b.grid_w, 0);
}

// ---- roi_pool (Fast R-CNN, Girshick 2015) ----

// A bin's window [lo, hi) along one axis, clipped to the input.
struct Window {
  index_t lo, hi;
};

// Bin `i` of `bins` over a box side starting at pixel `start` and `size` pixels long, clipped to
// [0, limit): floor and ceil of the bin's fractional edges, as torchvision.
template <class T>
FASTCONV_HD inline Window bin_window(index_t i, index_t bins, index_t start, index_t size, index_t limit) {
  const T bin = T(size) / T(bins);
  const index_t lo = static_cast<index_t>(floor(T(i) * bin)), hi = static_cast<index_t>(ceil(T(i + 1) * bin));
  return {index_clamp(lo + start, 0, limit), index_clamp(hi + start, 0, limit)};
}

// A box rounded to whole pixels (half away from zero) and at least one pixel on each side.
struct PixelBox {
  index_t batch, start_h, start_w, height, width;
};

// The largest scaled coordinate roi_pool rounds to a pixel: torchvision's kernel rounds into a
// 32-bit int; beyond 2^31 the bin arithmetic would overflow.
constexpr double kMaxPixelCoordinate = 2147483647.0;

// Whether box k's coordinates, scaled, are finite pixels that pixel_box can round.
template <class T>
FASTCONV_HD inline bool valid_pixel_box(const T* boxes, index_t k, double spatial_scale) {
  for (int i = 1; i < 5; ++i) {
    const double v = boxes[k * 5 + i] * spatial_scale;
    if (!(fabs(v) <= kMaxPixelCoordinate)) return false;  // NaN fails too
  }
  return true;
}

template <class T>
FASTCONV_HD inline PixelBox pixel_box(const T* boxes, index_t k, double spatial_scale) {
  const T* box = boxes + k * 5;
  const index_t x1 = lround(box[1] * spatial_scale), y1 = lround(box[2] * spatial_scale);
  const index_t x2 = lround(box[3] * spatial_scale), y2 = lround(box[4] * spatial_scale);
  return {roi_batch_index(boxes, k), y1, x1, index_max(y2 - y1 + 1, 1), index_max(x2 - x1 + 1, 1)};
}

}  // namespace fastconv::roi
