// The driver shared by the transform-domain convolutions (winograd.cpp, fft.cpp).
//
// Both algorithms cut the output into m_h x m_w tiles, read the alpha_h x alpha_w input patch
// that each tile needs, map it to `points` transform-domain values, and turn the convolution
// into one channel-reducing GEMM per transform point (Lavin & Gray 2016, section 4.2):
//     M[pt] (K x tiles) = U[pt] (K x C) * V[pt] (C x tiles),  per group,
// then map M back to the output tile. With `parts == 2` every point is a complex number and
// its GEMM is the real form of a complex product, [Mr; Mi] = [[Ur, -Ui], [Ui, Ur]] [Vr; Vi].
//
// A Transform provides alpha_h, alpha_w, m_h, m_w, points, parts and
//   filter(w /*lanes filters of R x S*/, lanes, out /*points x parts x lanes*/, work)
//   input(tile /*alpha_h x alpha_w x lanes*/, lanes, out, point_stride, part_stride, work)
//   output(in, point_stride, part_stride, lanes, tile /*m_h x m_w x lanes*/, work)
//   work_size(lanes)
// where "x lanes" means `lanes` tiles side by side, the lane index innermost (the transforms
// vectorise across tiles, as NNPACK's do).
#pragma once
#include <algorithm>
#include <vector>

#include "conv/conv2d.h"
#include "core/parallel.h"
#include "core/scratch.h"
#include "gemm/gemm.h"

