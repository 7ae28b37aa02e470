// Winograd F(2x2, 3x3) and F(4x4, 3x3) on CUDA (Lavin & Gray, "Fast Algorithms for
// Convolutional Neural Networks", 2016): an m x m output tile of a 3x3, stride-1 convolution is
//     Y = A^T [ (G g G^T) (.) (B^T d B) ] A
// for the 3x3 filter g and the alpha x alpha input tile d around it (alpha = m + 2), so that
// alpha^2 products per channel pair replace 9 m^2 (16 for 36, 36 for 144); summed over channels,
// the alpha^2 products are alpha^2 GEMMs (fastconv/cuda/conv.py):
//     M[xi][k][tile] = sum_c U[xi][k][c] V[xi][c][tile],  U = G g G^T,  V = B^T d B.
// The per-thread bodies of conv.cu's three transform kernels per tiling, one thread per filter,
// per input tile and channel, per output tile and channel; the transform-domain arrays are laid
// out point-major ([alpha^2][rows][cols]) so that each point's GEMM reads plain matrices.
// The transforms are the CPU kernel's 1-D codelets (common/winograd_codelets.h, with their
// matrices), applied to one tile at a time.
#pragma once
#include "common/host_device.h"
#include "common/index.h"
#include "common/winograd_codelets.h"

