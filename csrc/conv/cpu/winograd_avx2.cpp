// The Winograd transforms of winograd.h for float on AVX2, eight tiles at a time (one lane
// each): a patch row of every lane is loaded and transposed in registers, so that each vector
// holds one patch column across the eight tiles, and the codelets run on whole vectors.
// Only intrinsics and raw loops here (see direct_avx2.cpp for why).
#include "core/arch.h"
#if FASTCONV_X86  // the whole file: AVX2 and AVX-512 are x86 only
#pragma GCC target("avx2,fma")
#include <immintrin.h>

#include "conv/cpu/winograd.h"
#include "core/simd_avx2.h"

namespace fastconv::conv::cpu::winograd {

namespace {

using simd::transpose4_halves;
using simd::transpose8;
using tiled::PatchSource;
using tiled::TileTarget;

__m256 times(float k, __m256 v) { return _mm256_mul_ps(_mm256_set1_ps(k), v); }

// The input side depends on alpha only: its B^T codelet and how a patch row is loaded.
struct Alpha4 {
  static constexpr int alpha = 4;
  static void input(const __m256* d, __m256* o) {
    o[0] = _mm256_sub_ps(d[0], d[2]);
    o[1] = _mm256_add_ps(d[1], d[2]);
    o[2] = _mm256_sub_ps(d[2], d[1]);
    o[3] = _mm256_sub_ps(d[1], d[3]);
  }
  // col[b] = patch value (row at `offset`, column b) of the eight lanes: 4-value rows, two
  // lanes per register (l and l + 4), transposed within the halves.
  static void load_row(const float* const* origin, index_t offset, __m256* col) {
    __m256 r[4];
    for (int l = 0; l < 4; ++l)
      r[l] = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(origin[l] + offset)),
                                  _mm_loadu_ps(origin[l + 4] + offset), 1);
    transpose4_halves(r, col);
  }
};

struct Alpha6 {
  static constexpr int alpha = 6;
  static void input(const __m256* d, __m256* o) {
    const __m256 four = _mm256_set1_ps(4), five = _mm256_set1_ps(5);
    const __m256 a = _mm256_fnmadd_ps(four, d[2], d[4]), b = _mm256_fnmadd_ps(four, d[1], d[3]);
    const __m256 c = _mm256_sub_ps(d[4], d[2]), e = times(2, _mm256_sub_ps(d[3], d[1]));
    o[0] = _mm256_fmadd_ps(four, d[0], _mm256_fnmadd_ps(five, d[2], d[4]));
    o[1] = _mm256_add_ps(a, b);
    o[2] = _mm256_sub_ps(a, b);
    o[3] = _mm256_add_ps(c, e);
    o[4] = _mm256_sub_ps(c, e);
    o[5] = _mm256_fmadd_ps(four, d[1], _mm256_fnmadd_ps(five, d[3], d[5]));
  }
  // col[b] for b < 6: an 8 x 8 transpose of the lanes' rows (8 values read, 6 used).
  static void load_row(const float* const* origin, index_t offset, __m256* col) {
    __m256 r[8], c[8];
    for (int l = 0; l < 8; ++l) r[l] = _mm256_loadu_ps(origin[l] + offset);
    transpose8(r, c);
    for (int b = 0; b < 6; ++b) col[b] = c[b];
  }
};

// F(m x m, r x r): the codelets of winograd.h's F<M, R> on vectors.
template <int M, int R>
struct Vec;

template <>
struct Vec<2, 3> : Alpha4 {
  static void output(const __m256* m, __m256* o) {
    o[0] = _mm256_add_ps(_mm256_add_ps(m[0], m[1]), m[2]);
    o[1] = _mm256_sub_ps(_mm256_sub_ps(m[1], m[2]), m[3]);
  }
  static void output_adjoint(const __m256* g, __m256* o) {
    o[0] = g[0];
    o[1] = _mm256_add_ps(g[0], g[1]);
    o[2] = _mm256_sub_ps(g[0], g[1]);
    o[3] = _mm256_sub_ps(_mm256_setzero_ps(), g[1]);
  }
};

