// grid_sample forward and backward for channels_last arrays (NHWC memory): a point's 2x2 block
// of pixels (grid_sample_blocks.h) read or written across the pixel's C adjacent channels
// (vectorised), in the NCHW kernels' order of operations, so that every value has their bits.
//
// Forward: every output pixel is independent. Backward: one pass over an image's points per
// group of its channels, as the NCHW kernel's, scattering the input gradient and summing the
// grid gradient's terms across the group's channels.
#include <algorithm>
#include <vector>

#include "core/parallel.h"
#include "sampling/cpu/channel_blocks.h"  // zero_block
#include "sampling/cpu/grid_sample.h"
#include "sampling/cpu/grid_sample_blocks.h"
#include "sampling/cpu/sampling_loops.h"

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
  const SamplingLoops<T>& loops = sampling_loops<T>();
  parallel_for(0, s.N * s.points(), 16, [&](index_t lo, index_t hi) {
    const std::vector<T> zeros(s.C, T(0));  // what a place the sample does not read gives
    for (index_t i = lo; i < hi; ++i) {
      const BlockSample<T> q = point_sample(s, p, grid + 2 * i);
      const T* at = input + (i / s.points() * s.H * s.W + q.offset) * s.C;
      const T* place[4];
      for (int k = 0; k < 4; ++k) place[k] = q.read >> k & 1 ? at + places.pixel[k] * s.C : zeros.data();
      if (nearest) loops.scale(place[0], s.C, q.weight[0], out + i * s.C);
      else loops.blend4(place, q.weight, s.C, out + i * s.C);
    }
  });
}

namespace {

// One point's share of the backward over channels [0, count) of a block of channels: grad_out's
// sample g added back onto the block's pixels of grad_in (when asked, corners = 1 for nearest),
// and the sums over those channels of d(out)/d(ix) * g and d(out)/d(iy) * g written to acc
// (when asked), each channel's terms added in the NCHW kernel's order. Pointers are at the
// block's first channel; a pixel's channels are C values from the next pixel's.
template <class T>
void backward_point(const GridSampleShape& s, const BlockPlaces& places, const BlockGradient<T>& b, int corners,
                    const T* g, index_t count, const T* in, const T* zeros, T* grad_in, T* acc) {
  if (grad_in) {
    const auto add_scaled = sampling_loops<T>().add_scaled;
    for (int k = 0; k < corners; ++k) {
      if (!(b.sample.read >> k & 1)) continue;
      add_scaled(g, count, b.sample.weight[k], grad_in + (b.sample.offset + places.pixel[k]) * s.C);
    }
  }
  if (!acc) return;
  const T* place[4];
  for (int k = 0; k < 4; ++k)
    place[k] = b.sample.read >> k & 1 ? in + (b.sample.offset + places.pixel[k]) * s.C : zeros;
  T sum_x = 0, sum_y = 0;
  for (index_t c = 0; c < count; ++c) {
    T dx = 0, dy = 0;
    for (int k = 0; k < 4; ++k) {
      dx += b.dx[k] * place[k][c];
      dy += b.dy[k] * place[k][c];
    }
    sum_x += dx * g[c];
    sum_y += dy * g[c];
  }
  acc[0] = sum_x;
  acc[1] = sum_y;
}

}  // namespace

// The NCHW kernel's work split: (image, channel group) items, each the one writer of its block
// of grad_input and of its partial sums of the grid gradient, which are then added in group
// order (finish_grid_gradient): race-free, deterministic, and the NCHW kernel's bits.
template <class T>
void grid_sample_backward_channels_last(const GridSampleShape& s, const GridSampleParams& p, const T* input,
                                        const T* grid, const T* grad_out, T* grad_input, T* grad_grid) {
  if (s.N == 0) return;
  const BlockPlaces places(s);
  const index_t points = s.points(), pixels = s.H * s.W;
  const bool nearest = p.mode == GridMode::nearest;
  const index_t groups = grid_gradient_groups(s);
  std::vector<T> partial(grad_grid && !nearest ? s.N * groups * points * 2 : 0);
  parallel_for(0, s.N * groups, 1, [&](index_t lo, index_t hi) {
    const std::vector<T> zeros(s.C, T(0));  // what a place the sample does not read gives
    for (index_t item = lo; item < hi; ++item) {
      const index_t n = item / groups, group = item % groups;
      const index_t c0 = s.C * group / groups, count = s.C * (group + 1) / groups - c0;
      const T* in = input + n * pixels * s.C + c0;
      T* grad_in = grad_input ? grad_input + n * pixels * s.C + c0 : nullptr;
      if (grad_in) zero_block(grad_in, pixels, s.C, count);
      T* acc = partial.empty() ? nullptr : partial.data() + item * points * 2;
      for (index_t i = 0; i < points; ++i) {
        const T* xy = grid + 2 * (n * points + i);
        const BlockGradient<T> b = acc ? point_gradient(s, p, xy) : BlockGradient<T>{point_sample(s, p, xy), {}, {}};
        backward_point(s, places, b, nearest ? 1 : 4, grad_out + (n * points + i) * s.C + c0, count, in,
                       zeros.data(), grad_in, acc ? acc + 2 * i : nullptr);
      }
    }
  });
  if (grad_grid) finish_grid_gradient(s, p, grid, partial, groups, grad_grid);
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