namespace fastconv::conv::winograd_tiles {

// A forward call: N images of C channels H x W, K filters, P x Q outputs in tiles of M x M.
// Input rows outside [0, row_end) and columns outside [0, col_end) read as 0: the padding, and
// the rows a negative bottom padding cuts off (they feed only outputs past P, which are
// dropped, but a non-finite value there would reach the kept ones through the transforms).
template <int M>
struct Geometry {
  index_t N, C, H, W, P, Q, pad_top, pad_left, row_end, col_end;
  FASTCONV_HD index_t tile_rows() const { return (P + M - 1) / M; }
  FASTCONV_HD index_t tile_cols() const { return (Q + M - 1) / M; }
  FASTCONV_HD index_t tiles() const { return N * tile_rows() * tile_cols(); }
};

// Tile t = (n * tile_rows + row) * tile_cols + col.
struct Tile {
  index_t n, row, col;
};

template <int M>
FASTCONV_HD inline Tile tile_at(const Geometry<M>& g, index_t t) {
  return {t / (g.tile_rows() * g.tile_cols()), t / g.tile_cols() % g.tile_rows(), t % g.tile_cols()};
}

// L x L^T for the 1-d codelet x -> L x: every column transformed, then every row, in the order
// of the CPU's portable transform_2d (conv/cpu/winograd.h; its float transforms on AVX2 and
// AVX-512 are winograd_rows.h's own).
template <int IN, int OUT, class T, class Codelet>
FASTCONV_HD inline void transform_2d(const T (&x)[IN][IN], T (&y)[OUT][OUT], Codelet codelet) {
  T half[OUT][IN];
  for (int col = 0; col < IN; ++col) codelet(&x[0][col], IN, &half[0][col], IN);
  for (int r = 0; r < OUT; ++r) codelet(&half[r][0], 1, &y[r][0], 1);
}

// The tiling F(m x m, 3x3) of the codelets C (winograd::F2x3, F4x3): m, alpha and the 2-D
// transforms G g G^T, B^T d B, A^T m A of one tile, each codelet run with lanes = 1.
template <class C>
struct Tiling {
  static constexpr int m = C::m, alpha = C::alpha;
  struct Filter {
    template <class T>
    FASTCONV_HD void operator()(const T* in, index_t is, T* out, index_t os) const { C::filter(in, is, out, os, 1); }
  };
  struct Input {
    template <class T>
    FASTCONV_HD void operator()(const T* in, index_t is, T* out, index_t os) const { C::input(in, is, out, os, 1); }
  };
  struct Output {
    template <class T>
    FASTCONV_HD void operator()(const T* in, index_t is, T* out, index_t os) const { C::output(in, is, out, os, 1); }
  };
  template <class T>
  FASTCONV_HD static void filter_transform(const T (&g)[3][3], T (&u)[alpha][alpha]) { transform_2d(g, u, Filter{}); }
  template <class T>
  FASTCONV_HD static void input_transform(const T (&d)[alpha][alpha], T (&v)[alpha][alpha]) {
    transform_2d(d, v, Input{});
  }
  template <class T>
  FASTCONV_HD static void output_transform(const T (&points)[alpha][alpha], T (&y)[m][m]) {
    transform_2d(points, y, Output{});
  }
};

// The bodies of conv.cu's kernels for a Tiling F.

// Filter i = k * Cg + c of w (K, Cg, 3, 3): u[xi * K * Cg + i] for its alpha^2 points xi.
template <class F, class T>
FASTCONV_HD inline void filter_element(index_t filters, const T* w, T* u, index_t i) {
  constexpr int alpha = F::alpha;
  T g[3][3], t[alpha][alpha];
  for (int r = 0; r < 3; ++r)
    for (int s = 0; s < 3; ++s) g[r][s] = w[i * 9 + r * 3 + s];
  F::filter_transform(g, t);
  for (int xi = 0; xi < alpha * alpha; ++xi) u[xi * filters + i] = t[xi / alpha][xi % alpha];
}

// Input tile t (tile_at) of channel c, i = c * tiles + t: v[xi * C * tiles + i]. Neighbouring
// tiles overlap by 2 rows and columns.
template <class F, class T>
FASTCONV_HD inline void input_element(const Geometry<F::m>& g, const T* x, T* v, index_t i) {
  constexpr int alpha = F::alpha;
  const index_t tiles = g.tiles(), c = i / tiles;
  const Tile tile = tile_at(g, i % tiles);
  const T* plane = x + (tile.n * g.C + c) * g.H * g.W;
  T d[alpha][alpha], t[alpha][alpha];
  for (int r = 0; r < alpha; ++r) {
    const index_t row = F::m * tile.row - g.pad_top + r;
    for (int s = 0; s < alpha; ++s) {
      const index_t col = F::m * tile.col - g.pad_left + s;
      d[r][s] = (row >= 0 && row < g.row_end && col >= 0 && col < g.col_end) ? plane[row * g.W + col] : T(0);
    }
  }
  F::input_transform(d, t);
  for (int xi = 0; xi < alpha * alpha; ++xi) v[xi * g.C * tiles + i] = t[xi / alpha][xi % alpha];
}

// Output tile t of channel k, i = k * tiles + t, of m ([alpha^2][K][tiles]):
// y[n, k, m row + a, m col + b] = relu?(A^T m A + bias[k]) for the outputs inside P x Q.
template <class F, class T>
FASTCONV_HD inline void output_element(const Geometry<F::m>& g, index_t K, const T* m, const T* bias, int relu, T* y,
                                       index_t i) {
  constexpr int alpha = F::alpha;
  const index_t tiles = g.tiles(), k = i / tiles;
  const Tile tile = tile_at(g, i % tiles);
  T points[alpha][alpha], out[F::m][F::m];
  for (int xi = 0; xi < alpha * alpha; ++xi) points[xi / alpha][xi % alpha] = m[xi * K * tiles + i];
  F::output_transform(points, out);
  for (int a = 0; a < F::m; ++a)
    for (int b = 0; b < F::m; ++b) {
      const index_t p = F::m * tile.row + a, q = F::m * tile.col + b;
      if (p >= g.P || q >= g.Q) continue;
      T value = bias ? out[a][b] + bias[k] : out[a][b];
      if (relu && value < T(0)) value = T(0);  // NaN passes, as torch.relu's
      y[((tile.n * K + k) * g.P + p) * g.Q + q] = value;
    }
}

}  // namespace fastconv::conv::winograd_tiles

namespace fastconv::conv::winograd_2x3 {
using Transforms = winograd_tiles::Tiling<fastconv::winograd::F2x3>;
using Geometry = winograd_tiles::Geometry<Transforms::m>;
}  // namespace fastconv::conv::winograd_2x3

namespace fastconv::conv::winograd_4x3 {
using Transforms = winograd_tiles::Tiling<fastconv::winograd::F4x3>;
using Geometry = winograd_tiles::Geometry<Transforms::m>;
}  // namespace fastconv::conv::winograd_4x3
