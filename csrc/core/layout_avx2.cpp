// core/layout.h's transpose for AVX2 (AVX-512 machines run it too: a block's loads and stores
// are one cache line's half either way, and the shuffles are the same).
#include "core/arch.h"
#if FASTCONV_X86  // the whole file: AVX2 is x86 only
#pragma GCC target("avx2,fma")
#include <immintrin.h>

#include "core/layout.h"

namespace fastconv {

namespace {

// The 8x8 float block at src (row stride ls) transposed into dst (row stride ld).
inline void transpose8x8(const float* src, index_t ls, float* dst, index_t ld) {
  __m256 r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * ls);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);      // rows i, i+1 interleaved, low pairs
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);  // high pairs
  }
  for (int i = 0; i < 8; i += 4) {
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int i = 0; i < 4; ++i) {  // columns i and i + 4: the 128-bit halves of rows 0-3 and 4-7
    _mm256_storeu_ps(dst + i * ld, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
    _mm256_storeu_ps(dst + (i + 4) * ld, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
  }
}

// The 4x4 double block.
inline void transpose4x4(const double* src, index_t ls, double* dst, index_t ld) {
  const __m256d r0 = _mm256_loadu_pd(src), r1 = _mm256_loadu_pd(src + ls);
  const __m256d r2 = _mm256_loadu_pd(src + 2 * ls), r3 = _mm256_loadu_pd(src + 3 * ls);
  const __m256d t0 = _mm256_unpacklo_pd(r0, r1), t1 = _mm256_unpackhi_pd(r0, r1);
  const __m256d t2 = _mm256_unpacklo_pd(r2, r3), t3 = _mm256_unpackhi_pd(r2, r3);
  _mm256_storeu_pd(dst, _mm256_permute2f128_pd(t0, t2, 0x20));
  _mm256_storeu_pd(dst + ld, _mm256_permute2f128_pd(t1, t3, 0x20));
  _mm256_storeu_pd(dst + 2 * ld, _mm256_permute2f128_pd(t0, t2, 0x31));
  _mm256_storeu_pd(dst + 3 * ld, _mm256_permute2f128_pd(t1, t3, 0x31));
}

inline void transpose_block(const float* s, index_t ls, float* d, index_t ld) { transpose8x8(s, ls, d, ld); }
inline void transpose_block(const double* s, index_t ls, double* d, index_t ld) { transpose4x4(s, ls, d, ld); }

}  // namespace

template <class T>
void transpose_avx2(const T* src, index_t ls, T* dst, index_t ld, index_t rows, index_t cols) {
  constexpr index_t B = 32 / sizeof(T);  // a block: one vector per row
  index_t i = 0;
  for (; i + B <= rows; i += B) {
    index_t j = 0;
    for (; j + B <= cols; j += B) transpose_block(src + i * ls + j, ls, dst + j * ld + i, ld);
    for (; j < cols; ++j)
      for (index_t k = i; k < i + B; ++k) dst[j * ld + k] = src[k * ls + j];
  }
  for (; i < rows; ++i)
    for (index_t j = 0; j < cols; ++j) dst[j * ld + i] = src[i * ls + j];
}

template <class T>
void transpose_rows_avx2(const T* src, T* dst, index_t rows, index_t cols, index_t r0, index_t r1) {
  transpose_avx2(src + r0 * cols, cols, dst + r0, rows, r1 - r0, cols);
}

template void transpose_rows_avx2<float>(const float*, float*, index_t, index_t, index_t, index_t);
template void transpose_rows_avx2<double>(const double*, double*, index_t, index_t, index_t, index_t);
template void transpose_avx2<float>(const float*, index_t, float*, index_t, index_t, index_t);
template void transpose_avx2<double>(const double*, index_t, double*, index_t, index_t, index_t);

}  // namespace fastconv

#endif  // FASTCONV_X86
