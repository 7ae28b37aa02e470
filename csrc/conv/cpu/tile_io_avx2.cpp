// The tiled driver's patch reads and tile writes on AVX2 (tile_io.h): 16 lanes at a time, as two
// 8 x 8 register transposes. Only intrinsics and raw loops here (see direct_avx2.cpp for why).
#include "core/arch.h"
#if FASTCONV_X86  // the whole file: AVX2 and AVX-512 are x86 only
#pragma GCC target("avx2,fma")
#include "conv/cpu/tile_io.h"
#include "core/simd_avx2.h"

namespace fastconv::conv::cpu::tiled {

void gather_row16_avx2(const PatchSource<float>& src, index_t row, index_t cols, float* dst) {
  const index_t offset = row * src.ld;
  for (index_t b0 = 0; b0 < cols; b0 += 8)
    for (int half = 0; half < 2; ++half) {  // lanes [8 half, 8 half + 8)
      __m256 r[8], c[8];
      for (int l = 0; l < 8; ++l) r[l] = _mm256_loadu_ps(src.origin[8 * half + l] + offset + b0);
      simd::transpose8(r, c);
      for (int b = 0; b < 8; ++b) _mm256_storeu_ps(dst + (b0 + b) * 16 + 8 * half, c[b]);
    }
}

void scatter_row16_avx2(const TileRows<float>& tiles, index_t row, index_t m_w, const float* values) {
  const __m256 bias = _mm256_set1_ps(tiles.bias), zero = _mm256_setzero_ps();
  for (index_t b0 = 0; b0 < m_w; b0 += 8)
    for (int half = 0; half < 2; ++half) {  // lanes [8 half, 8 half + 8)
      __m256 c[8], r[8];
      for (int b = 0; b < 8; ++b) c[b] = _mm256_loadu_ps(values + (b0 + b) * 16 + 8 * half);
      simd::transpose8(c, r);
      for (int l = 0; l < 8; ++l) {
        const TileTarget<float>& t = tiles.targets[8 * half + l];
        const index_t left = (t.cols < m_w ? t.cols : m_w) - b0, n = left < 8 ? left : 8;
        if (row >= t.rows || n <= 0) continue;
        __m256 v = _mm256_add_ps(r[l], bias);
        if (t.residual)  // its first n values: nothing past the row's last is read
          v = _mm256_add_ps(v, simd::Avx2F32::load_lanes(t.residual + row * tiles.ld + b0, (1u << n) - 1));
        if (tiles.relu) v = _mm256_max_ps(zero, v);  // zero first: a NaN passes, as through torch.relu
        float* dst = t.dst + row * tiles.ld + b0;
        if (n == 8) {
          _mm256_storeu_ps(dst, v);
        } else {
          alignas(32) float part[8];
          _mm256_store_ps(part, v);
          for (index_t j = 0; j < n; ++j) dst[j] = part[j];
        }
      }
    }
}

}  // namespace fastconv::conv::cpu::tiled

#endif  // FASTCONV_X86
