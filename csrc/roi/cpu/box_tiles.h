// How the CPU roi kernels walk and read boxes: ordered by image, and sampled from channels-last
// tiles of 8 channels (AVX2 float kernels). Boxes are common/roi_boxes.h's (K, 5) rows.
#pragma once
#include <algorithm>
#include <numeric>
#include <vector>

#include "common/roi_boxes.h"
#include "core/arch.h"
#include "core/view.h"

#if FASTCONV_X86
#include <immintrin.h>
#endif

namespace fastconv::roi::cpu {

// Box indices ordered by image, boxes of one image in their given order. Kernels walk boxes in
// this order so that consecutive boxes read the same input planes while they are in cache; the
// gradient of a pixel still adds its boxes' terms in box order (only its image's boxes reach it).
template <class T>
std::vector<index_t> boxes_by_image(const T* boxes, index_t K) {
  std::vector<index_t> order(K);
  std::iota(order.begin(), order.end(), index_t(0));
  std::stable_sort(order.begin(), order.end(),
                   [&](index_t a, index_t b) { return roi_batch_index(boxes, a) < roi_batch_index(boxes, b); });
  return order;
}

// With `order` from boxes_by_image: image n's boxes are order[start[n] .. start[n + 1]).
template <class T>
std::vector<index_t> image_starts(const T* boxes, index_t K, index_t N) {
  std::vector<index_t> start(N + 1, 0);
  for (index_t k = 0; k < K; ++k) ++start[roi_batch_index(boxes, k) + 1];
  for (index_t n = 0; n < N; ++n) start[n + 1] += start[n];
  return start;
}

// ---- channels-last tiles for the AVX2 float kernels (x86 builds) ----
#if FASTCONV_X86

// The roi kernels sample a box's pixels for 8 channels at once from a tile holding the box's
// region pixel-major, 8 floats a pixel (channel j in lane j).
constexpr int kTileLanes = 8;

// Copies `count` consecutive pixels of `lanes` planes (plane_size apart, starting at `src`) into
// dst pixel-major, 8 floats a pixel: 8 x 8 blocks loaded a row per plane and transposed in
// registers (the last block with masked loads, which never touch memory past the row's end).
// Lanes past `lanes` get zeros.
__attribute__((target("avx2"))) inline void copy_span_x8(const float* src, index_t plane_size, int lanes,
                                                      index_t count, float* dst) {
  for (index_t c = 0; c < count; c += kTileLanes, dst += kTileLanes * kTileLanes) {
    const index_t n = std::min<index_t>(kTileLanes, count - c);
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)),
                                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256 r[kTileLanes];
    for (int j = 0; j < kTileLanes; ++j)
      r[j] = j < lanes ? (n == kTileLanes ? _mm256_loadu_ps(src + j * plane_size + c)
                                      : _mm256_maskload_ps(src + j * plane_size + c, mask))
                       : _mm256_setzero_ps();
    // 8 x 8 transpose: r[j][i] (plane j, pixel i) -> t[i][j]
    const __m256 a0 = _mm256_unpacklo_ps(r[0], r[1]), a1 = _mm256_unpackhi_ps(r[0], r[1]);
    const __m256 a2 = _mm256_unpacklo_ps(r[2], r[3]), a3 = _mm256_unpackhi_ps(r[2], r[3]);
    const __m256 a4 = _mm256_unpacklo_ps(r[4], r[5]), a5 = _mm256_unpackhi_ps(r[4], r[5]);
    const __m256 a6 = _mm256_unpacklo_ps(r[6], r[7]), a7 = _mm256_unpackhi_ps(r[6], r[7]);
    const __m256 b0 = _mm256_shuffle_ps(a0, a2, 0x44), b1 = _mm256_shuffle_ps(a0, a2, 0xEE);
    const __m256 b2 = _mm256_shuffle_ps(a1, a3, 0x44), b3 = _mm256_shuffle_ps(a1, a3, 0xEE);
    const __m256 b4 = _mm256_shuffle_ps(a4, a6, 0x44), b5 = _mm256_shuffle_ps(a4, a6, 0xEE);
    const __m256 b6 = _mm256_shuffle_ps(a5, a7, 0x44), b7 = _mm256_shuffle_ps(a5, a7, 0xEE);
    const __m256 t[kTileLanes] = {_mm256_permute2f128_ps(b0, b4, 0x20), _mm256_permute2f128_ps(b1, b5, 0x20),
                              _mm256_permute2f128_ps(b2, b6, 0x20), _mm256_permute2f128_ps(b3, b7, 0x20),
                              _mm256_permute2f128_ps(b0, b4, 0x31), _mm256_permute2f128_ps(b1, b5, 0x31),
                              _mm256_permute2f128_ps(b2, b6, 0x31), _mm256_permute2f128_ps(b3, b7, 0x31)};
    for (index_t i = 0; i < n; ++i) _mm256_store_ps(dst + i * kTileLanes, t[i]);
  }
}

#endif  // FASTCONV_X86

}  // namespace fastconv::roi::cpu
