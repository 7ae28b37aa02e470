// winograd.h's 2-D transforms for float, written once over the lanes of an ISA: one tile per
// lane, eight tiles at a time on AVX2 (winograd_avx2.cpp), sixteen on AVX-512
// (winograd_avx512.cpp). A patch row of every lane is loaded and transposed in registers, so that
// each vector holds one patch column across the tiles, and the codelets run on whole vectors.
//
// Included only by the per-ISA files, after their `#pragma GCC target`: raw loops and
// intrinsics only, so nothing inline is shared with baseline code. Their lane type L gives
//   V                               the vector type (core/simd_avx2.h, simd_avx512.h)
//   load_columns<N>(origin, offset, col)  col[b] = value b (b < N, N = 4 or 8) of each lane's
//                                   patch row that starts `offset` values past origin[lane]
//                                   (N = 2: two values read, col[2] and col[3] zero; AVX2's only,
//                                   for the weight gradient)
//   transpose4(r, c)                r[0..3] -> c[0..3] within each 128-bit part of the registers
//   interleave(a, b, lo_hi)         unpacklo and unpackhi of a and b
//   split(v, parts)                 v's 128-bit parts, lowest first
// The codelets are winograd.h's with the same operations in the same order on every ISA, and
// the per-ISA files compile without FMA contraction: AVX2 and AVX-512 give the same bits.
#pragma once
#include <cstdint>
#include <immintrin.h>

#include "conv/cpu/winograd.h"