namespace fastconv::conv {

// A stride-1, dilation-1 convolution as the tiled driver sees it: output (N, K, P, Q), and
// output (p, q) reads input rows top + p + [0, R) and columns left + q + [0, S) (0 outside).
struct TiledGeometry {
  index_t N, C, H, W, K, groups, P, Q, top, left;
};

inline TiledGeometry forward_geometry(const Conv2dShape& s) {
  return {s.N, s.C, s.H, s.W, s.K, s.groups(), s.P, s.Q, -s.p.pad_begin[0], -s.p.pad_begin[1]};
}

// grad_x[h] = sum_r grad_y[h + pad - r] w[r] = sum_r' grad_y[h + pad - (R-1) + r'] w[R-1-r']:
// a stride-1 convolution of grad_y with the rotated, channel-transposed weights (see
// rotated_transposed_weights), reading from offset pad - (R-1), which may be positive.
inline TiledGeometry backward_input_geometry(const Conv2dShape& s) {
  return {s.N, s.K, s.P, s.Q, s.C, s.groups(), s.H, s.W, s.p.pad_begin[0] - (s.R - 1), s.p.pad_begin[1] - (s.S - 1)};
}

namespace tiled {

constexpr index_t kLanes = 16;                // tiles transformed side by side
constexpr index_t kBlockBytes = 8 << 20;  // V and M of one block of tiles, per thread (measured: 8 MiB
                                          // beat 1 and 3 MiB on the 3x3 and 7x7 bench layers)

// U[pt] per group as a (parts*Kg) x (parts*Cg) matrix, stored [pt][g][parts*Kg][parts*Cg].
// Filters are transformed kLanes at a time (consecutive input channels of one output channel),
// so that each point's values are written as contiguous runs (U is large, its points far apart).
template <class Transform>
index_t transformed_filters_size(const TiledGeometry& g, const Transform& tf) {
  return tf.points * tf.parts * tf.parts * g.K * (g.C / g.groups);
}

template <class T, class Transform>
void transform_filters(const TiledGeometry& g, const Transform& tf, const T* w, index_t R, index_t S, T* u) {
  const index_t Kg = g.K / g.groups, Cg = g.C / g.groups, parts = tf.parts, ld = parts * Cg;
  const index_t block = parts * Kg * ld, point_stride = g.groups * block;
  parallel_for(0, g.K, 1, [&](index_t lo, index_t hi) {
    std::vector<T> values(tf.points * parts * kLanes), work(tf.work_size(kLanes));
    for (index_t k = lo; k < hi; ++k)
      for (index_t c0 = 0; c0 < Cg; c0 += kLanes) {
        const index_t lanes = std::min(kLanes, Cg - c0);
        tf.filter(w + (k * Cg + c0) * R * S, lanes, values.data(), work.data());
        T* row = u + (k / Kg) * block + (k % Kg) * ld + c0;
        for (index_t pt = 0; pt < tf.points; ++pt) {
          T* dst = row + pt * point_stride;
          const T* re = values.data() + pt * parts * lanes;
          if (parts == 1) {
            std::copy(re, re + lanes, dst);
            continue;
          }
          const T* im = re + lanes;  // the real form of a complex product: [[re, -im], [im, re]]
          for (index_t l = 0; l < lanes; ++l) {
            dst[l] = re[l];
            dst[Cg + l] = -im[l];
            dst[Kg * ld + l] = im[l];
            dst[Kg * ld + Cg + l] = re[l];
          }
        }
      }
  });
}

// The tiles of one block, as (image, first output row, first output column).
struct TileIndex {
  index_t tiles_h, tiles_w, m_h, m_w;
  void locate(index_t t, index_t& n, index_t& p0, index_t& q0) const {
    n = t / (tiles_h * tiles_w);
    p0 = t / tiles_w % tiles_h * m_h;
    q0 = t % tiles_w * m_w;
  }
};

// patch[(a * alpha_w + b) * lanes + l] = x[n, c, top + p0 + a, left + q0 + b], 0 outside.
template <class T, class Transform>
void gather_patches(const TiledGeometry& g, const Transform& tf, const TileIndex& ti, const T* x, index_t c,
                    index_t t0, index_t lanes, T* patch) {
  for (index_t l = 0; l < lanes; ++l) {
    index_t n, p0, q0;
    ti.locate(t0 + l, n, p0, q0);
    const T* plane = x + (n * g.C + c) * g.H * g.W;
    const index_t h0 = g.top + p0, w0 = g.left + q0;
    const Range cols = valid_range(w0, 1, g.W, tf.alpha_w);
    for (index_t a = 0; a < tf.alpha_h; ++a) {
      T* dst = patch + a * tf.alpha_w * lanes + l;
      const index_t h = h0 + a;
      const bool row_inside = h >= 0 && h < g.H;
      for (index_t b = 0; b < tf.alpha_w; ++b)
        dst[b * lanes] = row_inside && b >= cols.lo && b < cols.hi ? plane[h * g.W + w0 + b] : T(0);
    }
  }
}

// y[n, k, p0 + i, q0 + j] = relu?(tile[(i * m_w + j) * lanes + l] + bias) inside the output.
template <class T>
void scatter_tiles(const TiledGeometry& g, const TileIndex& ti, const T* tile, index_t k, T bias, bool relu,
                   index_t t0, index_t lanes, T* y) {
  for (index_t l = 0; l < lanes; ++l) {
    index_t n, p0, q0;
    ti.locate(t0 + l, n, p0, q0);
    T* plane = y + (n * g.K + k) * g.P * g.Q;
    const index_t rows = std::min(ti.m_h, g.P - p0), cols = std::min(ti.m_w, g.Q - q0);
    for (index_t i = 0; i < rows; ++i)
      for (index_t j = 0; j < cols; ++j) {
        const T v = tile[(i * ti.m_w + j) * lanes + l] + bias;
        plane[(p0 + i) * g.Q + q0 + j] = relu ? std::max(v, T(0)) : v;
      }
  }
}

// One block of tiles [t0, t0 + nt): input transform into V, a GEMM per point and group into
// M, output transform into y. V, M are [pt][parts * channels][tb] (tb: the block's row stride).
// Each stage is a parallel_for: inline when the blocks already run on every thread, spread
// over the threads when one block is all there is (a few tiles and many channels), so that
// even then every GEMM runs single-threaded, without a barrier each.
template <class T, class Transform>
void convolve_block(const TiledGeometry& g, const Transform& tf, const TileIndex& ti, const T* x, const T* u,
                    const T* bias, bool relu, T* y, index_t t0, index_t nt, index_t tb, T* v, T* m) {
  const index_t Kg = g.K / g.groups, Cg = g.C / g.groups, parts = tf.parts;
  const index_t v_point = parts * g.C * tb, m_point = parts * g.K * tb;
  const index_t patch_size = tf.alpha_h * tf.alpha_w * kLanes;
  parallel_for(0, g.C, 1, [&](index_t lo, index_t hi) {
    T* patch = thread_scratch<T>(patch_size + tf.work_size(kLanes), ScratchSlot::transform_work);
    for (index_t c = lo; c < hi; ++c) {
      T* base = v + ((c / Cg) * parts * Cg + c % Cg) * tb;
      for (index_t l0 = 0; l0 < nt; l0 += kLanes) {
        const index_t lanes = std::min(kLanes, nt - l0);
        gather_patches(g, tf, ti, x, c, t0 + l0, lanes, patch);
        tf.input(patch, lanes, base + l0, v_point, Cg * tb, patch + patch_size);
      }
    }
  });
  const index_t u_block = parts * Kg * parts * Cg;
  parallel_for(0, tf.points * g.groups, 1, [&](index_t lo, index_t hi) {
    for (index_t i = lo; i < hi; ++i) {
      const index_t pt = i / g.groups, grp = i % g.groups;
      const auto a = dense_matrix(u + i * u_block, parts * Kg, parts * Cg);
      const MatrixView<const T> b{v + pt * v_point + grp * parts * Cg * tb, parts * Cg, nt, tb, 1, 0, 0, 0, 0};
      const MatrixView<T> c{m + pt * m_point + grp * parts * Kg * tb, parts * Kg, nt, tb, 1, 0, 0, 0, 0};
      gemm::gemm<T>(a, b, c);
    }
  });
  parallel_for(0, g.K, 1, [&](index_t lo, index_t hi) {
    T* tile = thread_scratch<T>(patch_size + tf.work_size(kLanes), ScratchSlot::transform_work);
    for (index_t k = lo; k < hi; ++k) {
      const T* base = m + ((k / Kg) * parts * Kg + k % Kg) * tb;
      for (index_t l0 = 0; l0 < nt; l0 += kLanes) {
        const index_t lanes = std::min(kLanes, nt - l0);
        tf.output(base + l0, m_point, Kg * tb, lanes, tile, tile + patch_size);
        scatter_tiles(g, ti, tile, k, bias ? bias[k] : T(0), relu, t0 + l0, lanes, y);
      }
    }
  });
}

}  // namespace tiled

// y = conv(x, w) (+ bias, ReLU) through transform `tf`, for filters u already transformed by
// tiled::transform_filters (callers that reuse a weight transform it once: ops.conv_weight_cache).
template <class T, class Transform>
void tiled_conv_transformed(const TiledGeometry& g, const Transform& tf, const T* x, const T* u, const T* bias,
                            bool relu, T* y) {
  using namespace tiled;
  const TileIndex ti{ceil_div(g.P, tf.m_h), ceil_div(g.Q, tf.m_w), tf.m_h, tf.m_w};
  const index_t tiles = g.N * ti.tiles_h * ti.tiles_w;
  if (tiles == 0) return;
  const index_t tile_bytes = tf.points * tf.parts * (g.C + g.K) * static_cast<index_t>(sizeof(T));
  // Blocks small enough for the cache, as many as a multiple of the thread count: each thread
  // runs whole blocks, its GEMMs single-threaded inside (no barrier per GEMM).
  const index_t tb_max = std::max<index_t>(kBlockBytes / tile_bytes, kLanes);
  const index_t tb = ceil_div(tiles, round_up(ceil_div(tiles, tb_max), num_threads()));
  const index_t blocks = ceil_div(tiles, tb);
  parallel_for(0, blocks, 1, [&](index_t lo, index_t hi) {
    const index_t v_size = tf.points * tf.parts * g.C * tb, m_size = tf.points * tf.parts * g.K * tb;
    T* v = thread_scratch<T>(v_size + m_size, ScratchSlot::transformed_tiles);
    for (index_t b = lo; b < hi; ++b) {
      const index_t t0 = b * tb;
      convolve_block(g, tf, ti, x, u, bias, relu, y, t0, std::min(tb, tiles - t0), tb, v, v + v_size);
    }
  });
}

// y = conv(x, w) (+ bias, ReLU) for weights w (K, C/G, R, S), through transform `tf`.
template <class T, class Transform>
void tiled_conv(const TiledGeometry& g, const Transform& tf, const T* x, const T* w, index_t R, index_t S,
                const T* bias, bool relu, T* y) {
  if (g.N == 0 || g.P == 0 || g.Q == 0) return;
  std::vector<T> u(tiled::transformed_filters_size(g, tf));
  tiled::transform_filters(g, tf, w, R, S, u.data());
  tiled_conv_transformed(g, tf, x, u.data(), bias, relu, y);
}

}  // namespace fastconv::conv
