// A grid point's sample as a 2x2 block of pixels and weights (and, for the backward, the
// weights' derivatives), shared by the grid_sample kernels of both layouts (grid_sample.cpp for
// NCHW, grid_sample_channels_last.cpp for NHWC memory): the per-point math depends on the image's
// size, not on its layout, and both kernels add in the same order.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "common/bilinear.h"
#include "core/parallel.h"
#include "core/scratch.h"
#include "sampling/sampling.h"

namespace fastconv::sampling::cpu {

using bilinear::GridSample;
using bilinear::Sample;

// Where a normalised grid point (x, y) samples the input, with d(pixel)/d(grid) per axis.
template <class T>
struct SourcePoint {
  bilinear::Coordinate<T> x, y;
};

template <class T>
SourcePoint<T> source_point(const GridSampleShape& s, const GridSampleParams& p, const T* xy) {
  return {bilinear::source_coordinate(xy[0], s.W, p.padding, p.align_corners),
          bilinear::source_coordinate(xy[1], s.H, p.padding, p.align_corners)};
}

// A point's sample as one offset into the plane plus the weights of the 2x2 block of pixels
// starting there: 20 bytes a point (float) instead of four 8-byte offsets and four weights, since
// the table is re-read for every channel. The block is shifted inside the plane so that every
// place is a plane element; a place that no corner inside the plane maps to is read as 0, as
// PyTorch reads a corner outside the plane, so that a NaN pixel there does not leak in.
template <class T>
struct BlockSample {
  std::int32_t offset;
  std::uint8_t read;  // bit k: place k is a corner of the sample inside the plane
  T weight[4];        // places (row, column) = (0, 0), (0, 1), (1, 0), (1, 1) of the block
};

// Place k of a block at `at` (places `steps` apart), or 0 when the sample does not read it.
template <class T>
inline T place_value(const T* at, std::uint8_t read, int k, const index_t steps[4]) {
  return read >> k & 1 ? at[steps[k]] : T(0);
}

// Steps from a block's first pixel to its other columns and rows: 0 along an axis of one pixel.
struct BlockSteps {
  index_t column, row;
  explicit BlockSteps(const GridSampleShape& s) : column(s.W > 1 ? 1 : 0), row(s.H > 1 ? s.W : 0) {}
};

// The first index of the two-pixel window along an axis of `size` pixels that holds every
// valid one of indices i0 and i0 + 1.
inline index_t block_start(index_t i0, index_t size) { return std::clamp<index_t>(i0, 0, std::max<index_t>(size - 2, 0)); }

template <class T>
std::int32_t block_offset(const GridSampleShape& s, const GridSample<T>& g) {
  return static_cast<std::int32_t>(block_start(g.y0, s.H) * s.W + block_start(g.x0, s.W));
}

// The block place of corner k (nw, ne, sw, se) of a sample, or -1 when the corner is outside.
template <class T>
int block_place(const GridSampleShape& s, const GridSample<T>& g, int k) {
  if (!g.valid[k]) return -1;
  return static_cast<int>((g.y0 + (k >> 1) - block_start(g.y0, s.H)) * 2 + g.x0 + (k & 1) - block_start(g.x0, s.W));
}

// The places of the block that a sample reads, bit k for place k.
template <class T>
std::uint8_t block_reads(const GridSampleShape& s, const GridSample<T>& g) {
  std::uint8_t read = 0;
  for (int k = 0; k < 4; ++k)
    if (g.valid[k]) read |= std::uint8_t(1u << block_place(s, g, k));
  return read;
}

// Moves per-corner values (nw, ne, sw, se) of a sample onto its block. A corner outside the
// plane multiplies a 0, which adds nothing unless its value is NaN (a non-finite grid point):
// then, as in PyTorch, the result is NaN, so every place gets the NaN.
template <class T>
void to_block(const GridSampleShape& s, const GridSample<T>& g, const T corner[4], T block[4]) {
  for (int k = 0; k < 4; ++k) block[k] = T(0);
  for (int k = 0; k < 4; ++k) {
    if (std::isnan(corner[k])) {
      std::fill(block, block + 4, corner[k]);
      return;
    }
    if (g.valid[k]) block[block_place(s, g, k)] = corner[k];
  }
}

// Nearest sampling: the pixel itself with weight 1 in the block's first place (nothing outside).
template <class T>
BlockSample<T> nearest_block(const GridSampleShape& s, const SourcePoint<T>& q) {
  Sample<T> nearest;
  bilinear::grid_nearest_sample(q.x.value, q.y.value, s.H, s.W, &nearest);
  const std::uint8_t read = nearest.weight[0] != T(0) ? 1 : 0;
  return {static_cast<std::int32_t>(nearest.offset[0]), read, {nearest.weight[0], T(0), T(0), T(0)}};
}

// A bilinear sample's block: every corner's weight, whether inside the plane or not.
template <class T>
BlockSample<T> bilinear_block(const GridSampleShape& s, const GridSample<T>& g) {
  BlockSample<T> b;
  T weights[4];
  bilinear::grid_bilinear_weights(g.tx, g.ty, weights);
  b.offset = block_offset(s, g);
  b.read = block_reads(s, g);
  to_block(s, g, weights, b.weight);
  return b;
}

// The block sample of grid point xy (x, y).
template <class T>
BlockSample<T> point_sample(const GridSampleShape& s, const GridSampleParams& p, const T* xy) {
  const SourcePoint<T> q = source_point(s, p, xy);
  if (p.mode == GridMode::nearest) return nearest_block(s, q);
  GridSample<T> g;
  bilinear::grid_bilinear_sample(q.x.value, q.y.value, s.H, s.W, &g);
  return bilinear_block(s, g);
}

// A point's share of the backward: its block sample, and the derivatives of the sample with
// respect to the pixel coordinates (ix, iy) as weights on the same block. Nearest sampling is
// piecewise constant: its derivatives are 0.
template <class T>
struct BlockGradient {
  BlockSample<T> sample;
  T dx[4], dy[4];
};

// The block gradient of grid point xy (x, y).
template <class T>
BlockGradient<T> point_gradient(const GridSampleShape& s, const GridSampleParams& p, const T* xy) {
  const SourcePoint<T> q = source_point(s, p, xy);
  if (p.mode == GridMode::nearest) return {nearest_block(s, q), {}, {}};
  GridSample<T> g;
  T dx[4], dy[4];
  bilinear::grid_bilinear_sample(q.x.value, q.y.value, s.H, s.W, &g);
  bilinear::grid_bilinear_weight_grads(g.tx, g.ty, dx, dy);
  BlockGradient<T> b;
  b.sample = bilinear_block(s, g);
  to_block(s, g, dx, b.dx);
  to_block(s, g, dy, b.dy);
  return b;
}

// The grid gradient sums over channels. Threads take whole images, each summing its channels
// in order; only when there are fewer images than threads are an image's channels split into
// this many groups, whose partial sums are then added in group order: the same bits on every
// run with the same thread count, in either layout.
inline index_t grid_gradient_groups(const GridSampleShape& s) {
  return std::clamp<index_t>(ceil_div(num_threads(), s.N), 1, std::max<index_t>(s.C, 1));
}

// The grid gradient from the partial sums over channels, two per point, of each (image, group)
// work item (none for nearest sampling, whose gradient is 0): the groups added in order, then
// times d(pixel)/d(grid) after the channel sum, as PyTorch does.
template <class T>
void finish_grid_gradient(const GridSampleShape& s, const GridSampleParams& p, const T* grid,
                          const std::vector<T>& partial, index_t groups, T* grad_grid) {
  const index_t points = s.points();
  const bool nearest = p.mode == GridMode::nearest;
  parallel_for(0, s.N * points, 1024, [&](index_t lo, index_t hi) {
    for (index_t i = lo; i < hi; ++i) {
      const index_t n = i / points, point = i % points;
      T gx = 0, gy = 0;
      for (index_t group = 0; group < groups && !nearest; ++group) {
        const T* acc = partial.data() + ((n * groups + group) * points + point) * 2;
        gx += acc[0];
        gy += acc[1];
      }
      const SourcePoint<T> q = source_point(s, p, grid + i * 2);
      grad_grid[2 * i] = gx * q.x.grad;
      grad_grid[2 * i + 1] = gy * q.y.grad;
    }
  });
}

}  // namespace fastconv::sampling::cpu
