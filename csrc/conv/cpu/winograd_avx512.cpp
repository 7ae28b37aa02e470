// winograd.h's transforms for float on AVX-512, sixteen tiles at a time (winograd_rows.h over
// core/simd_avx512.h's vectors): the register transposes that load a patch row of every lane and
// store a tile row to every lane's target. Only intrinsics and raw loops here (see
// direct_avx2.cpp for why).
#include "core/arch.h"
#if FASTCONV_X86  // the whole file: AVX-512 is x86 only
#pragma GCC target("avx512f,avx2,fma")
#pragma GCC optimize("fp-contract=off")
#include <immintrin.h>

#include "conv/cpu/winograd_rows.h"
#include "core/simd_avx512.h"

namespace fastconv::conv::cpu::winograd {

namespace {

struct Avx512Lanes {
  using V = simd::Avx512F32;

  // 4 columns: lanes l, l + 4, l + 8, l + 12 in one register's quarters, transposed within the
  // quarters. 8: lanes l and l + 8 in one register's halves, 8 x 8 transposes within the halves.
  template <int N>
  static void load_columns(const float* const* origin, index_t offset, __m512* col) {
    if constexpr (N == 4) {
      __m512 r[4];
      for (int l = 0; l < 4; ++l) {
        r[l] = _mm512_castps128_ps512(_mm_loadu_ps(origin[l] + offset));
        r[l] = _mm512_insertf32x4(r[l], _mm_loadu_ps(origin[l + 4] + offset), 1);
        r[l] = _mm512_insertf32x4(r[l], _mm_loadu_ps(origin[l + 8] + offset), 2);
        r[l] = _mm512_insertf32x4(r[l], _mm_loadu_ps(origin[l + 12] + offset), 3);
      }
      simd::transpose4_quarters(r, col);
    } else {
      __m512 r[8];
      for (int l = 0; l < 8; ++l) {
        const __m512d low = _mm512_castpd256_pd512(_mm256_castps_pd(_mm256_loadu_ps(origin[l] + offset)));
        r[l] = _mm512_castpd_ps(_mm512_insertf64x4(low, _mm256_castps_pd(_mm256_loadu_ps(origin[l + 8] + offset)), 1));
      }
      simd::transpose8_halves(r, col);
    }
  }

  static void transpose4(const __m512* r, __m512* c) { simd::transpose4_quarters(r, c); }
  static void interleave(__m512 a, __m512 b, __m512* lo_hi) {
    lo_hi[0] = _mm512_unpacklo_ps(a, b);
    lo_hi[1] = _mm512_unpackhi_ps(a, b);
  }
  static void split(__m512 v, __m128* parts) {
    parts[0] = _mm512_castps512_ps128(v);
    parts[1] = _mm512_extractf32x4_ps(v, 1);
    parts[2] = _mm512_extractf32x4_ps(v, 2);
    parts[3] = _mm512_extractf32x4_ps(v, 3);
  }
};

}  // namespace

template <int M, int R>
VectorTransforms<M, R> vector_transforms_avx512() {
  return vector_transforms<Avx512Lanes, M, R, false>();  // the weight gradient runs AVX2's (winograd.cpp)
}

template VectorTransforms<2, 3> vector_transforms_avx512<2, 3>();
template VectorTransforms<4, 3> vector_transforms_avx512<4, 3>();
template VectorTransforms<2, 5> vector_transforms_avx512<2, 5>();
template VectorTransforms<4, 5> vector_transforms_avx512<4, 5>();
template VectorTransforms<2, 7> vector_transforms_avx512<2, 7>();
template VectorTransforms<4, 2> vector_transforms_avx512<4, 2>();

}  // namespace fastconv::conv::cpu::winograd

#endif  // FASTCONV_X86