namespace fastconv::conv::cpu::winograd {
namespace {

template <class V>
typename V::Reg times(float k, typename V::Reg v) {
  return V::mul(V::set1(k), v);
}

// The input side depends on alpha only: its B^T codelet and how many values a patch row loads.
template <class V>
struct Alpha4 {
  using Reg = typename V::Reg;
  static constexpr int alpha = 4, row_values = 4;
  static void input(const Reg* d, Reg* o) {
    o[0] = V::sub(d[0], d[2]);
    o[1] = V::add(d[1], d[2]);
    o[2] = V::sub(d[2], d[1]);
    o[3] = V::sub(d[1], d[3]);
  }
};

template <class V>
struct Alpha5 {
  using Reg = typename V::Reg;
  static constexpr int alpha = 5, row_values = 8;  // 8 read (the planes' kReadSlack), 5 used
  static void input(const Reg* d, Reg* o) {
    const Reg d31 = V::sub(d[3], d[1]), d23 = V::sub(d[2], d[3]);
    o[0] = V::add(times<V>(2, V::sub(d[0], d[2])), d31);
    o[1] = V::add(times<V>(2, d[1]), d23);
    o[2] = V::add(times<V>(2, V::sub(d[2], d[1])), d23);
    o[3] = d31;
    o[4] = V::add(times<V>(2, V::sub(d[1], d[3])), V::sub(d[4], d[2]));
  }
};

template <class V>
struct Alpha6 {
  using Reg = typename V::Reg;
  static constexpr int alpha = 6, row_values = 8;  // 8 read (the planes' kReadSlack), 6 used
  static void input(const Reg* d, Reg* o) {
    const Reg four = V::set1(4), five = V::set1(5);
    const Reg a = V::fnmadd(four, d[2], d[4]), b = V::fnmadd(four, d[1], d[3]);
    const Reg c = V::sub(d[4], d[2]), e = times<V>(2, V::sub(d[3], d[1]));
    o[0] = V::fma(four, d[0], V::fnmadd(five, d[2], d[4]));
    o[1] = V::add(a, b);
    o[2] = V::sub(a, b);
    o[3] = V::add(c, e);
    o[4] = V::sub(c, e);
    o[5] = V::fma(four, d[1], V::fnmadd(five, d[3], d[5]));
  }
};

// F(2x2, 7x7)'s eight points: wincnn's B^T for F(6x6, 3x3) (winograd.h).
template <class V>
struct Alpha8 {
  using Reg = typename V::Reg;
  static constexpr int alpha = 8, row_values = 8;
  static void input(const Reg* d, Reg* o) {
    const Reg e1 = V::fnmadd(V::set1(4.25f), d[4], V::add(d[2], d[6]));
    const Reg o1 = V::fnmadd(V::set1(4.25f), d[3], V::add(d[1], d[5]));
    const Reg e2 = V::fma(V::set1(0.25f), d[2], V::fnmadd(V::set1(1.25f), d[4], d[6]));
    const Reg o2 = V::fma(V::set1(0.5f), d[1], V::fnmadd(V::set1(2.5f), d[3], times<V>(2, d[5])));
    const Reg e3 = V::fma(V::set1(4), d[2], V::fnmadd(V::set1(5), d[4], d[6]));
    const Reg o3 = V::fma(V::set1(2), d[1], V::fnmadd(V::set1(2.5f), d[3], times<V>(0.5f, d[5])));
    o[0] = V::fma(V::set1(5.25f), V::sub(d[4], d[2]), V::sub(d[0], d[6]));
    o[1] = V::add(e1, o1);
    o[2] = V::sub(e1, o1);
    o[3] = V::add(e2, o2);
    o[4] = V::sub(e2, o2);
    o[5] = V::add(e3, o3);
    o[6] = V::sub(e3, o3);
    o[7] = V::fma(V::set1(5.25f), V::sub(d[3], d[5]), V::sub(d[7], d[1]));
  }
};

// F(m x m, r x r): the codelets of winograd.h's F<M, R> on vectors.
template <class V, int M, int R>
struct Vec;

template <class V>
struct Vec<V, 2, 3> : Alpha4<V> {
  using Reg = typename V::Reg;
  static void filter(const Reg* g, Reg* o) {
    const Reg half = V::set1(0.5f);
    o[0] = g[0];
    o[1] = V::mul(half, V::add(V::add(g[0], g[1]), g[2]));
    o[2] = V::mul(half, V::add(V::sub(g[0], g[1]), g[2]));
    o[3] = g[2];
  }
  static void output(const Reg* m, Reg* o) {
    o[0] = V::add(V::add(m[0], m[1]), m[2]);
    o[1] = V::sub(V::sub(m[1], m[2]), m[3]);
  }
  static void output_adjoint(const Reg* g, Reg* o) {
    o[0] = g[0];
    o[1] = V::add(g[0], g[1]);
    o[2] = V::sub(g[0], g[1]);
    o[3] = V::sub(V::zero(), g[1]);
  }
};

template <class V>
struct Vec<V, 4, 3> : Alpha6<V> {
  using Reg = typename V::Reg;
  // -x / 6 as x / -6: the same value, signed zeros included.
  static void filter(const Reg* g, Reg* o) {
    const Reg four = V::set1(4), two = V::set1(2), six = V::set1(6), minus_six = V::set1(-6);
    const Reg quarter = V::div(g[0], four), half = V::div(g[1], two);
    const Reg even = V::add(g[0], g[2]), quarter_plus_g2 = V::add(quarter, g[2]);
    o[0] = quarter;
    o[1] = V::div(V::add(even, g[1]), minus_six);
    o[2] = V::div(V::sub(even, g[1]), minus_six);
    o[3] = V::div(V::add(quarter_plus_g2, half), six);
    o[4] = V::div(V::sub(quarter_plus_g2, half), six);
    o[5] = g[2];
  }
  static void output(const Reg* m, Reg* o) {
    const Reg s12 = V::add(m[1], m[2]), d12 = V::sub(m[1], m[2]);
    const Reg s34 = V::add(m[3], m[4]), d34 = V::sub(m[3], m[4]);
    o[0] = V::add(V::add(m[0], s12), s34);
    o[1] = V::fma(V::set1(2), d34, d12);
    o[2] = V::fma(V::set1(4), s34, s12);
    o[3] = V::add(V::fma(V::set1(8), d34, d12), m[5]);
  }
  static void output_adjoint(const Reg* g, Reg* o) {
    const Reg even = V::add(g[0], g[2]), odd = V::add(g[1], g[3]);
    const Reg even4 = V::fma(V::set1(4), g[2], g[0]);
    const Reg odd4 = V::fma(V::set1(8), g[3], times<V>(2, g[1]));
    o[0] = g[0];
    o[1] = V::add(even, odd);
    o[2] = V::sub(even, odd);
    o[3] = V::add(even4, odd4);
    o[4] = V::sub(even4, odd4);
    o[5] = g[3];
  }
};

template <class V>
struct Vec<V, 4, 2> : Alpha5<V> {
  using Reg = typename V::Reg;
  static void output(const Reg* m, Reg* o) {
    const Reg s12 = V::add(m[1], m[2]), d12 = V::sub(m[1], m[2]);
    o[0] = V::add(V::add(m[0], s12), m[3]);
    o[1] = V::add(d12, times<V>(2, m[3]));
    o[2] = V::add(s12, times<V>(4, m[3]));
    o[3] = V::add(V::add(d12, times<V>(8, m[3])), m[4]);
  }
  static void output_adjoint(const Reg* g, Reg* o) {
    o[0] = g[0];
    o[1] = V::add(V::add(g[0], g[1]), V::add(g[2], g[3]));
    o[2] = V::sub(V::sub(g[0], g[1]), V::sub(g[3], g[2]));
    o[3] = V::add(V::add(g[0], times<V>(2, g[1])), V::add(times<V>(4, g[2]), times<V>(8, g[3])));
    o[4] = g[3];
  }
};

template <class V>
struct Vec<V, 2, 5> : Alpha6<V> {
  using Reg = typename V::Reg;
  static void output(const Reg* m, Reg* o) {
    o[0] = V::add(V::add(m[0], V::add(m[1], m[2])), V::add(m[3], m[4]));
    o[1] = V::add(V::fma(V::set1(2), V::sub(m[3], m[4]), V::sub(m[1], m[2])), m[5]);
  }
  static void output_adjoint(const Reg* g, Reg* o) {
    const Reg twice = times<V>(2, g[1]);
    o[0] = g[0];
    o[1] = V::add(g[0], g[1]);
    o[2] = V::sub(g[0], g[1]);
    o[3] = V::add(g[0], twice);
    o[4] = V::sub(g[0], twice);
    o[5] = g[1];
  }
};

template <class V>
struct Vec<V, 2, 7> : Alpha8<V> {
  using Reg = typename V::Reg;
  static void output(const Reg* m, Reg* o) {
    const Reg sums = V::add(V::add(m[1], m[2]), V::add(V::add(m[3], m[4]), V::add(m[5], m[6])));
    const Reg halves = V::fma(V::set1(0.5f), V::sub(m[5], m[6]), m[7]);
    o[0] = V::add(m[0], sums);
    o[1] = V::add(V::fma(V::set1(2), V::sub(m[3], m[4]), V::sub(m[1], m[2])), halves);
  }
  static void output_adjoint(const Reg* g, Reg* o) {
    const Reg twice = times<V>(2, g[1]), half = times<V>(0.5f, g[1]);
    o[0] = g[0];
    o[1] = V::add(g[0], g[1]);
    o[2] = V::sub(g[0], g[1]);
    o[3] = V::add(g[0], twice);
    o[4] = V::sub(g[0], twice);
    o[5] = V::add(g[0], half);
    o[6] = V::sub(g[0], half);
    o[7] = g[1];
  }
};

template <class V>
struct Vec<V, 4, 5> : Alpha8<V> {
  using Reg = typename V::Reg;
  static void output(const Reg* m, Reg* o) {
    const Reg s12 = V::add(m[1], m[2]), d12 = V::sub(m[1], m[2]), s34 = V::add(m[3], m[4]);
    const Reg d34 = V::sub(m[3], m[4]), s56 = V::add(m[5], m[6]), d56 = V::sub(m[5], m[6]);
    o[0] = V::add(V::add(V::add(m[0], s12), s34), s56);
    o[1] = V::fma(V::set1(0.5f), d56, V::fma(V::set1(2), d34, d12));
    o[2] = V::fma(V::set1(0.25f), s56, V::fma(V::set1(4), s34, s12));
    o[3] = V::add(V::fma(V::set1(0.125f), d56, V::fma(V::set1(8), d34, d12)), m[7]);
  }
  static void output_adjoint(const Reg* g, Reg* o) {
    const Reg even = V::add(g[0], g[2]), odd = V::add(g[1], g[3]);
    const Reg even2 = V::fma(V::set1(4), g[2], g[0]), odd2 = V::fma(V::set1(8), g[3], times<V>(2, g[1]));
    const Reg even_half = V::fma(V::set1(0.25f), g[2], g[0]);
    const Reg odd_half = V::fma(V::set1(0.125f), g[3], times<V>(0.5f, g[1]));
    o[0] = g[0];
    o[1] = V::add(even, odd);
    o[2] = V::sub(even, odd);
    o[3] = V::add(even2, odd2);
    o[4] = V::sub(even2, odd2);
    o[5] = V::add(even_half, odd_half);
    o[6] = V::sub(even_half, odd_half);
    o[7] = g[3];
  }
};

// Whether every lane's tile lies inside the output (no edge to clip).
template <int W, int M>
bool whole_tiles(const tiled::TileTarget<float>* tiles) {
  bool whole = true;
  for (int l = 0; l < W; ++l) whole &= tiles[l].rows == M && tiles[l].cols == M;
  return whole;
}

// Each lane's row of M values, of a tile row given as columns (row[j]: column j across the
// lanes): emit(l, v) with lane l's values first in v.
template <class L, int M, class Emit>
void lane_rows(const typename L::V::Reg* row, const Emit& emit) {
  using Reg = typename L::V::Reg;
  constexpr int parts = L::V::width / 4;
  __m128 part[parts];
  if constexpr (M == 4) {
    Reg c[4];  // part q of c[l]: lane 4q + l's row
    L::transpose4(row, c);
    for (int l = 0; l < 4; ++l) {
      L::split(c[l], part);
      for (int q = 0; q < parts; ++q) emit(4 * q + l, part[q]);
    }
  } else {
    Reg pairs[2];  // part q of pairs[p]: lane 4q + 2p's row, then lane 4q + 2p + 1's
    L::interleave(row[0], row[1], pairs);
    for (int p = 0; p < 2; ++p) {
      L::split(pairs[p], part);
      for (int q = 0; q < parts; ++q) {
        emit(4 * q + 2 * p, part[q]);
        emit(4 * q + 2 * p + 1, _mm_movehl_ps(part[q], part[q]));
      }
    }
  }
}

// Row i of every lane's output tile, row[j] holding column j across the lanes, to its target;
// with the targets' residual added on the way, then ReLU if `relu` (without a residual the
// caller has applied it, to whole vectors).
template <class L, int M>
void store_row(const typename L::V::Reg* row, int i, const tiled::TileTarget<float>* tiles, index_t ld, bool relu) {
  constexpr int W = L::V::width;
  const bool add = tiles[0].residual;
  if (whole_tiles<W, M>(tiles))
    return lane_rows<L, M>(row, [&](int l, __m128 v) {
      float* dst = tiles[l].dst + i * ld;
      if (add) {
        const float* r = tiles[l].residual + i * ld;
        const __m128 rv = M == 4 ? _mm_loadu_ps(r) : _mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(r)));
        v = _mm_add_ps(v, rv);
        if (relu) v = _mm_max_ps(_mm_setzero_ps(), v);  // zero first: a NaN passes
      }
      if constexpr (M == 4) _mm_storeu_ps(dst, v);
      else _mm_storel_pi(reinterpret_cast<__m64*>(dst), v);
    });
  alignas(16) float values[W][4];  // [lane][column]
  lane_rows<L, M>(row, [&](int l, __m128 v) { _mm_store_ps(values[l], v); });
  for (int l = 0; l < W; ++l) {
    if (i >= tiles[l].rows) continue;
    float* dst = tiles[l].dst + i * ld;
    for (index_t j = 0; j < tiles[l].cols; ++j) {
      float v = values[l][j];
      if (add) {
        v += tiles[l].residual[i * ld + j];
        if (relu && v < 0.0f) v = 0.0f;
      }
      dst[j] = v;
    }
  }
}

