// grid_sample and affine_grid, forward and backward (ATen GridSampler semantics).
//
// A grid point's corners and weights depend on the image, not on the channel: each thread builds
// the table of an image's points once and applies it to every channel plane it was given, so
// the inner loop is four gathers and four multiply-adds per output.
//
// Backward: one pass per plane scatters the input gradient and accumulates the grid gradient's
// per-point sums over channels (see grid_sample_backward for why it is race-free and
// deterministic).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "common/bilinear.h"
#include "core/parallel.h"
#include "core/scratch.h"
#include "sampling/cpu/grid_sample.h"
#include "sampling/cpu/grid_sample_blocks.h"

namespace fastconv::sampling::cpu {

namespace {

// Image n's table of points: entry i is entry_of(point i's (x, y)), built once per image and
// re-read for every channel.
template <class Entry, class T, class EntryOf>
void build_table(const GridSampleShape& s, const T* grid, index_t n, std::vector<Entry>& table,
                 const EntryOf& entry_of) {
  table.resize(s.points());
  const T* xy = grid + n * s.points() * 2;
  for (index_t i = 0; i < s.points(); ++i) table[i] = entry_of(xy + 2 * i);
}

// Channels sampled per pass over a table: each table entry is loaded once for all of them.
constexpr int kPlanesPerPass = 4;

// Runs fn(item, count, table) over the (image, channel) planes [lo, hi) in runs of count
// consecutive planes of one image (kPlanesPerPass, or 1 for the rest), rebuilding the point
// table only when the image changes.
template <class T, class Fn>
void for_each_plane_run(const GridSampleShape& s, const GridSampleParams& p, const T* grid, index_t lo, index_t hi,
                        const Fn& fn) {
  std::vector<BlockSample<T>> table;
  for (index_t item = lo; item < hi;) {
    const index_t n = item / s.C, image_end = std::min(hi, (n + 1) * s.C);
    build_table(s, grid, n, table, [&](const T* xy) { return point_sample(s, p, xy); });
    for (; item + kPlanesPerPass <= image_end; item += kPlanesPerPass) fn(item, kPlanesPerPass, table.data());
    for (; item < image_end; ++item) fn(item, 1, table.data());
  }
}

// out[j] = the samples of plane[j] for j < kPlanes (planes plane_size apart, outputs `points`
// apart); kCorners: 4 for bilinear, 1 for nearest (whose table keeps its pixel first).
template <int kCorners, int kPlanes, class T>
void sample_planes(const T* planes, index_t plane_size, const BlockSample<T>* table, BlockSteps steps,
                   index_t points, T* out) {
  const index_t place[4] = {0, steps.column, steps.row, steps.row + steps.column};
  for (index_t i = 0; i < points; ++i) {
    const BlockSample<T> q = table[i];
    for (int j = 0; j < kPlanes; ++j) {
      const T* at = planes + j * plane_size + q.offset;
      T v = q.weight[0] * place_value(at, q.read, 0, place);
      if (kCorners == 4)
        v = v + q.weight[1] * place_value(at, q.read, 1, place) + q.weight[2] * place_value(at, q.read, 2, place) +
            q.weight[3] * place_value(at, q.read, 3, place);
      out[j * points + i] = v;
    }
  }
}

// Calls fn(corners, planes) with both as std::integral_constant: the mode's corner count and
// the run's plane count, so that each combination compiles to its own unrolled loop.
template <class Fn>
void with_run_shape(GridMode mode, index_t count, const Fn& fn) {
  using One = std::integral_constant<int, 1>;
  using Four = std::integral_constant<int, 4>;
  using Pass = std::integral_constant<int, kPlanesPerPass>;
  const bool full = count == kPlanesPerPass;
  if (mode == GridMode::nearest) {
    full ? fn(One{}, Pass{}) : fn(One{}, One{});
  } else {
    full ? fn(Four{}, Pass{}) : fn(Four{}, One{});
  }
}

// One plane's backward: grad_out scattered into grad_in (when asked) and, per point,
// d(out)/d(ix) * grad_out and d(out)/d(iy) * grad_out added to acc (when asked). Nearest
// sampling (corners = 1) touches only the pixel itself, which may be a plane's last.
template <class T>
void backward_plane(const T* in, const T* grad_out, const BlockGradient<T>* table, BlockSteps steps, int corners,
                    index_t points, T* grad_in, T* acc) {
  const index_t place[4] = {0, steps.column, steps.row, steps.row + steps.column};
  for (index_t i = 0; i < points; ++i) {
    const BlockGradient<T>& q = table[i];
    const T g = grad_out[i];
    if (grad_in)
      for (int k = 0; k < corners; ++k)
        if (q.sample.read >> k & 1) grad_in[q.sample.offset + place[k]] += q.sample.weight[k] * g;
    if (acc) {
      const T* v = in + q.sample.offset;
      T dx = 0, dy = 0;
      for (int k = 0; k < 4; ++k) {
        const T value = place_value(v, q.sample.read, k, place);
        dx += q.dx[k] * value;
        dy += q.dy[k] * value;
      }
      acc[2 * i] += dx * g;
      acc[2 * i + 1] += dy * g;
    }
  }
}

}  // namespace

template <class T>
void grid_sample_forward(const GridSampleShape& s, const GridSampleParams& p, const T* input, const T* grid, T* out) {
  const index_t plane = s.H * s.W, points = s.points();
  const BlockSteps steps(s);
  parallel_for(0, s.N * s.C, 1, [&](index_t lo, index_t hi) {
    for_each_plane_run(s, p, grid, lo, hi, [&](index_t item, index_t count, const BlockSample<T>* table) {
      with_run_shape(p.mode, count, [&](auto corners, auto planes) {
        sample_planes<corners(), planes()>(input + item * plane, plane, table, steps, points, out + item * points);
      });
    });
  });
}

template <class T>
void grid_sample_backward(const GridSampleShape& s, const GridSampleParams& p, const T* input, const T* grid,
                          const T* grad_out, T* grad_input, T* grad_grid) {
  if (s.N == 0) return;
  const index_t plane = s.H * s.W, points = s.points();
  const BlockSteps steps(s);
  const bool nearest = p.mode == GridMode::nearest;
  // Work items are (image, channel group): each grad_input plane and each partial sum of the grid
  // gradient has one writer, race-free and deterministic.
  const index_t groups = grid_gradient_groups(s);
  std::vector<T> partial(grad_grid && !nearest ? s.N * groups * points * 2 : 0);
  parallel_for(0, s.N * groups, 1, [&](index_t lo, index_t hi) {
    std::vector<BlockGradient<T>> table;
    for (index_t item = lo; item < hi; ++item) {
      const index_t n = item / groups, group = item % groups;
      const index_t c0 = s.C * group / groups, c1 = s.C * (group + 1) / groups;
      build_table(s, grid, n, table, [&](const T* xy) { return point_gradient(s, p, xy); });
      T* acc = partial.empty() ? nullptr : partial.data() + item * points * 2;
      if (acc) std::fill(acc, acc + points * 2, T(0));
      if (grad_input) std::memset(grad_input + (n * s.C + c0) * plane, 0, sizeof(T) * (c1 - c0) * plane);
      for (index_t c = c0; c < c1; ++c) {
        const index_t item_plane = n * s.C + c;
        backward_plane(input + item_plane * plane, grad_out + item_plane * points, table.data(), steps,
                       nearest ? 1 : 4, points, grad_input ? grad_input + item_plane * plane : nullptr, acc);
      }
    }
  });
  if (grad_grid) finish_grid_gradient(s, p, grid, partial, groups, grad_grid);
}

// ---- affine_grid ----

namespace {

// torch.linspace(-1, 1, steps), scaled by (steps - 1) / steps without align_corners so that
// the points are pixel centres (linspace_from_neg_one); a single step is 0.
template <class T>
T base_coordinate(index_t i, index_t steps, bool align_corners) {
  if (steps <= 1) return T(0);
  const T step = T(2) / T(steps - 1);
  // linspace fills its first half from the start and its second half from the end, each point
  // with one fused multiply-add (its vectorised kernel's fmadd): the same bits as PyTorch's.
  T v = i < steps / 2 ? std::fma(step, T(i), T(-1)) : std::fma(-step, T(steps - i - 1), T(1));
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

}  // namespace fastconv::sampling::cpu