template <>
struct Vec<4, 3> : Alpha6 {
  static void output(const __m256* m, __m256* o) {
    const __m256 s12 = _mm256_add_ps(m[1], m[2]), d12 = _mm256_sub_ps(m[1], m[2]);
    const __m256 s34 = _mm256_add_ps(m[3], m[4]), d34 = _mm256_sub_ps(m[3], m[4]);
    o[0] = _mm256_add_ps(_mm256_add_ps(m[0], s12), s34);
    o[1] = _mm256_fmadd_ps(_mm256_set1_ps(2), d34, d12);
    o[2] = _mm256_fmadd_ps(_mm256_set1_ps(4), s34, s12);
    o[3] = _mm256_add_ps(_mm256_fmadd_ps(_mm256_set1_ps(8), d34, d12), m[5]);
  }
  static void output_adjoint(const __m256* g, __m256* o) {
    const __m256 even = _mm256_add_ps(g[0], g[2]), odd = _mm256_add_ps(g[1], g[3]);
    const __m256 even4 = _mm256_fmadd_ps(_mm256_set1_ps(4), g[2], g[0]);
    const __m256 odd4 = _mm256_fmadd_ps(_mm256_set1_ps(8), g[3], times(2, g[1]));
    o[0] = g[0];
    o[1] = _mm256_add_ps(even, odd);
    o[2] = _mm256_sub_ps(even, odd);
    o[3] = _mm256_add_ps(even4, odd4);
    o[4] = _mm256_sub_ps(even4, odd4);
    o[5] = g[3];
  }
};

template <>
struct Vec<2, 5> : Alpha6 {
  static void output(const __m256* m, __m256* o) {
    o[0] = _mm256_add_ps(_mm256_add_ps(m[0], _mm256_add_ps(m[1], m[2])), _mm256_add_ps(m[3], m[4]));
    o[1] = _mm256_add_ps(_mm256_fmadd_ps(_mm256_set1_ps(2), _mm256_sub_ps(m[3], m[4]), _mm256_sub_ps(m[1], m[2])), m[5]);
  }
  static void output_adjoint(const __m256* g, __m256* o) {
    const __m256 twice = times(2, g[1]);
    o[0] = g[0];
    o[1] = _mm256_add_ps(g[0], g[1]);
    o[2] = _mm256_sub_ps(g[0], g[1]);
    o[3] = _mm256_add_ps(g[0], twice);
    o[4] = _mm256_sub_ps(g[0], twice);
    o[5] = g[1];
  }
};

// Whether all eight lanes' tiles lie inside the output (no edge to clip).
template <int M>
bool whole_tiles(const TileTarget<float>* tiles) {
  bool whole = true;
  for (int l = 0; l < 8; ++l) whole &= tiles[l].rows == M && tiles[l].cols == M;
  return whole;
}

// Lane l's values of one output row, row[j] holding column j across the lanes, to its target.
template <int M>
void store_row(const __m256* row, int i, const TileTarget<float>* tiles, index_t ld) {
  alignas(32) float values[8][4];  // [lane][column]
  if (M == 4) {
    __m256 c[4];
    transpose4_halves(row, c);
    if (whole_tiles<M>(tiles)) {
      for (int l = 0; l < 4; ++l) {
        _mm_storeu_ps(tiles[l].dst + i * ld, _mm256_castps256_ps128(c[l]));
        _mm_storeu_ps(tiles[l + 4].dst + i * ld, _mm256_extractf128_ps(c[l], 1));
      }
      return;
    }
    for (int l = 0; l < 4; ++l) {
      _mm_store_ps(values[l], _mm256_castps256_ps128(c[l]));
      _mm_store_ps(values[l + 4], _mm256_extractf128_ps(c[l], 1));
    }
  } else {
    alignas(32) float pairs[2][8];  // (lanes 0, 1 | 4, 5) and (lanes 2, 3 | 6, 7), two values each
    _mm256_store_ps(pairs[0], _mm256_unpacklo_ps(row[0], row[1]));
    _mm256_store_ps(pairs[1], _mm256_unpackhi_ps(row[0], row[1]));
    for (int l = 0; l < 8; ++l) {
      const float* p = &pairs[(l >> 1) & 1][((l >> 2) * 2 + (l & 1)) * 2];
      values[l][0] = p[0], values[l][1] = p[1];
    }
  }
  for (int l = 0; l < 8; ++l) {
    if (i >= tiles[l].rows) continue;
    float* dst = tiles[l].dst + i * ld;
    for (index_t j = 0; j < tiles[l].cols; ++j) dst[j] = values[l][j];
  }
}

}  // namespace

