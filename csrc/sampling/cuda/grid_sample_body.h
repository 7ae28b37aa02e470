// The per-thread bodies of sampling.cu's grid_sample and affine_grid kernels, so that a CPU
// test runs each over the whole grid (tests/cuda/test_sampling_host.py). Every point is
// common/bilinear.h's, as the CPU kernel takes it (sampling/cpu/grid_sample.cpp); each sum adds
// its terms in the CPU kernel's order.
//
// The input gradient comes in two formulations:
//  - scatter: a thread per (image, channel, point) adds its corners' shares through `add`
//    (atomicAdd on the GPU, as PyTorch's kernel): the order of the adds changes between runs.
//  - sorted gather: every (point, corner) of an image is listed with the pixel it lands on and
//    its weight (grid_sample_corner), the list is sorted by pixel, stably (fastconv/cuda/
//    sampling.py), and a thread per input-gradient element sums its run of the list, in point
//    and corner order, the CPU kernel's: no atomics, the same bits every run.
#pragma once
#include "common/bilinear.h"
#include "common/index.h"

namespace fastconv::sampling {

// grid_sample's sizes and options, as the CPU kernel's (sampling/sampling.h, whose host-only
// types these mirror): mode 0 bilinear, 1 nearest; padding 0 zeros, 1 border, 2 reflection.
struct GridGeometry {
  index_t N, C, H, W, OH, OW;
  int mode;
  bilinear::Padding padding;
  bool align_corners;
  FASTCONV_HD index_t points() const { return OH * OW; }
  FASTCONV_HD bool nearest() const { return mode == 1; }
};

// Where grid point `xy` samples the input: pixel coordinates and d(pixel)/d(grid) per axis.
template <class T>
struct SourcePoint {
  bilinear::Coordinate<T> x, y;
};

template <class T>
FASTCONV_HD inline SourcePoint<T> source_point(const GridGeometry& g, const T* xy) {
  return {bilinear::source_coordinate(xy[0], g.W, g.padding, g.align_corners),
          bilinear::source_coordinate(xy[1], g.H, g.padding, g.align_corners)};
}

// The point's corners (nw, ne, sw, se) as plane offsets and weights, corners outside the plane
// with weight 0 at offset 0; nearest mode has its pixel in corner 0. With `dx`, `dy`: the
// weights' derivatives with respect to the pixel coordinates, 0 for corners outside (and for
// nearest, which is piecewise constant).
template <class T>
FASTCONV_HD inline void point_sample(const GridGeometry& g, const SourcePoint<T>& q, bilinear::Sample<T>* s,
                                     T* dx = nullptr, T* dy = nullptr) {
  if (g.nearest()) {
    bilinear::grid_nearest_sample(q.x.value, q.y.value, g.H, g.W, s);
    for (int k = 0; dx && k < 4; ++k) dx[k] = dy[k] = T(0);
    return;
  }
  bilinear::GridSample<T> b;
  bilinear::grid_bilinear_sample(q.x.value, q.y.value, g.H, g.W, &b);
  *s = b.sample;
  if (!dx) return;
  bilinear::grid_bilinear_weight_grads(b.tx, b.ty, dx, dy);
  for (int k = 0; k < 4; ++k)
    if (!b.valid[k]) dx[k] = dy[k] = T(0);
}

// Element i of out (N, C, OH, OW): the corners' weighted sum, left to right.
template <class T>
FASTCONV_HD inline T grid_sample_forward_element(const GridGeometry& g, const T* input, const T* grid, index_t i) {
  const index_t point = i % g.points(), n = i / (g.points() * g.C);
  const T* plane = input + i / g.points() * g.H * g.W;
  bilinear::Sample<T> s;
  point_sample(g, source_point(g, grid + (n * g.points() + point) * 2), &s);
  T v = s.weight[0] * plane[s.offset[0]];
  if (!g.nearest())
    v = v + s.weight[1] * plane[s.offset[1]] + s.weight[2] * plane[s.offset[2]] + s.weight[3] * plane[s.offset[3]];
  return v;
}

// Grid gradient of point i of (N, OH, OW): per channel in order, d(out)/d(ix) and d(out)/d(iy)
// times grad_output summed, then times d(pixel)/d(grid), as PyTorch does. Writes grad_grid[2i],
// grad_grid[2i + 1]. Nearest sampling's is 0.
template <class T>
FASTCONV_HD inline void grid_sample_grid_gradient(const GridGeometry& g, const T* input, const T* grid,
                                                  const T* grad_output, index_t i, T* grad_grid) {
  const index_t point = i % g.points(), n = i / g.points(), plane_size = g.H * g.W;
  const SourcePoint<T> q = source_point(g, grid + i * 2);
  T gx = 0, gy = 0;
  if (!g.nearest()) {
    bilinear::Sample<T> s;
    T dx[4], dy[4];
    point_sample(g, q, &s, dx, dy);
    for (index_t c = 0; c < g.C; ++c) {
      const T* plane = input + (n * g.C + c) * plane_size;
      T sx = 0, sy = 0;
      for (int k = 0; k < 4; ++k) {
        sx += dx[k] * plane[s.offset[k]];
        sy += dy[k] * plane[s.offset[k]];
      }
      const T go = grad_output[(n * g.C + c) * g.points() + point];
      gx += sx * go;
      gy += sy * go;
    }
  }
  grad_grid[2 * i] = gx * q.x.grad;
  grad_grid[2 * i + 1] = gy * q.y.grad;
}

// Scatter input gradient, element i of grad_output (N, C, OH, OW): add(address, share) for each
// corner inside the plane.
template <class T, class Add>
FASTCONV_HD inline void grid_sample_input_gradient_scatter(const GridGeometry& g, const T* grid, const T* grad_output,
                                                           index_t i, T* grad_input, const Add& add) {
  const index_t point = i % g.points(), n = i / (g.points() * g.C);
  T* plane = grad_input + i / g.points() * g.H * g.W;
  bilinear::Sample<T> s;
  point_sample(g, source_point(g, grid + (n * g.points() + point) * 2), &s);
  for (int k = 0; k < (g.nearest() ? 1 : 4); ++k)
    if (s.weight[k] != T(0)) add(plane + s.offset[k], s.weight[k] * grad_output[i]);
}

// Sorted gather, step 1, point i of (N, OH, OW): entry 4i + k of `pixel` is the pixel of image
// n's planes (n * H * W + offset) that corner k lands on, or N * H * W (past every pixel) for a
// corner outside the plane or of weight 0; `weight` is its weight.
template <class T>
FASTCONV_HD inline void grid_sample_corner(const GridGeometry& g, const T* grid, index_t i, int64_t* pixel, T* weight) {
  bilinear::Sample<T> s;
  point_sample(g, source_point(g, grid + i * 2), &s);
  const index_t image = i / g.points() * g.H * g.W, none = g.N * g.H * g.W;
  for (int k = 0; k < 4; ++k) {
    pixel[4 * i + k] = s.weight[k] != T(0) ? image + s.offset[k] : none;
    weight[4 * i + k] = s.weight[k];
  }
}

// Sorted gather, step 2, element i of grad_input (N, C, H, W): entries order[start[p] ..
// start[p + 1]) of the corner list land on its pixel p (order: the list's stable sort by pixel,
// so in point and corner order); their weights times grad_output, summed from 0.
template <class T>
FASTCONV_HD inline T grid_sample_input_gradient_gather(const GridGeometry& g, const T* grad_output,
                                                       const int64_t* order, const int64_t* start, const T* weight,
                                                       index_t i) {
  const index_t plane_size = g.H * g.W, pixel = i % plane_size, c = i / plane_size % g.C, n = i / (plane_size * g.C);
  const index_t at = n * plane_size + pixel;
  const T* go = grad_output + (n * g.C + c) * g.points();
  T sum = 0;
  for (index_t e = start[at]; e < start[at + 1]; ++e) sum += weight[order[e]] * go[order[e] / 4 % g.points()];
  return sum;
}

// ---- affine_grid ----

// torch.linspace(-1, 1, steps), scaled by (steps - 1) / steps without align_corners so that the
// points are pixel centres (linspace_from_neg_one); a single step is 0. The CPU kernel's
// base_coordinate, operation for operation.
template <class T>
FASTCONV_HD inline T affine_base_coordinate(index_t i, index_t steps, bool align_corners) {
  if (steps <= 1) return T(0);
  const T step = T(2) / T(steps - 1);
  // linspace fills its first half from the start and its second half from the end.
  T v = i < steps / 2 ? T(-1) + step * T(i) : T(1) - step * T(steps - i - 1);
  if (!align_corners) v = v * T(steps - 1) / T(steps);
  return v;
}

// Element i of grid (N, H, W, 2): theta[n] row (i % 2) applied to the base point (x_w, y_h, 1).
template <class T>
FASTCONV_HD inline T affine_grid_element(index_t H, index_t W, bool align_corners, const T* theta, index_t i) {
  const index_t w = i / 2 % W, h = i / (2 * W) % H, n = i / (2 * W * H);
  const T* t = theta + n * 6 + i % 2 * 3;
  const T x = affine_base_coordinate<T>(w, W, align_corners), y = affine_base_coordinate<T>(h, H, align_corners);
  return x * t[0] + y * t[1] + t[2];
}

// Element i of grad_theta (N, 2, 3): the sum over the grid's points of grad_grid times the
// base point's coordinate, in double and in the CPU kernel's order.
template <class T>
FASTCONV_HD inline T affine_grid_theta_gradient(index_t H, index_t W, bool align_corners, const T* grad_grid,
                                                index_t i) {
  const index_t n = i / 6, row = i % 6 / 3, column = i % 3;
  const T* g = grad_grid + n * H * W * 2 + row;
  double sum = 0;
  for (index_t h = 0; h < H; ++h) {
    const double y = affine_base_coordinate<T>(h, H, align_corners);
    for (index_t w = 0; w < W; ++w, g += 2) {
      const double x = affine_base_coordinate<T>(w, W, align_corners);
      sum += column == 0 ? *g * x : (column == 1 ? *g * y : double(*g));
    }
  }
  return static_cast<T>(sum);
}

}  // namespace fastconv::sampling