// out[(j * A + k) * point_stride + l] = sum over a, b of C[j][a] C[k][b] tile_l[a][b], for
// N x N tiles whose rows `load` gives as columns across the lanes, and the codelet C: N -> A.
template <class L, int N, int A, class Load, class Codelet>
void rows_then_columns(Load load, Codelet codelet, float* out, index_t point_stride) {
  using V = typename L::V;
  using Reg = typename V::Reg;
  alignas(64) float rows[N][A][V::width];  // [tile row][row transform point][lane]
  for (int a = 0; a < N; ++a) {
    Reg d[8], o[A];  // a row load fills 4 or 8 columns
    load(a, d);
    codelet(d, o);
    for (int k = 0; k < A; ++k) V::storeu(rows[a][k], o[k]);
  }
  for (int k = 0; k < A; ++k) {
    Reg d[N], o[A];
    for (int a = 0; a < N; ++a) d[a] = V::load(rows[a][k]);
    codelet(d, o);
    for (int j = 0; j < A; ++j) V::storeu(out + (j * A + k) * point_stride, o[j]);
  }
}

template <class L, int M, int R>
void input_tiles(const tiled::PatchSource<float>& src, float* out, index_t point_stride) {
  using C = Vec<typename L::V, M, R>;
  using Reg = typename L::V::Reg;
  const auto load = [&](int a, Reg* d) { L::template load_columns<C::row_values>(src.origin, a * src.ld, d); };
  const auto input = [](const Reg* d, Reg* o) { C::input(d, o); };  // a lambda inlines, a pointer would not
  rows_then_columns<L, C::alpha, C::alpha>(load, input, out, point_stride);
}

