// Per-element sampling math shared by the CPU kernels (roi/, sampling/) and their CUDA twins:
// source coordinates (unnormalisation, padding modes), bilinear corners and weights, and the
// resize index rules. Plain inline functions free of the STL so that nvcc can compile them as
// __host__ __device__. Each follows the PyTorch / torchvision function it cites, operation for
// operation, so that results agree to the last bit where the arithmetic order allows.
#pragma once
#include "common/c_headers.h"

#include "common/host_device.h"

namespace fastconv::bilinear {

// A bilinear sample of an (H, W) plane: four corners (nw, ne, sw, se) as offsets into the
// plane and their weights. A corner that must read zero has weight 0 and offset 0, so that a
// kernel reads and writes unconditionally (an in-plane element times 0 adds nothing for finite
// inputs).
template <class T>
struct Sample {
  int64_t offset[4];
  T weight[4];
};

template <class T>
FASTCONV_HD inline void zero_sample(Sample<T>* s) {
  for (int k = 0; k < 4; ++k) {
    s->offset[k] = 0;
    s->weight[k] = T(0);
  }
}

// ---- roi_align (torchvision ops/cpu/roi_align_common.h, detectron's bilinear_interpolate) ----

// The sample of a plane at (y, x) as roi_align takes it: points more than one pixel outside
// contribute nothing; points within it are clamped onto the edge pixels.
template <class T>
FASTCONV_HD inline void roi_align_sample(T y, T x, int64_t height, int64_t width, Sample<T>* s) {
  if (y < T(-1) || y > T(height) || x < T(-1) || x > T(width)) {
    zero_sample(s);
    return;
  }
  if (y <= 0) y = 0;
  if (x <= 0) x = 0;
  int64_t y_low = static_cast<int64_t>(y), x_low = static_cast<int64_t>(x), y_high, x_high;
  if (y_low >= height - 1) {
    y_high = y_low = height - 1;
    y = T(y_low);
  } else {
    y_high = y_low + 1;
  }
  if (x_low >= width - 1) {
    x_high = x_low = width - 1;
    x = T(x_low);
  } else {
    x_high = x_low + 1;
  }
  const T ly = y - T(y_low), lx = x - T(x_low), hy = T(1) - ly, hx = T(1) - lx;
  s->offset[0] = y_low * width + x_low;
  s->offset[1] = y_low * width + x_high;
  s->offset[2] = y_high * width + x_low;
  s->offset[3] = y_high * width + x_high;
  s->weight[0] = hy * hx;
  s->weight[1] = hy * lx;
  s->weight[2] = ly * hx;
  s->weight[3] = ly * lx;
}

// ---- grid_sample (ATen/native/GridSampler.h) ----

enum class Padding { zeros = 0, border = 1, reflection = 2 };

// A source coordinate and its derivative with respect to the normalised grid coordinate.
template <class T>
struct Coordinate {
  T value, grad;
};

// [-1, 1] -> pixel coordinates: the corner pixels' centres (align_corners) or their outer edges,
// in the operation order of ATen's vectorised CPU kernel (GridSamplerKernel.cpp).
template <class T>
FASTCONV_HD inline Coordinate<T> unnormalize(T coord, int64_t size, bool align_corners) {
  if (align_corners) return {(coord + 1) * (T(size - 1) / 2), T(size - 1) / 2};
  return {(coord + 1) * (T(size) / 2) - T(0.5), T(size) / 2};
}

// Clamps onto [0, size - 1], NaN onto 0 as PyTorch's CPU and CUDA kernels do; the derivative is 0
// where clamped (clip_coordinates_set_grad).
template <class T>
FASTCONV_HD inline Coordinate<T> clip_coordinate(T in, int64_t size) {
  const T max = T(size - 1);
  if (!(in > 0)) return {T(0), T(0)};
  if (in >= max) return {max, T(0)};
  return {in, T(1)};
}

// Reflects `in` about the bounds [twice_low / 2, twice_high / 2] until it lies inside, with the
// derivative +-1 by the parity of reflections: ATen's vectorised reflect_coordinates_get_grad,
// whose arithmetic stays in T (no integer conversion), so that a huge coordinate gives PyTorch's
// answer and an infinite one gives NaN (which the clip that follows maps to 0).
template <class T>
FASTCONV_HD inline Coordinate<T> reflect_coordinate(T in, int64_t twice_low, int64_t twice_high) {
  if (twice_low == twice_high) return {T(0), T(0)};
  const T low = T(twice_low) / 2, twice_span = T(twice_high - twice_low);
  const T shifted = in - low, distance = fabs(shifted);
  const T extra = distance - trunc(distance / twice_span) * twice_span, reflected_extra = twice_span - extra;
  const bool one_more_flip = extra > reflected_extra;
  const T sign = one_more_flip != (shifted < 0) ? T(-1) : T(1);
  return {(one_more_flip ? reflected_extra : extra) + low, sign};
}

// grid_sampler_compute_source_index_set_grad: normalised grid coordinate -> pixel coordinate
// after padding, with d(pixel)/d(grid). Non-finite coordinates stay non-finite with zeros
// padding (the sample is NaN, as in PyTorch) and are clamped onto the plane by the others.
template <class T>
FASTCONV_HD inline Coordinate<T> source_coordinate(T coord, int64_t size, Padding padding,
                                                            bool align_corners) {
  Coordinate<T> c = unnormalize(coord, size, align_corners);
  if (padding == Padding::border) {
    const Coordinate<T> clipped = clip_coordinate(c.value, size);
    c = {clipped.value, c.grad * clipped.grad};
  } else if (padding == Padding::reflection) {
    const Coordinate<T> reflected = align_corners ? reflect_coordinate(c.value, 0, 2 * (size - 1))
                                                  : reflect_coordinate(c.value, -1, 2 * size - 1);
    const Coordinate<T> clipped = clip_coordinate(reflected.value, size);
    c = {clipped.value, c.grad * reflected.grad * clipped.grad};
  }
  return c;
}

// The index of a whole-number coordinate `at` along an axis of `size` pixels, or -2 (outside,
// and so is its right neighbour) when it lies beyond [-1, size] or is not finite: the integer
// conversion is defined for every input.
template <class T>
FASTCONV_HD inline int64_t axis_index(T at, int64_t size) {
  return at >= T(-1) && at <= T(size) ? static_cast<int64_t>(at) : -2;
}

// The bilinear sample of an (H, W) plane at pixel coordinates (ix, iy) with zeros outside it:
// the nw corner (x0, y0), the fractions tx, ty that the grid gradient needs, and `valid[k]`
// saying corner k is inside. A non-finite coordinate has NaN fractions, hence NaN weights.
template <class T>
struct GridSample {
  Sample<T> sample;
  bool valid[4];
  int64_t x0, y0;
  T tx, ty;
};

// The weights of the corners (nw, ne, sw, se) at fractions (tx, ty) past the nw corner.
template <class T>
FASTCONV_HD inline void grid_bilinear_weights(T tx, T ty, T w[4]) {
  w[0] = (1 - tx) * (1 - ty), w[1] = tx * (1 - ty), w[2] = (1 - tx) * ty, w[3] = tx * ty;
}

template <class T>
FASTCONV_HD inline void grid_bilinear_sample(T ix, T iy, int64_t height, int64_t width,
                                                      GridSample<T>* g) {
  const T fx = floor(ix), fy = floor(iy);
  const int64_t x0 = axis_index(fx, width), y0 = axis_index(fy, height);
  g->x0 = x0;
  g->y0 = y0;
  g->tx = ix - fx;
  g->ty = iy - fy;
  T weights[4];
  grid_bilinear_weights(g->tx, g->ty, weights);
  for (int k = 0; k < 4; ++k) {
    const int64_t x = x0 + (k & 1), y = y0 + (k >> 1);
    g->valid[k] = x >= 0 && x < width && y >= 0 && y < height;
    g->sample.offset[k] = g->valid[k] ? y * width + x : 0;
    g->sample.weight[k] = g->valid[k] ? weights[k] : T(0);
  }
}

// d(corner weight k)/d(ix) and /d(iy), corners in nw, ne, sw, se order.
template <class T>
FASTCONV_HD inline void grid_bilinear_weight_grads(T tx, T ty, T dx[4], T dy[4]) {
  dx[0] = -(1 - ty), dx[1] = 1 - ty, dx[2] = -ty, dx[3] = ty;
  dy[0] = -(1 - tx), dy[1] = -tx, dy[2] = 1 - tx, dy[3] = tx;
}

// Nearest mode: the pixel nearest (ix, iy), ties to even as std::nearbyint, as weight 1 in corner
// 0, or no corner at all when it lies outside.
template <class T>
FASTCONV_HD inline void grid_nearest_sample(T ix, T iy, int64_t height, int64_t width, Sample<T>* s) {
  zero_sample(s);
  const int64_t x = axis_index(nearbyint(ix), width), y = axis_index(nearbyint(iy), height);
  if (x >= 0 && x < width && y >= 0 && y < height) {
    s->offset[0] = y * width + x;
    s->weight[0] = T(1);
  }
}

// ---- interpolate (ATen/native/UpSample.h) ----

// Source pixels per destination pixel (area_pixel_compute_scale): with align_corners the corner
// centres match; otherwise 1 / scale_factor when the caller gave one (> 0), else in / out.
template <class T>
FASTCONV_HD inline T area_scale(int64_t in, int64_t out, bool align_corners, double scale_factor) {
  if (align_corners) return out > 1 ? T(in - 1) / T(out - 1) : T(0);
  return scale_factor > 0 ? T(1.0 / scale_factor) : T(in) / T(out);
}

// area_pixel_compute_source_index for linear modes: half-pixel centres, negative clamped to 0.
// One fused multiply-add, as PyTorch's AVX2/AVX-512 build computes it (its compiler contracts
// the expression) and nvcc does by default: where the product rounds to a pixel boundary, the
// unfused form picks the other pixel, so that a NaN or infinity there would leak in or out.
template <class T>
FASTCONV_HD inline T area_source_index(T scale, int64_t dst, bool align_corners) {
  if (align_corners) return scale * T(dst);
  const T src = fma(scale, T(dst) + T(0.5), T(-0.5));
  return src < 0 ? T(0) : src;
}

// One axis of a linear resize: source index i0, its neighbour i0 + step (step 0 at the last
// pixel) and the weights (guard_index_and_lambda, compute_indices_weights_linear). PyTorch
// floors the index with floorf, in float32 even for float64 data; so does this.
template <class T>
struct LinearTap {
  int64_t i0, step;
  T w0, w1;
};

template <class T>
FASTCONV_HD inline LinearTap<T> linear_tap(T scale, int64_t dst, int64_t in, bool align_corners) {
  const T src = area_source_index(scale, dst, align_corners);
  int64_t i0 = static_cast<int64_t>(floorf(static_cast<float>(src)));
  if (i0 > in - 1) i0 = in - 1;
  T lambda = src - T(i0);
  lambda = lambda < 0 ? T(0) : (lambda > 1 ? T(1) : lambda);
  return {i0, i0 < in - 1 ? 1 : 0, T(1) - lambda, lambda};
}

// nearest_idx: floor(dst * scale) in float32 whatever the data type, as PyTorch computes it,
// with the exact shortcuts for equal sizes and exact 2x upsampling.
FASTCONV_HD inline int64_t nearest_source_index(int64_t dst, int64_t in, int64_t out, double scale_factor) {
  if (out == in) return dst;
  if (out == 2 * in) return dst >> 1;
  const float scale = scale_factor > 0 ? static_cast<float>(1.0 / scale_factor) : static_cast<float>(in) / out;
  const int64_t src = static_cast<int64_t>(floorf(static_cast<float>(dst) * scale));
  return src < in - 1 ? src : in - 1;
}

// nearest_neighbor_exact_compute_source_index ("nearest-exact"): the pixel under the output
// pixel's centre, floor((dst + 0.5) * scale), the product in double rounded to float as
// PyTorch's expression does, clamped to the last pixel.
FASTCONV_HD inline int64_t nearest_exact_source_index(int64_t dst, int64_t in, int64_t out, double scale_factor) {
  const float scale = scale_factor > 0 ? static_cast<float>(1.0 / scale_factor) : static_cast<float>(in) / out;
  const int64_t src = static_cast<int64_t>(floorf(static_cast<float>((static_cast<double>(dst) + 0.5) * scale)));
  return src < in - 1 ? src : in - 1;
}

}  // namespace fastconv::bilinear
