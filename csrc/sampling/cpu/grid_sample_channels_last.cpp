// grid_sample forward and backward for channels_last arrays (NHWC memory): a point's 2x2 block
// of pixels (grid_sample_blocks.h) read or written across the pixel's C adjacent channels
// (vectorised), in the NCHW kernels' order of operations, so that every value has their bits.
//
// Forward: every output pixel is independent. Backward: the input gradient is scattered by
// blocks of channels (channel_blocks.h), each block's points in order as the NCHW kernel adds
// them; the grid gradient, a sum over channels per point, is independent per point and sums in
// the NCHW kernel's channel groups.
#include <algorithm>
#include <vector>

#include "core/parallel.h"
#include "sampling/cpu/channel_blocks.h"
#include "sampling/cpu/grid_sample.h"
#include "sampling/cpu/grid_sample_blocks.h"

namespace fastconv::sampling::cpu {

namespace {

// The pixel offsets of a block's places (row, column) = (0, 0), (0, 1), (1, 0), (1, 1).
struct BlockPlaces {
  index_t pixel[4];
  explicit BlockPlaces(const GridSampleShape& s) {
    const BlockSteps steps(s);
    pixel[0] = 0, pixel[1] = steps.column, pixel[2] = steps.row, pixel[3] = steps.row + steps.column;
  }
};

}  // namespace

template <class T>
void grid_sample_forward_channels_last(const GridSampleShape& s, const GridSampleParams& p, const T* input,
                                       const T* grid, T* out) {
  if (s.N * s.C == 0) return;
  const BlockPlaces places(s);
  const bool nearest = p.mode == GridMode::nearest;
  parallel_for(0, s.N * s.points(), 16, [&](index_t lo, index_t hi) {
    const std::vector<T> zeros(s.C, T(0));  // what a place the sample does not read gives
    for (index_t i = lo; i < hi; ++i) {
      const BlockSample<T> q = point_sample(s, p, grid + 2 * i);
      const T* at = input + (i / s.points() * s.H * s.W + q.offset) * s.C;
      const T* place[4];
      for (int k = 0; k < 4; ++k) place[k] = q.read >> k & 1 ? at + places.pixel[k] * s.C : zeros.data();
      T* dst = out + i * s.C;
      if (nearest) {
        for (index_t c = 0; c < s.C; ++c) dst[c] = q.weight[0] * place[0][c];
      } else {
        for (index_t c = 0; c < s.C; ++c)
          dst[c] = q.weight[0] * place[0][c] + q.weight[1] * place[1][c] + q.weight[2] * place[2][c] +
                   q.weight[3] * place[3][c];
      }
    }
  });
}

namespace {

// grad_out's samples added back onto their blocks' pixels, points in order.
template <class T>
void scatter_input_gradient(const GridSampleShape& s, const GridSampleParams& p, const T* grid, const T* grad_out,
                            T* grad_input) {
  const BlockPlaces places(s);
  const int corners = p.mode == GridMode::nearest ? 1 : 4;
  for_each_channel_block(s.N, s.C, [&](const ChannelBlock& b) {
    T* image = grad_input + b.n * s.H * s.W * s.C + b.first;
    zero_block(image, s.H * s.W, s.C, b.count);
    for (index_t i = 0; i < s.points(); ++i) {
      const index_t point = b.n * s.points() + i;
      const BlockSample<T> q = point_sample(s, p, grid + 2 * point);
      const T* g = grad_out + point * s.C + b.first;
      for (int k = 0; k < corners; ++k) {
        if (!(q.read >> k & 1)) continue;
        T* to = image + (q.offset + places.pixel[k]) * s.C;
        const T w = q.weight[k];
        for (index_t c = 0; c < b.count; ++c) to[c] += w * g[c];
      }
    }
  });
}

// Per point: the sum over channels of d(out)/d(ix) * grad_out and d(out)/d(iy) * grad_out, in
// the NCHW kernel's channel groups and order, times d(pixel)/d(grid).
template <class T>
void grid_gradient(const GridSampleShape& s, const GridSampleParams& p, const T* input, const T* grid,
                   const T* grad_out, T* grad_grid) {
  const BlockPlaces places(s);
  const bool nearest = p.mode == GridMode::nearest;  // piecewise constant: 0
  const index_t groups = grid_gradient_groups(s);
  parallel_for(0, s.N * s.points(), 16, [&](index_t lo, index_t hi) {
    for (index_t i = lo; i < hi; ++i) {
      T gx = 0, gy = 0;
      if (!nearest) {
        const BlockGradient<T> b = point_gradient(s, p, grid + 2 * i);
        const T* at = input + (i / s.points() * s.H * s.W + b.sample.offset) * s.C;
        const T* g = grad_out + i * s.C;
        for (index_t group = 0; group < groups; ++group) {
          T acc_x = 0, acc_y = 0;
          for (index_t c = s.C * group / groups; c < s.C * (group + 1) / groups; ++c) {
            T dx = 0, dy = 0;
            for (int k = 0; k < 4; ++k) {
              const T value = b.sample.read >> k & 1 ? at[places.pixel[k] * s.C + c] : T(0);
              dx += b.dx[k] * value;
              dy += b.dy[k] * value;
            }
            acc_x += dx * g[c];
            acc_y += dy * g[c];
          }
          gx += acc_x;
          gy += acc_y;
        }
      }
      const SourcePoint<T> q = source_point(s, p, grid + 2 * i);
      grad_grid[2 * i] = gx * q.x.grad;
      grad_grid[2 * i + 1] = gy * q.y.grad;
    }
  });
}

}  // namespace

template <class T>
void grid_sample_backward_channels_last(const GridSampleShape& s, const GridSampleParams& p, const T* input,
                                        const T* grid, const T* grad_out, T* grad_input, T* grad_grid) {
  if (s.N == 0) return;
  if (grad_input) scatter_input_gradient(s, p, grid, grad_out, grad_input);
  if (grad_grid) grid_gradient(s, p, input, grid, grad_out, grad_grid);
}

#define FASTCONV_INSTANTIATE(T)                                                                                   \
  template void grid_sample_forward_channels_last<T>(const GridSampleShape&, const GridSampleParams&, const T*,  \
                                                     const T*, T*);                                              \
  template void grid_sample_backward_channels_last<T>(const GridSampleShape&, const GridSampleParams&, const T*, \
                                                      const T*, const T*, T*, T*);
FASTCONV_INSTANTIATE(float)
FASTCONV_INSTANTIATE(double)
#undef FASTCONV_INSTANTIATE

}  // namespace fastconv::sampling::cpu
