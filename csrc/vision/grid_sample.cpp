// grid_sample and affine_grid, forward and backward (ATen GridSampler semantics).
//
// A grid point's corners and weights depend on the image, not on the channel: each thread builds
// the table of an image's points once and applies it to every channel plane it was given, so
// the inner loop is four gathers and four multiply-adds per output.
//
// Backward: the input gradient is split by (image, channel) plane, each plane with one writer
// adding in point order (race-free, deterministic); the grid gradient, a sum over channels per
// point, is split by blocks of points, each summing its channels in order.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/parallel.h"
#include "core/scratch.h"
#include "vision/grid_sample.h"

namespace fastconv::vision {

namespace {

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
// the table is re-read for every channel. Corners outside the plane carry no weight; the block is
// shifted inside the plane so that every read is of a plane element.
template <class T>
struct BlockSample {
  std::int32_t offset;
  T weight[4];  // (row, column) = (0, 0), (0, 1), (1, 0), (1, 1) of the block
};

// Steps from a block's first pixel to its other columns and rows: 0 along an axis of one pixel.
struct BlockSteps {
  index_t column, row;
  explicit BlockSteps(const GridSampleShape& s) : column(s.W > 1 ? 1 : 0), row(s.H > 1 ? s.W : 0) {}
};

// The first index of the two-pixel window along an axis of `size` pixels that holds every
// valid one of indices i0 and i0 + 1.
inline index_t block_start(index_t i0, index_t size) { return std::clamp<index_t>(i0, 0, std::max<index_t>(size - 2, 0)); }

template <class T>
BlockSample<T> block_sample(const GridSampleShape& s, const GridSample<T>& g) {
  const index_t bx = block_start(g.x0, s.W), by = block_start(g.y0, s.H);
  BlockSample<T> b{static_cast<std::int32_t>(by * s.W + bx), {T(0), T(0), T(0), T(0)}};
  for (int k = 0; k < 4; ++k) {
    if (!g.valid[k]) continue;  // a valid corner always lies in the block
    const index_t row = g.y0 + (k >> 1) - by, column = g.x0 + (k & 1) - bx;
    b.weight[row * 2 + column] = g.sample.weight[k];
  }
  return b;
}

template <class T>
void build_point_table(const GridSampleShape& s, const GridSampleParams& p, const T* grid, index_t n,
                       std::vector<BlockSample<T>>& table) {
  table.resize(s.points());
  const T* xy = grid + n * s.points() * 2;
  for (index_t i = 0; i < s.points(); ++i) {
    const SourcePoint<T> q = source_point(s, p, xy + 2 * i);
    if (p.mode == GridMode::nearest) {
      Sample<T> nearest;
      bilinear::grid_nearest_sample(q.x.value, q.y.value, s.H, s.W, &nearest);
      table[i] = {static_cast<std::int32_t>(nearest.offset[0]), {nearest.weight[0], T(0), T(0), T(0)}};
    } else {
      GridSample<T> g;
      bilinear::grid_bilinear_sample(q.x.value, q.y.value, s.H, s.W, &g);
      table[i] = block_sample(s, g);
    }
  }
}

// Runs fn(item, table) for the (image, channel) planes [lo, hi), rebuilding the point table
// only when the image changes.
template <class T, class Fn>
void for_each_plane(const GridSampleShape& s, const GridSampleParams& p, const T* grid, index_t lo, index_t hi,
                    const Fn& fn) {
  std::vector<BlockSample<T>> table;
  index_t table_image = -1;
  for (index_t item = lo; item < hi; ++item) {
    const index_t n = item / s.C;
    if (n != table_image) {
      build_point_table(s, p, grid, n, table);
      table_image = n;
    }
    fn(item, table.data());
  }
}

// kCorners: 4 for bilinear, 1 for nearest (whose table keeps its pixel first).
template <int kCorners, class T>
void sample_plane(const T* plane, const BlockSample<T>* table, BlockSteps steps, index_t points, T* out) {
  for (index_t i = 0; i < points; ++i) {
    const BlockSample<T>& q = table[i];
    const T* at = plane + q.offset;
    if (kCorners == 1) {
      out[i] = q.weight[0] * at[0];
    } else {
      out[i] = q.weight[0] * at[0] + q.weight[1] * at[steps.column] + q.weight[2] * at[steps.row] +
               q.weight[3] * at[steps.row + steps.column];
    }
  }
}

template <int kCorners, class T>
void scatter_plane(const T* grad, const BlockSample<T>* table, BlockSteps steps, index_t points, T* plane) {
  for (index_t i = 0; i < points; ++i) {
    T* at = plane + table[i].offset;
    at[0] += table[i].weight[0] * grad[i];
    if (kCorners == 4) {
      at[steps.column] += table[i].weight[1] * grad[i];
      at[steps.row] += table[i].weight[2] * grad[i];
      at[steps.row + steps.column] += table[i].weight[3] * grad[i];
    }
  }
}

constexpr index_t kPointBlock = 256;

// grad_grid for points [p0, p1) of image n: sum over channels of d(out)/d(pixel) * grad_out,
// times d(pixel)/d(grid). Nearest sampling is piecewise constant: its grid gradient is 0.
template <class T>
void grid_gradient_block(const GridSampleShape& s, const GridSampleParams& p, const T* input, const T* grid,
                         const T* grad_out, index_t n, index_t p0, index_t p1, T* grad_grid) {
  T* dst = grad_grid + (n * s.points() + p0) * 2;
  if (p.mode == GridMode::nearest) {
    std::fill(dst, dst + (p1 - p0) * 2, T(0));
    return;
  }
  GridSample<T> samples[kPointBlock];
  SourcePoint<T> sources[kPointBlock];
  T gx[kPointBlock] = {}, gy[kPointBlock] = {};
  for (index_t i = p0; i < p1; ++i) {
    sources[i - p0] = source_point(s, p, grid + (n * s.points() + i) * 2);
    bilinear::grid_bilinear_sample(sources[i - p0].x.value, sources[i - p0].y.value, s.H, s.W, &samples[i - p0]);
  }
  for (index_t c = 0; c < s.C; ++c) {
    const T* plane = input + (n * s.C + c) * s.H * s.W;
    const T* g = grad_out + (n * s.C + c) * s.points();
    for (index_t i = p0; i < p1; ++i) {
      const GridSample<T>& q = samples[i - p0];
      T v[4], dx, dy;
      for (int k = 0; k < 4; ++k) v[k] = q.valid[k] ? plane[q.sample.offset[k]] : T(0);
      bilinear::bilinear_value_grads(v, q.tx, q.ty, &dx, &dy);
      gx[i - p0] += dx * g[i];
      gy[i - p0] += dy * g[i];
    }
  }
  for (index_t i = 0; i < p1 - p0; ++i) {
    dst[2 * i] = gx[i] * sources[i].x.grad;
    dst[2 * i + 1] = gy[i] * sources[i].y.grad;
  }
}

}  // namespace

template <class T>
void grid_sample_forward(const GridSampleShape& s, const GridSampleParams& p, const T* input, const T* grid, T* out) {
  const index_t plane = s.H * s.W, points = s.points();
  const BlockSteps steps(s);
  parallel_for(0, s.N * s.C, 1, [&](index_t lo, index_t hi) {
    for_each_plane(s, p, grid, lo, hi, [&](index_t item, const BlockSample<T>* table) {
      if (p.mode == GridMode::nearest)
        sample_plane<1>(input + item * plane, table, steps, points, out + item * points);
      else
        sample_plane<4>(input + item * plane, table, steps, points, out + item * points);
    });
  });
}

template <class T>
void grid_sample_backward(const GridSampleShape& s, const GridSampleParams& p, const T* input, const T* grid,
                          const T* grad_out, T* grad_input, T* grad_grid) {
  const index_t plane = s.H * s.W, points = s.points();
  const BlockSteps steps(s);
  if (grad_input) {
    parallel_for(0, s.N * s.C, 1, [&](index_t lo, index_t hi) {
      for_each_plane(s, p, grid, lo, hi, [&](index_t item, const BlockSample<T>* table) {
        T* dst = grad_input + item * plane;
        std::memset(dst, 0, sizeof(T) * plane);
        if (p.mode == GridMode::nearest)
          scatter_plane<1>(grad_out + item * points, table, steps, points, dst);
        else
          scatter_plane<4>(grad_out + item * points, table, steps, points, dst);
      });
    });
  }
  if (grad_grid) {
    const index_t blocks = ceil_div(points, kPointBlock);
    parallel_for(0, s.N * blocks, 1, [&](index_t lo, index_t hi) {
      for (index_t item = lo; item < hi; ++item) {
        const index_t n = item / blocks, p0 = item % blocks * kPointBlock;
        grid_gradient_block(s, p, input, grid, grad_out, n, p0, std::min(p0 + kPointBlock, points), grad_grid);
      }
    });
  }
}

// ---- affine_grid ----

namespace {

// torch.linspace(-1, 1, steps), scaled by (steps - 1) / steps without align_corners so that
// the points are pixel centres (linspace_from_neg_one); a single step is 0.
template <class T>
T base_coordinate(index_t i, index_t steps, bool align_corners) {
  if (steps <= 1) return T(0);
  const T step = T(2) / T(steps - 1);
  // linspace fills its first half from the start and its second half from the end.
  T v = i < steps / 2 ? T(-1) + step * T(i) : T(1) - step * T(steps - i - 1);
  if (!align_corners) v = v * T(steps - 1) / T(steps);
  return v;
}

}  // namespace

template <class T>
void affine_grid_forward(index_t N, index_t H, index_t W, bool align_corners, const T* theta, T* grid) {
  parallel_for(0, N * H, 1, [&](index_t lo, index_t hi) {
    for (index_t row = lo; row < hi; ++row) {
      const T* t = theta + row / H * 6;
      const T y = base_coordinate<T>(row % H, H, align_corners);
      T* dst = grid + row * W * 2;
      for (index_t w = 0; w < W; ++w) {
        const T x = base_coordinate<T>(w, W, align_corners);
        dst[2 * w] = x * t[0] + y * t[1] + t[2];
        dst[2 * w + 1] = x * t[3] + y * t[4] + t[5];
      }
    }
  });
}

template <class T>
void affine_grid_backward(index_t N, index_t H, index_t W, bool align_corners, const T* grad_grid, T* grad_theta) {
  parallel_for(0, N, 1, [&](index_t lo, index_t hi) {
    for (index_t n = lo; n < hi; ++n) {
      double sum[6] = {};  // H * W terms per entry: accumulate wide
      const T* g = grad_grid + n * H * W * 2;
      for (index_t h = 0; h < H; ++h) {
        const double y = base_coordinate<T>(h, H, align_corners);
        for (index_t w = 0; w < W; ++w, g += 2) {
          const double x = base_coordinate<T>(w, W, align_corners);
          for (int i = 0; i < 2; ++i) {
            sum[3 * i] += g[i] * x;
            sum[3 * i + 1] += g[i] * y;
            sum[3 * i + 2] += g[i];
          }
        }
      }
      for (int j = 0; j < 6; ++j) grad_theta[n * 6 + j] = static_cast<T>(sum[j]);
    }
  });
}

#define FASTCONV_INSTANTIATE(T)                                                                                     \
  template void grid_sample_forward<T>(const GridSampleShape&, const GridSampleParams&, const T*, const T*, T*);    \
  template void grid_sample_backward<T>(const GridSampleShape&, const GridSampleParams&, const T*, const T*,        \
                                        const T*, T*, T*);                                                          \
  template void affine_grid_forward<T>(index_t, index_t, index_t, bool, const T*, T*);                              \
  template void affine_grid_backward<T>(index_t, index_t, index_t, bool, const T*, T*);
FASTCONV_INSTANTIATE(float)
FASTCONV_INSTANTIATE(double)
#undef FASTCONV_INSTANTIATE

}  // namespace fastconv::vision
