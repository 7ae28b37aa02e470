// The transposing pack (pack.h, interleave) for float on AVX2: 8 sequences x 8 steps at a time
// through an 8 x 8 register transpose. Scalar, it was 28% of a pointwise convolution's weight
// gradient, whose GEMM packs both operands that way. Only intrinsics and raw loops here (see
// conv/direct_avx2.cpp for why).
#include "core/arch.h"
#if FASTCONV_X86  // the whole file: AVX2 and AVX-512 are x86 only
#pragma GCC target("avx2,fma")
#include "core/simd_avx2.h"
#include "core/prefetch.h"
#include "core/view.h"

namespace fastconv::gemm {

namespace {

// Steps [k, k + 8) of sequences [j0, j0 + 8) (those past n read as zero) into lanes
// [j0, j0 + width) of dst's rows k.., through one 8 x 8 register transpose.
__attribute__((always_inline)) inline void interleave_block(const float* const* src, index_t n, index_t j0, index_t width, index_t k, index_t ld,
                             float* dst) {
  __m256 r[8], c[8];
  for (index_t i = 0; i < 8; ++i) r[i] = j0 + i < n ? _mm256_loadu_ps(src[j0 + i] + k) : _mm256_setzero_ps();
  simd::transpose8(r, c);
  float* out = dst + k * ld + j0;
  if (width == 8)
    for (index_t t = 0; t < 8; ++t) _mm256_storeu_ps(out + t * ld, c[t]);
  else
    for (index_t t = 0; t < 8; ++t) simd::Avx2F32::store_first(out + t * ld, c[t], static_cast<int>(width));
}

}  // namespace

void interleave_avx2(const float* const* src, index_t n, index_t kc, index_t ld, float* dst) {
  // A cache line of every sequence at a time (16 steps), all groups of 8 before the next line:
  // sequences a multiple of 4 KiB apart (an sgemm's rows of A) share one L1 set, and a panel's
  // 12 of them overflow its 8 ways; walked a group at a time, 8 steps at a time, each line was
  // evicted before its second half was read.
  const index_t k_line = kc / 16 * 16, k_full = kc / 8 * 8;
  for (index_t k = 0; k < k_line; k += 16) {
    // Each sequence's line after next: a short stream (a pointwise convolution's 196-pixel
    // rows) ends before the hardware prefetcher has started on it.
    if (k + 32 < kc)
      for (index_t j = 0; j < n; ++j) prefetch_line(src[j] + k + 32);
    for (index_t j0 = 0; j0 < ld; j0 += 8) {
      const index_t width = ld - j0 < 8 ? ld - j0 : 8;
      interleave_block(src, n, j0, width, k, ld, dst);
      interleave_block(src, n, j0, width, k + 8, ld, dst);
    }
  }
  for (index_t k = k_line; k < k_full; k += 8)
    for (index_t j0 = 0; j0 < ld; j0 += 8) interleave_block(src, n, j0, ld - j0 < 8 ? ld - j0 : 8, k, ld, dst);
  for (index_t k = k_full; k < kc; ++k)
    for (index_t j = 0; j < ld; ++j) dst[k * ld + j] = j < n ? src[j][k] : 0.0f;
}

}  // namespace fastconv::gemm

#endif  // FASTCONV_X86
