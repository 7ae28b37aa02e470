// Winograd F(2x2, 3x3) on CUDA (Lavin & Gray, "Fast Algorithms for Convolutional Neural
// Networks", 2016): a 2x2 output tile of a 3x3, stride-1 convolution is
//     Y = A^T [ (G g G^T) (.) (B^T d B) ] A
// for the 3x3 filter g and the 4x4 input tile d around it, so that 16 products per channel pair
// replace 36; summed over channels, the 16 products are 16 GEMMs (fastconv/cuda/conv.py):
//     M[xi][k][tile] = sum_c U[xi][k][c] V[xi][c][tile],  U = G g G^T,  V = B^T d B.
// The per-thread bodies of conv.cu's three transform kernels, one thread per filter, per input
// tile and channel, per output tile and channel; the transform-domain arrays are laid out
// point-major ([16][rows][cols]) so that each point's GEMM reads plain matrices.
//
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]    G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1]
//   A^T = [1 1 1 0; 0 1 -1 -1]
#pragma once
#include "common/host_device.h"
#include "common/index.h"

namespace fastconv::conv::winograd_2x3 {

// The 1-d transforms, applied to a column of IN values: B^T x, G x, A^T x.
struct InputRows {
  template <class T>
  FASTCONV_HD void operator()(const T (&x)[4], T (&y)[4]) const {
    y[0] = x[0] - x[2], y[1] = x[1] + x[2], y[2] = x[2] - x[1], y[3] = x[1] - x[3];
  }
};
struct FilterRows {
  template <class T>
  FASTCONV_HD void operator()(const T (&x)[3], T (&y)[4]) const {
    const T half_sum = T(0.5) * (x[0] + x[2]);
    y[0] = x[0], y[1] = half_sum + T(0.5) * x[1], y[2] = half_sum - T(0.5) * x[1], y[3] = x[2];
  }
};
struct OutputRows {
  template <class T>
  FASTCONV_HD void operator()(const T (&x)[4], T (&y)[2]) const {
    y[0] = x[0] + x[1] + x[2], y[1] = x[1] - x[2] - x[3];
  }
};

// L x L^T for the 1-d transform x -> L x: every column transformed, then every row.
template <int IN, int OUT, class T, class Rows>
FASTCONV_HD inline void transform_2d(const T (&x)[IN][IN], T (&y)[OUT][OUT], Rows rows) {
  T half[OUT][IN];
  for (int col = 0; col < IN; ++col) {
    T column[IN], transformed[OUT];
    for (int r = 0; r < IN; ++r) column[r] = x[r][col];
    rows(column, transformed);
    for (int r = 0; r < OUT; ++r) half[r][col] = transformed[r];
  }
  for (int r = 0; r < OUT; ++r) rows(half[r], y[r]);
}

template <class T>
FASTCONV_HD inline void input_transform(const T (&d)[4][4], T (&v)[4][4]) { transform_2d(d, v, InputRows{}); }
template <class T>
FASTCONV_HD inline void filter_transform(const T (&g)[3][3], T (&u)[4][4]) { transform_2d(g, u, FilterRows{}); }
template <class T>
FASTCONV_HD inline void output_transform(const T (&m)[4][4], T (&y)[2][2]) { transform_2d(m, y, OutputRows{}); }

// A forward call: N images of C channels H x W, K filters, P x Q outputs in tiles of 2x2.
// Input rows outside [0, row_end) and columns outside [0, col_end) read as 0: the padding, and
// the rows a negative bottom padding cuts off (they feed only outputs past P, which are
// dropped, but a non-finite value there would reach the kept ones through the transforms).
struct Geometry {
  index_t N, C, H, W, P, Q, pad_top, pad_left, row_end, col_end;
  FASTCONV_HD index_t tile_rows() const { return (P + 1) / 2; }
  FASTCONV_HD index_t tile_cols() const { return (Q + 1) / 2; }
  FASTCONV_HD index_t tiles() const { return N * tile_rows() * tile_cols(); }
};

// Tile t = (n * tile_rows + row) * tile_cols + col.
struct Tile {
  index_t n, row, col;
};

FASTCONV_HD inline Tile tile_at(const Geometry& g, index_t t) {
  return {t / (g.tile_rows() * g.tile_cols()), t / g.tile_cols() % g.tile_rows(), t % g.tile_cols()};
}

// Filter i = k * Cg + c of w (K, Cg, 3, 3): u[xi * K * Cg + i] for its 16 points xi.
template <class T>
FASTCONV_HD inline void filter_element(index_t filters, const T* w, T* u, index_t i) {
  T g[3][3], t[4][4];
  for (int r = 0; r < 3; ++r)
    for (int s = 0; s < 3; ++s) g[r][s] = w[i * 9 + r * 3 + s];
  filter_transform(g, t);
  for (int xi = 0; xi < 16; ++xi) u[xi * filters + i] = t[xi / 4][xi % 4];
}

// Input tile t (tile_at) of channel c, i = c * tiles + t: v[xi * C * tiles + i].
template <class T>
FASTCONV_HD inline void input_element(const Geometry& g, const T* x, T* v, index_t i) {
  const index_t tiles = g.tiles(), c = i / tiles;
  const Tile tile = tile_at(g, i % tiles);
  const T* plane = x + (tile.n * g.C + c) * g.H * g.W;
  T d[4][4], t[4][4];
  for (int r = 0; r < 4; ++r) {
    const index_t row = 2 * tile.row - g.pad_top + r;
    for (int s = 0; s < 4; ++s) {
      const index_t col = 2 * tile.col - g.pad_left + s;
      d[r][s] = (row >= 0 && row < g.row_end && col >= 0 && col < g.col_end) ? plane[row * g.W + col] : T(0);
    }
  }
  input_transform(d, t);
  for (int xi = 0; xi < 16; ++xi) v[xi * g.C * tiles + i] = t[xi / 4][xi % 4];
}

// Output tile t of channel k, i = k * tiles + t, of m ([16][K][tiles]): y[n, k, 2 row + a, 2 col + b] =
// relu?(A^T m A + bias[k]) for the outputs inside P x Q.
template <class T>
FASTCONV_HD inline void output_element(const Geometry& g, index_t K, const T* m, const T* bias, int relu, T* y,
                                       index_t i) {
  const index_t tiles = g.tiles(), k = i / tiles;
  const Tile tile = tile_at(g, i % tiles);
  T points[4][4], out[2][2];
  for (int xi = 0; xi < 16; ++xi) points[xi / 4][xi % 4] = m[xi * K * tiles + i];
  output_transform(points, out);
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 2; ++b) {
      const index_t p = 2 * tile.row + a, q = 2 * tile.col + b;
      if (p >= g.P || q >= g.Q) continue;
      T value = bias ? out[a][b] + bias[k] : out[a][b];
      if (relu && value < T(0)) value = T(0);  // NaN passes, as torch.relu's
      y[((tile.n * K + k) * g.P + p) * g.Q + q] = value;
    }
}

}  // namespace fastconv::conv::winograd_2x3
