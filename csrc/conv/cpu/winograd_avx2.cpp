// winograd.h's transforms for float on AVX2, eight tiles at a time (winograd_rows.h over
// core/simd_avx2.h's vectors): the register transposes that load a patch row of every lane and
// store a tile row to every lane's target. Only intrinsics and raw loops here (see
// direct_avx2.cpp for why).
#include "core/arch.h"
#if FASTCONV_X86  // the whole file: AVX2 and AVX-512 are x86 only
#pragma GCC target("avx2,fma")
#pragma GCC optimize("fp-contract=off")
#include <immintrin.h>

#include "conv/cpu/winograd_rows.h"
#include "core/simd_avx2.h"

namespace fastconv::conv::cpu::winograd {

namespace {

struct Avx2Lanes {
  using V = simd::Avx2F32;

  // 4 columns: lanes l and l + 4 in one register's halves, transposed within the halves (2: the
  // same from two-value loads, columns 2 and 3 zero). 8: an 8 x 8 transpose of the lanes' rows.
  template <int N>
  static void load_columns(const float* const* origin, index_t offset, __m256* col) {
    if constexpr (N == 2 || N == 4) {
      const auto row = [&](int l) {
        if constexpr (N == 2) return _mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(origin[l] + offset)));
        else return _mm_loadu_ps(origin[l] + offset);
      };
      __m256 r[4];
      for (int l = 0; l < 4; ++l) r[l] = _mm256_insertf128_ps(_mm256_castps128_ps256(row(l)), row(l + 4), 1);
      simd::transpose4_halves(r, col);
    } else {
      __m256 r[8];
      for (int l = 0; l < 8; ++l) r[l] = _mm256_loadu_ps(origin[l] + offset);
      simd::transpose8(r, col);
    }
  }

  static void transpose4(const __m256* r, __m256* c) { simd::transpose4_halves(r, c); }
  static void interleave(__m256 a, __m256 b, __m256* lo_hi) {
    lo_hi[0] = _mm256_unpacklo_ps(a, b);
    lo_hi[1] = _mm256_unpackhi_ps(a, b);
  }
  static void split(__m256 v, __m128* parts) {
    parts[0] = _mm256_castps256_ps128(v);
    parts[1] = _mm256_extractf128_ps(v, 1);
  }
};

}  // namespace

template <int M, int R>
VectorTransforms<M, R> vector_transforms_avx2() {
  return vector_transforms<Avx2Lanes, M, R, true>();
}

template VectorTransforms<2, 3> vector_transforms_avx2<2, 3>();
template VectorTransforms<4, 3> vector_transforms_avx2<4, 3>();
template VectorTransforms<2, 5> vector_transforms_avx2<2, 5>();
template VectorTransforms<4, 5> vector_transforms_avx2<4, 5>();
template VectorTransforms<2, 7> vector_transforms_avx2<2, 7>();
template VectorTransforms<4, 2> vector_transforms_avx2<4, 2>();

}  // namespace fastconv::conv::cpu::winograd

#endif  // FASTCONV_X86