// The gradient tiles (M x M, each row read as M values into columns of four) through A on both
// sides. Reading no value past a tile lets them come straight from the gradient's planes
// (tiled_conv.h's reads_in_place).
template <class L, int M, int R>
void gradient_tiles(const tiled::PatchSource<float>& src, float* out, index_t point_stride) {
  using C = Vec<typename L::V, M, R>;
  using Reg = typename L::V::Reg;
  const auto load = [&](int i, Reg* g) { L::template load_columns<M>(src.origin, i * src.ld, g); };
  const auto adjoint = [](const Reg* g, Reg* o) { C::output_adjoint(g, o); };
  rows_then_columns<L, M, C::alpha>(load, adjoint, out, point_stride);
}

// The filters' transforms, G g G^T, of `lanes` consecutive 3x3 filters from w (9 values apart)
// to out[pt * point_stride + l]: each filter's columns through G, then the rows, as
// winograd::transform_2d runs the codelet.
template <class L, int M, int R>
void filter_tiles(const float* w, float* out, index_t point_stride) {
  using V = typename L::V;
  using Reg = typename V::Reg;
  using C = Vec<V, M, R>;
  constexpr int A = C::alpha;
  std::int32_t at[V::width];
  for (int l = 0; l < V::width; ++l) at[l] = l * R * R;
  Reg g[R][R];  // [row][column], across the lanes
  for (int r = 0; r < R; ++r)
    for (int s = 0; s < R; ++s) g[r][s] = V::gather(w + r * R + s, at);
  Reg columns[A][R];  // [point][filter column]
  for (int s = 0; s < R; ++s) {
    Reg column[R], o[A];
    for (int r = 0; r < R; ++r) column[r] = g[r][s];
    C::filter(column, o);
    for (int j = 0; j < A; ++j) columns[j][s] = o[j];
  }
  for (int i = 0; i < A; ++i) {
    Reg o[A];
    C::filter(columns[i], o);
    for (int j = 0; j < A; ++j) V::storeu(out + (i * A + j) * point_stride, o[j]);
  }
}