// out[(j * A + k) * point_stride + l] = sum over a, b of C[j][a] C[k][b] tile_l[a][b], for
// N x N tiles whose rows Load gives as columns across the lanes, and the codelet C: N -> A.
template <int N, int A, class Load, class Codelet>
void rows_then_columns(Load load, Codelet codelet, float* out, index_t point_stride) {
  alignas(32) float rows[N][A][8];  // [tile row][row transform point][lane]
  for (int a = 0; a < N; ++a) {
    __m256 d[N > 4 ? N : 4], o[A];  // a row load fills at least four columns
    load(a, d);
    codelet(d, o);
    for (int k = 0; k < A; ++k) _mm256_store_ps(rows[a][k], o[k]);
  }
  for (int k = 0; k < A; ++k) {
    __m256 d[N], o[A];
    for (int a = 0; a < N; ++a) d[a] = _mm256_load_ps(rows[a][k]);
    codelet(d, o);
    for (int j = 0; j < A; ++j) _mm256_storeu_ps(out + (j * A + k) * point_stride, o[j]);
  }
}

template <int M, int R>
void input_tiles_avx2(const PatchSource<float>& src, float* out, index_t point_stride) {
  using V = Vec<M, R>;
  const auto load = [&](int a, __m256* d) { V::load_row(src.origin, a * src.ld, d); };
  const auto input = [](const __m256* d, __m256* o) { V::input(d, o); };  // a lambda inlines, a pointer would not
  rows_then_columns<V::alpha, V::alpha>(load, input, out, point_stride);
}

// The gradient tiles (M x M, read as rows of four: F(2x2) uses two) through A on both sides.
template <int M, int R>
void gradient_tiles_avx2(const PatchSource<float>& src, float* out, index_t point_stride) {
  using V = Vec<M, R>;
  const auto load = [&](int i, __m256* g) { Alpha4::load_row(src.origin, i * src.ld, g); };
  const auto adjoint = [](const __m256* g, __m256* o) { V::output_adjoint(g, o); };
  rows_then_columns<M, V::alpha>(load, adjoint, out, point_stride);
}

template <int M, int R>
void output_tiles_avx2(const float* in, index_t point_stride, const TileTarget<float>* tiles, index_t ld, float bias,
                       bool relu) {
  using V = Vec<M, R>;
  constexpr int A = V::alpha;
  alignas(32) float rows[A][M][8];  // [point row][output column][lane]
  for (int a = 0; a < A; ++a) {
    __m256 m[A], o[M];
    for (int b = 0; b < A; ++b) m[b] = _mm256_loadu_ps(in + (a * A + b) * point_stride);
    V::output(m, o);
    for (int j = 0; j < M; ++j) _mm256_store_ps(rows[a][j], o[j]);
  }
  __m256 y[M][M];  // [output row][output column]
  const __m256 b = _mm256_set1_ps(bias), zero = _mm256_setzero_ps();
  for (int j = 0; j < M; ++j) {
    __m256 m[A], o[M];
    for (int a = 0; a < A; ++a) m[a] = _mm256_load_ps(rows[a][j]);
    V::output(m, o);
    for (int i = 0; i < M; ++i) y[i][j] = relu ? _mm256_max_ps(zero, _mm256_add_ps(o[i], b)) : _mm256_add_ps(o[i], b);
  }
  for (int i = 0; i < M; ++i) store_row<M>(y[i], i, tiles, ld);
}

#define FASTCONV_INSTANTIATE(M, R)                                                           \
  template void input_tiles_avx2<M, R>(const PatchSource<float>&, float*, index_t);          \
  template void gradient_tiles_avx2<M, R>(const PatchSource<float>&, float*, index_t);       \
  template void output_tiles_avx2<M, R>(const float*, index_t, const TileTarget<float>*, index_t, float, bool);
FASTCONV_INSTANTIATE(2, 3)
FASTCONV_INSTANTIATE(4, 3)
FASTCONV_INSTANTIATE(2, 5)
#undef FASTCONV_INSTANTIATE

}  // namespace fastconv::conv::cpu::winograd

#endif  // FASTCONV_X86
