// The transposing pack (pack.h, interleave) for float on AVX2: 8 sequences x 8 steps at a time
// through an 8 x 8 register transpose. Scalar, it was 28% of a pointwise convolution's weight
// gradient, whose GEMM packs both operands that way. Only intrinsics and raw loops here (see
// conv/direct_avx2.cpp for why).
#include "core/arch.h"
#if FASTCONV_X86  // the whole file: AVX2 and AVX-512 are x86 only
#pragma GCC target("avx2,fma")
#include "core/prefetch.h"
#include "core/simd_avx2.h"
#include "core/view.h"

namespace fastconv::gemm {

void interleave_avx2(const float* const* src, index_t n, index_t kc, index_t ld, float* dst) {
  const index_t k_full = kc / 8 * 8;
  for (index_t j0 = 0; j0 < ld; j0 += 8) {  // lanes [j0, j0 + width) of every row
    const index_t width = ld - j0 < 8 ? ld - j0 : 8;
    const index_t next = j0 + 8 < n ? n - j0 - 8 : 0;  // sequences of the next group (at most 8)
    for (index_t k = 0; k < k_full; k += 8) {
      // The next group's lines, one per 16 values: each sequence is a short stream (a pointwise
      // conv's 196-pixel rows) that the hardware prefetcher barely starts before it ends.
      if (k % 16 == 0)
        for (index_t i = 0; i < next && i < 8; ++i) prefetch_line(src[j0 + 8 + i] + k);
      __m256 r[8], c[8];
      for (index_t i = 0; i < 8; ++i) r[i] = j0 + i < n ? _mm256_loadu_ps(src[j0 + i] + k) : _mm256_setzero_ps();
      simd::transpose8(r, c);
      float* out = dst + k * ld + j0;
      if (width == 8)
        for (index_t t = 0; t < 8; ++t) _mm256_storeu_ps(out + t * ld, c[t]);
      else
        for (index_t t = 0; t < 8; ++t) simd::Avx2F32::store_first(out + t * ld, c[t], static_cast<int>(width));
    }
    for (index_t k = k_full; k < kc; ++k)
      for (index_t j = j0; j < j0 + width; ++j) dst[k * ld + j] = j < n ? src[j][k] : 0.0f;
  }
}

}  // namespace fastconv::gemm

#endif  // FASTCONV_X86