// y[i][j] = (A^T m A)[i][j] + bias across the lanes, then ReLU if `relu`, for the points
// in[pt * point_stride + lane].
template <class L, int M, int R>
void output_values(const float* in, index_t point_stride, float bias, bool relu, typename L::V::Reg (*y)[M]) {
  using V = typename L::V;
  using Reg = typename V::Reg;
  using C = Vec<V, M, R>;
  constexpr int A = C::alpha;
  alignas(64) float rows[A][M][V::width];  // [point row][output column][lane]
  for (int a = 0; a < A; ++a) {
    Reg m[A], o[M];
    for (int b = 0; b < A; ++b) m[b] = V::loadu(in + (a * A + b) * point_stride);
    C::output(m, o);
    for (int j = 0; j < M; ++j) V::storeu(rows[a][j], o[j]);
  }
  const Reg b = V::set1(bias), zero = V::zero();
  for (int j = 0; j < M; ++j) {
    Reg m[A], o[M];
    for (int a = 0; a < A; ++a) m[a] = V::load(rows[a][j]);
    C::output(m, o);
    for (int i = 0; i < M; ++i) y[i][j] = relu ? V::max(zero, V::add(o[i], b)) : V::add(o[i], b);  // a NaN passes
  }
}

template <class L, int M, int R>
void output_tiles(const float* in, index_t point_stride, const tiled::TileTarget<float>* tiles, index_t ld, float bias,
                  bool relu) {
  typename L::V::Reg y[M][M];  // [output row][output column]
  output_values<L, M, R>(in, point_stride, bias, relu && !tiles[0].residual, y);  // else after the residual
  for (int i = 0; i < M; ++i) store_row<L, M>(y[i], i, tiles, ld, relu);
}

// Two output channels' tiles interleaved column by column, as a pixel shuffle of factor 2 lays
// them out (tiled_conv.h's transform_output_shuffled): lane l's tile value (i, j) of in[b]'s
// channel goes to its target's dst[i * ld + 2 j + b]. The first channel's rows wait in L1, one
// 128-bit part per lane, for the second's; tiles cut by the output's edge are written value by value.
template <class L, int M, int R>
void output_tile_pairs(const float* const* in, index_t point_stride, const tiled::TileTarget<float>* tiles, index_t ld,
                       const float* bias, bool relu) {
  using V = typename L::V;
  typename V::Reg y[M][M];
  alignas(16) float first[M][V::width][4];  // [row][lane][column]
  output_values<L, M, R>(in[0], point_stride, bias[0], relu, y);
  for (int i = 0; i < M; ++i) lane_rows<L, M>(y[i], [&](int l, __m128 v) { _mm_store_ps(first[i][l], v); });
  output_values<L, M, R>(in[1], point_stride, bias[1], relu, y);
  if (whole_tiles<V::width, M>(tiles)) {
    for (int i = 0; i < M; ++i)
      lane_rows<L, M>(y[i], [&](int l, __m128 v) {
        float* dst = tiles[l].dst + i * ld;
        const __m128 u = _mm_load_ps(first[i][l]);
        _mm_storeu_ps(dst, _mm_unpacklo_ps(u, v));  // u0 v0 u1 v1
        if constexpr (M == 4) _mm_storeu_ps(dst + 4, _mm_unpackhi_ps(u, v));
      });
    return;
  }
  alignas(16) float second[M][V::width][4];
  for (int i = 0; i < M; ++i) lane_rows<L, M>(y[i], [&](int l, __m128 v) { _mm_store_ps(second[i][l], v); });
  for (int l = 0; l < V::width; ++l)
    for (index_t i = 0; i < tiles[l].rows; ++i)
      for (index_t j = 0; j < tiles[l].cols; ++j) {
        tiles[l].dst[i * ld + 2 * j] = first[i][l][j];
        tiles[l].dst[i * ld + 2 * j + 1] = second[i][l][j];
      }
}

// The table entry of winograd.h for lane type L: the forward's transforms, and the weight
// gradient's when `L` is the one the weight gradient runs on (winograd.cpp: AVX2's).
template <class L, int M, int R, bool WithGradient>
VectorTransforms<M, R> vector_transforms() {
  VectorTransforms<M, R> t;
  t.lanes = L::V::width;
  t.input = &input_tiles<L, M, R>;
  t.output = &output_tiles<L, M, R>;
  t.output_pairs = &output_tile_pairs<L, M, R>;
  if constexpr (R == 3) t.filter = &filter_tiles<L, M, R>;
  if constexpr (WithGradient) t.gradient = &gradient_tiles<L, M, R>;
  return t;
}

}  // namespace
}  // namespace fastconv::conv::cpu::winograd
