// What every conv2d algorithm copies before it computes: input rows zero-padded (or one stride
// phase of them), and weights packed for the GEMM or rotated for the input gradient.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "common/conv_geometry.h"
#include "conv/conv.h"
#include "core/isa.h"
#include "core/view.h"
#include "gemm/pack.h"
#if FASTCONV_X86
#include <immintrin.h>
#endif

namespace fastconv::conv::cpu {

// Keeps gcc from turning a function's plain loops into memset / memcpy calls: for rows of a
// few values (8x8 maps) the calls cost more than the copying.
#define FASTCONV_NO_LIBRARY_CALLS __attribute__((optimize("no-tree-loop-distribute-patterns")))

// The bits l of an L-lane mask (L <= 16) with lo <= l < hi, lo and hi clamped to [0, L]: which
// lanes of a vector a masked load or store touches.
constexpr unsigned lane_bits(index_t lo, index_t hi, index_t L) {
  lo = lo < 0 ? 0 : lo > L ? L : lo;
  hi = hi < 0 ? 0 : hi > L ? L : hi;
  return ((1u << hi) - 1) & ~((1u << lo) - 1);
}

// Of `rows` rows from row `top` of a plane of H rows, those [lo, hi) that lie in the plane; the
// others are zero padding.
inline Range rows_in_plane(index_t top, index_t H, index_t rows) {
  const index_t lo = std::clamp<index_t>(-top, 0, rows);
  return {lo, std::clamp<index_t>(H - top, lo, rows)};
}

// out[q] = src[q * Stride] for q in [lo, hi). The AVX2 entry shuffles 8 values per store where
// SSE2's shuffles give 4 (the AVX-512 entry 16): the stride-2 and stride-4 phase copies of
// implicit GEMM (the 7x7/2 stem, AlexNet's 11x11/4) were 5% of those layers.
template <index_t Stride, class T>
__attribute__((always_inline)) inline void copy_strided_body(T* __restrict out, const T* __restrict src, index_t lo,
                                                             index_t hi) {
  for (index_t q = lo; q < hi; ++q) out[q] = src[q * Stride];
}
#if FASTCONV_X86
// The even (odd) values of the 16 in a then b, in order: a0 a2 b0 b2 | a4 a6 b4 b6 by one
// shuffle, then 64-bit pairs 0 2 1 3 by one lane permute.
__attribute__((target("avx2,fma"))) inline __m256 even_lanes_avx2(__m256 a, __m256 b) {
  const __m256d pairs = _mm256_castps_pd(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)));
  return _mm256_castpd_ps(_mm256_permute4x64_pd(pairs, _MM_SHUFFLE(3, 1, 2, 0)));
}
__attribute__((target("avx2,fma"))) inline __m256 odd_lanes_avx2(__m256 a, __m256 b) {
  const __m256d pairs = _mm256_castps_pd(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
  return _mm256_castpd_ps(_mm256_permute4x64_pd(pairs, _MM_SHUFFLE(3, 1, 2, 0)));
}

// The same on AVX-512: the even (odd) values of the 32 in a then b, by one two-source permute.
__attribute__((target("avx512f,avx2,fma"))) inline __m512 even_lanes_avx512(__m512 a, __m512 b) {
  return _mm512_permutex2var_ps(a, _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30), b);
}
__attribute__((target("avx512f,avx2,fma"))) inline __m512 odd_lanes_avx512(__m512 a, __m512 b) {
  return _mm512_permutex2var_ps(a, _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31), b);
}

// Stride 2, float: 8 values from two loads, their even lanes gathered by one shuffle and one
// lane permute. The second load of the last vector stops at the last value read (a masked load):
// a full one would read one value past the row, past the array at the last row of a plane.
// (gcc's own vectorisation of the plain loop left that vector to scalar code: a third of the
// time of the 16-wide phase rows of resnet20's 3x3/2 layer.)
__attribute__((target("avx2,fma"))) inline index_t copy_even_lanes_avx2(float* __restrict out,
                                                                        const float* __restrict src, index_t lo,
                                                                        index_t hi) {
  const __m256i all_but_last = _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, -1, 0);
  index_t q = lo;
  for (; q + 8 <= hi; q += 8) {
    const __m256 a = _mm256_loadu_ps(src + 2 * q);
    const __m256 b = q + 8 < hi ? _mm256_loadu_ps(src + 2 * q + 8) : _mm256_maskload_ps(src + 2 * q + 8, all_but_last);
    _mm256_storeu_ps(out + q, even_lanes_avx2(a, b));
  }
  return q;
}

// even[j] = src[2 j], odd[j] = src[2 j + 1] for j < n: 16 values split by two shuffles and
// two lane permutes per 8 of each.
__attribute__((target("avx2,fma"))) inline void split_even_odd_avx2(const float* __restrict src, index_t n,
                                                                    float* __restrict even, float* __restrict odd) {
  index_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 a = _mm256_loadu_ps(src + 2 * j), b = _mm256_loadu_ps(src + 2 * j + 8);
    _mm256_storeu_ps(even + j, even_lanes_avx2(a, b));
    _mm256_storeu_ps(odd + j, odd_lanes_avx2(a, b));
  }
  for (; j < n; ++j) {
    even[j] = src[2 * j];
    odd[j] = src[2 * j + 1];
  }
}

// Which of the 16 values from u0 have their u in `valid`: an AVX-512 lane mask.
inline __mmask16 lanes_in(Range valid, index_t u0) {
  return static_cast<__mmask16>(lane_bits(valid.lo - u0, valid.hi - u0, 16));
}

// Rows [top, top + rows) of an H x W plane, zero-padded and split into their two stride-2
// phases: even[i][j] = row(2 j), odd[i][j] = row(2 j + 1) for j < n, rows ld apart, where
// row(u) = plane[top + i][u + left] for u + left in [0, W) (`valid`: those u), else 0. Per 16
// values of each: two masked loads (masked-off lanes, the padding, read as 0 and never touch
// memory) and two two-source permutes. A block of 16 columns at a time down all the rows, so
// that the masks are worked out once per block, not per row: called per row, the split had been
// a fifth of resnet20's 3x3/2 forward (16-wide phase rows, two blocks each, a padded 34-wide row).
__attribute__((target("avx512f,avx2,fma"))) inline void split_padded_rows_even_odd_avx512(
    const float* plane, index_t H, index_t W, index_t top, index_t left, Range valid, index_t rows, index_t n,
    index_t ld, float* __restrict even, float* __restrict odd) {
  const Range inside = rows_in_plane(top, H, rows);
  for (index_t j = 0; j < n; j += 16) {
    const index_t u0 = 2 * j;
    const __mmask16 first = lanes_in(valid, u0), second = lanes_in(valid, u0 + 16);
    const __mmask16 out = static_cast<__mmask16>(n - j >= 16 ? 0xFFFFu : (1u << (n - j)) - 1);
    for (index_t i = 0; i < rows; ++i) {
      // (no lambda for this: it would not inherit the function's target)
      const bool in_plane = i >= inside.lo && i < inside.hi;
      const float* src = in_plane ? plane + (top + i) * W + left + u0 : plane;
      const __m512 a = _mm512_maskz_loadu_ps(in_plane ? first : 0, src);
      const __m512 b = _mm512_maskz_loadu_ps(in_plane ? second : 0, src + 16);
      _mm512_mask_storeu_ps(even + i * ld + j, out, even_lanes_avx512(a, b));
      _mm512_mask_storeu_ps(odd + i * ld + j, out, odd_lanes_avx512(a, b));
    }
  }
}

// Rows [top, top + rows) of an H x W plane as the column planes of a stride-2 kernel's taps:
// plane s holds row(2 j + s) for j < n (a whole number of vectors), rows ld apart, planes
// plane_step apart, row(u) as above. Tap column s of an output row then reads a whole vector at
// the same place in its own plane: no load shifted by a column, which split cache lines on
// every other tap (direct.cpp's tap planes). Per 16 values: two masked loads, one two-source
// permute, one store.
__attribute__((target("avx512f,avx2,fma"))) inline void split_padded_rows_taps_avx512(
    const float* plane, index_t H, index_t W, index_t top, index_t left, Range valid, index_t rows, index_t n,
    index_t ld, index_t taps, index_t plane_step, float* __restrict dst) {
  const Range inside = rows_in_plane(top, H, rows);
  for (index_t s = 0; s < taps; ++s)
    for (index_t j = 0; j < n; j += 16) {
      const index_t u0 = 2 * j + s;
      const __mmask16 first = lanes_in(valid, u0), second = lanes_in(valid, u0 + 16);
      float* out = dst + s * plane_step + j;
      for (index_t i = 0; i < rows; ++i, out += ld) {
        const bool in_plane = i >= inside.lo && i < inside.hi;
        const float* src = in_plane ? plane + (top + i) * W + left + u0 : plane;
        const __m512 a = _mm512_maskz_loadu_ps(in_plane ? first : 0, src);
        const __m512 b = _mm512_maskz_loadu_ps(in_plane ? second : 0, src + 16);
        _mm512_storeu_ps(out, even_lanes_avx512(a, b));
      }
    }
}

// The same on AVX-512: 16 values from two loads, their even lanes gathered by one two-source
// permute (the last vector's second load masked as above); a remaining 8 as AVX2's.
__attribute__((target("avx512f,avx2,fma"))) inline index_t copy_even_lanes_avx512(float* __restrict out,
                                                                                  const float* __restrict src,
                                                                                  index_t lo, index_t hi) {
  index_t q = lo;
  for (; q + 16 <= hi; q += 16) {
    const __m512 a = _mm512_loadu_ps(src + 2 * q);
    const __m512 b = q + 16 < hi ? _mm512_loadu_ps(src + 2 * q + 16) : _mm512_maskz_loadu_ps(0x7FFF, src + 2 * q + 16);
    _mm512_storeu_ps(out + q, even_lanes_avx512(a, b));
  }
  return copy_even_lanes_avx2(out, src, q, hi);
}

template <index_t Stride, class T>
__attribute__((target("avx2,fma"))) FASTCONV_NO_LIBRARY_CALLS void copy_strided_avx2(T* __restrict out,
                                                                                      const T* __restrict src,
                                                                                      index_t lo, index_t hi) {
  if constexpr (Stride == 2 && std::is_same_v<T, float>) lo = copy_even_lanes_avx2(out, src, lo, hi);
  copy_strided_body<Stride>(out, src, lo, hi);
}
template <index_t Stride, class T>
__attribute__((target("avx512f,avx2,fma"))) FASTCONV_NO_LIBRARY_CALLS void copy_strided_avx512(T* __restrict out,
                                                                                                const T* __restrict src,
                                                                                                index_t lo, index_t hi) {
  if constexpr (Stride == 2 && std::is_same_v<T, float>) lo = copy_even_lanes_avx512(out, src, lo, hi);
  copy_strided_body<Stride>(out, src, lo, hi);
}
#endif
template <index_t Stride, class T>
FASTCONV_NO_LIBRARY_CALLS inline void copy_strided(T* __restrict out, const T* __restrict src, index_t lo, index_t hi) {
#if FASTCONV_X86
  if (hi - lo >= 16 && active_isa() >= Isa::avx512) return copy_strided_avx512<Stride>(out, src, lo, hi);
  if (hi - lo >= 16 && active_isa() >= Isa::avx2) return copy_strided_avx2<Stride>(out, src, lo, hi);
#endif
  copy_strided_body<Stride>(out, src, lo, hi);
}

// out[0, Q) = src[q * stride] for q in [lo, hi), else 0: one output row of an im2col row,
// or one row of a stride phase (implicit_gemm.cpp). Rows
// of a few values (8x8 maps) cost more in library calls (memset, memcpy, memset) than in
// copying, so the edges and short runs are plain loops, kept from being turned back into calls.
template <class T>
FASTCONV_NO_LIBRARY_CALLS inline void copy_row_padded(T* __restrict out, const T* __restrict src, Range qs,
                                                      index_t Q, index_t stride) {
  for (index_t q = 0; q < qs.lo; ++q) out[q] = T(0);
  if (stride == 1 && qs.hi - qs.lo > 16) {
    std::memcpy(out + qs.lo, src + qs.lo, sizeof(T) * (qs.hi - qs.lo));
  } else if (stride == 1) {
    for (index_t q = qs.lo; q < qs.hi; ++q) out[q] = src[q];
  } else if (stride == 2) {  // constant strides: vectorised with shuffles
    copy_strided<2>(out, src, qs.lo, qs.hi);
  } else if (stride == 4) {  // AlexNet's conv1 (implicit GEMM's stride phases)
    copy_strided<4>(out, src, qs.lo, qs.hi);
  } else {
    for (index_t q = qs.lo; q < qs.hi; ++q) out[q] = src[q * stride];
  }
  for (index_t q = qs.hi; q < Q; ++q) out[q] = T(0);
}

// even[j] = src[2 j], odd[j] = src[2 j + 1] for j < n.
template <class T>
inline void split_even_odd(const T* __restrict src, index_t n, T* __restrict even, T* __restrict odd) {
#if FASTCONV_X86
  if constexpr (std::is_same_v<T, float>)
    if (active_isa() >= Isa::avx2) return split_even_odd_avx2(src, n, even, odd);
#endif
  for (index_t j = 0; j < n; ++j) {
    even[j] = src[2 * j];
    odd[j] = src[2 * j + 1];
  }
}

#if FASTCONV_X86
// copy_padded_rows below at column step 1, for rows of at most kMaskedRowVectors vectors: per
// vector of a row, one masked load (lanes outside `cols`, the padding, read as 0 and touch no
// memory) and one masked store, the masks worked out once for all rows. Called a row at a time,
// copy_row_padded's loops and calls had cost ~20 cycles per 16-value row: a tenth of
// conv_transpose2d's sub-pixel forward over 16x16 maps.
constexpr index_t kMaskedRowVectors = 8;

template <class T>
__attribute__((target("avx512f,avx2,fma"))) inline void copy_padded_rows_avx512(const T* plane, index_t H, index_t W,
                                                                             index_t top, index_t left, Range cols,
                                                                             index_t rows, index_t ld, T* dst,
                                                                             index_t step_h) {
  constexpr index_t L = 64 / sizeof(T);
  const index_t vectors = (ld + L - 1) / L;
  __mmask16 load[kMaskedRowVectors], store[kMaskedRowVectors];
  for (index_t v = 0; v < vectors; ++v) {
    load[v] = static_cast<__mmask16>(lane_bits(cols.lo - v * L, cols.hi - v * L, L));
    store[v] = static_cast<__mmask16>(lane_bits(0, ld - v * L, L));
  }
  for (index_t i = 0; i < rows; ++i, dst += ld) {
    const index_t h = top + i * step_h;
    const bool inside = h >= 0 && h < H;
    const T* src = inside ? plane + h * W + left : plane;
    for (index_t v = 0; v < vectors; ++v) {
      const __mmask16 lanes = inside ? load[v] : 0;
      if constexpr (std::is_same_v<T, float>)
        _mm512_mask_storeu_ps(dst + v * L, store[v], _mm512_maskz_loadu_ps(lanes, src + v * L));
      else
        _mm512_mask_storeu_pd(dst + v * L, static_cast<__mmask8>(store[v]),
                              _mm512_maskz_loadu_pd(static_cast<__mmask8>(lanes), src + v * L));
    }
  }
}

// copy_padded_rows_avx512 at column step 2, float (a stride phase's rows): per vector of 16
// values, two masked loads of the 32 source values they are the even ones of (from the row's
// first valid value to its last: nothing outside the plane is touched), one two-source permute,
// one masked store. Row by row through copy_row_padded (its loops and a call per row), the phase
// copies had been 13% of a 4x4/2 layer's Winograd input gradient (16-value phase rows); resnet20's
// 3x3/2 forward by implicit GEMM runs 0.92x the time with these (one process, builds alternated).
__attribute__((target("avx512f,avx2,fma"))) inline void copy_padded_phase_rows_avx512(const float* plane, index_t H,
                                                                                   index_t W, index_t top,
                                                                                   index_t left, Range cols,
                                                                                   index_t rows, index_t ld,
                                                                                   float* dst, index_t step_h) {
  const index_t vectors = (ld + 15) / 16;
  const Range valid{2 * cols.lo, 2 * cols.hi - 1};  // the source values read, from the row's `left`
  __mmask16 first[kMaskedRowVectors], second[kMaskedRowVectors], store[kMaskedRowVectors];
  for (index_t v = 0; v < vectors; ++v) {
    first[v] = lanes_in(valid, 32 * v);
    second[v] = lanes_in(valid, 32 * v + 16);
    store[v] = static_cast<__mmask16>(lane_bits(0, ld - v * 16, 16));
  }
  for (index_t i = 0; i < rows; ++i, dst += ld) {
    const index_t h = top + i * step_h;
    const bool inside = h >= 0 && h < H;
    const float* src = inside ? plane + h * W + left : plane;
    for (index_t v = 0; v < vectors; ++v) {
      const __m512 a = _mm512_maskz_loadu_ps(inside ? first[v] : 0, src + 32 * v);
      const __m512 b = _mm512_maskz_loadu_ps(inside ? second[v] : 0, src + 32 * v + 16);
      _mm512_mask_storeu_ps(dst + 16 * v, store[v], even_lanes_avx512(a, b));
    }
  }
}

// The lanes l of a vector of T with lo <= l < hi, as an AVX2 maskload/maskstore mask.
template <class T>
__attribute__((target("avx2,fma"))) inline __m256i lanes_between_avx2(index_t lo, index_t hi) {
  constexpr int L = 32 / sizeof(T);
  alignas(32) std::conditional_t<sizeof(T) == 8, std::int64_t, std::int32_t> bits[L];
  const unsigned on = lane_bits(lo, hi, L);
  for (int l = 0; l < L; ++l) bits[l] = on >> l & 1u ? -1 : 0;
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(bits));
}

// split_padded_rows_taps_avx512 on AVX2: per 8 values of a plane, two masked loads, one
// shuffle and one lane permute (copy_even_lanes_avx2's), one store.
__attribute__((target("avx2,fma"))) inline void split_padded_rows_taps_avx2(
    const float* plane, index_t H, index_t W, index_t top, index_t left, Range valid, index_t rows, index_t n,
    index_t ld, index_t taps, index_t plane_step, float* __restrict dst) {
  const Range inside = rows_in_plane(top, H, rows);
  const __m256i none = _mm256_setzero_si256();
  for (index_t s = 0; s < taps; ++s)
    for (index_t j = 0; j < n; j += 8) {
      const index_t u0 = 2 * j + s;
      const __m256i first = lanes_between_avx2<float>(valid.lo - u0, valid.hi - u0);
      const __m256i second = lanes_between_avx2<float>(valid.lo - u0 - 8, valid.hi - u0 - 8);
      float* out = dst + s * plane_step + j;
      for (index_t i = 0; i < rows; ++i, out += ld) {
        const bool in_plane = i >= inside.lo && i < inside.hi;
        const float* src = in_plane ? plane + (top + i) * W + left + u0 : plane;
        const __m256 a = _mm256_maskload_ps(src, in_plane ? first : none);
        const __m256 b = _mm256_maskload_ps(src + 8, in_plane ? second : none);
        _mm256_storeu_ps(out, even_lanes_avx2(a, b));
      }
    }
}

// copy_padded_phase_rows_avx512 on AVX2: per 8 values, two masked loads, one shuffle and one
// lane permute (even_lanes_avx2), one store (a row's last partial vector through maskstore).
__attribute__((target("avx2,fma"))) inline void copy_padded_phase_rows_avx2(const float* plane, index_t H, index_t W,
                                                                           index_t top, index_t left, Range cols,
                                                                           index_t rows, index_t ld, float* dst,
                                                                           index_t step_h) {
  const index_t vectors = (ld + 7) / 8, full = ld / 8;
  const Range valid{2 * cols.lo, 2 * cols.hi - 1};
  __m256i first[kMaskedRowVectors], second[kMaskedRowVectors];
  for (index_t v = 0; v < vectors; ++v) {
    first[v] = lanes_between_avx2<float>(valid.lo - 16 * v, valid.hi - 16 * v);
    second[v] = lanes_between_avx2<float>(valid.lo - 16 * v - 8, valid.hi - 16 * v - 8);
  }
  const __m256i tail = lanes_between_avx2<float>(0, ld - full * 8), none = _mm256_setzero_si256();
  for (index_t i = 0; i < rows; ++i, dst += ld) {
    const index_t h = top + i * step_h;
    const bool inside = h >= 0 && h < H;
    const float* src = inside ? plane + h * W + left : plane;
    for (index_t v = 0; v < vectors; ++v) {
      const __m256 a = _mm256_maskload_ps(src + 16 * v, inside ? first[v] : none);
      const __m256 b = _mm256_maskload_ps(src + 16 * v + 8, inside ? second[v] : none);
      if (v < full) _mm256_storeu_ps(dst + 8 * v, even_lanes_avx2(a, b));
      else _mm256_maskstore_ps(dst + 8 * v, tail, even_lanes_avx2(a, b));
    }
  }
}

// The same on AVX2: lane masks as vectors (maskload reads masked-off lanes as 0 without touching
// them); full vectors stored plainly, a row's last partial one through maskstore.
template <class T>
__attribute__((target("avx2,fma"))) inline void copy_padded_rows_avx2(const T* plane, index_t H, index_t W,
                                                                     index_t top, index_t left, Range cols,
                                                                     index_t rows, index_t ld, T* dst,
                                                                     index_t step_h) {
  constexpr index_t L = 32 / sizeof(T);
  const index_t vectors = (ld + L - 1) / L;
  const index_t full = ld / L;  // vectors stored whole
  __m256i load[kMaskedRowVectors];
  for (index_t v = 0; v < vectors; ++v) load[v] = lanes_between_avx2<T>(cols.lo - v * L, cols.hi - v * L);
  const __m256i tail = lanes_between_avx2<T>(0, ld - full * L);
  const __m256i none = _mm256_setzero_si256();
  for (index_t i = 0; i < rows; ++i, dst += ld) {
    const index_t h = top + i * step_h;
    const bool inside = h >= 0 && h < H;
    const T* src = inside ? plane + h * W + left : plane;
    for (index_t v = 0; v < vectors; ++v) {
      const __m256i lanes = inside ? load[v] : none;
      if constexpr (std::is_same_v<T, float>) {
        const __m256 x = _mm256_maskload_ps(src + v * L, lanes);
        if (v < full) _mm256_storeu_ps(dst + v * L, x);
        else _mm256_maskstore_ps(dst + v * L, tail, x);
      } else {
        const __m256d x = _mm256_maskload_pd(src + v * L, lanes);
        if (v < full) _mm256_storeu_pd(dst + v * L, x);
        else _mm256_maskstore_pd(dst + v * L, tail, x);
      }
    }
  }
}
#endif

// dst[i][j] = plane[top + i * step_h][left + j * step_w] for `rows` rows of `ld` values, 0
// outside the H x W plane: a zero-padded copy that kernels then read without bounds checks
// (direct, depthwise, the tiled transforms), of one stride phase when a step is above 1
// (implicit GEMM's phase planes, a strided convolution's tiled phases).
template <class T>
inline void copy_padded_rows(const T* plane, index_t H, index_t W, index_t top, index_t left, index_t rows,
                             index_t ld, T* dst, index_t step_h = 1, index_t step_w = 1) {
  const Range cols = valid_range(left, step_w, W, ld);
#if FASTCONV_X86
  if (step_w == 1 && active_isa() >= Isa::avx512 && ld <= kMaskedRowVectors * 64 / index_t(sizeof(T)))
    return copy_padded_rows_avx512(plane, H, W, top, left, cols, rows, ld, dst, step_h);
  if (step_w == 1 && active_isa() >= Isa::avx2 && ld <= kMaskedRowVectors * 32 / index_t(sizeof(T)))
    return copy_padded_rows_avx2(plane, H, W, top, left, cols, rows, ld, dst, step_h);
  if constexpr (std::is_same_v<T, float>) {
    if (step_w == 2 && active_isa() >= Isa::avx512 && ld <= kMaskedRowVectors * 16)
      return copy_padded_phase_rows_avx512(plane, H, W, top, left, cols, rows, ld, dst, step_h);
    if (step_w == 2 && active_isa() >= Isa::avx2 && ld <= kMaskedRowVectors * 8)
      return copy_padded_phase_rows_avx2(plane, H, W, top, left, cols, rows, ld, dst, step_h);
  }
#endif
  for (index_t i = 0; i < rows; ++i, dst += ld) {
    const index_t h = top + i * step_h;
    const bool inside = h >= 0 && h < H;
    copy_row_padded(dst, inside ? plane + h * W + left : plane, inside ? cols : Range{0, 0}, ld, step_w);
  }
}

// The input rows the next band of output rows will copy (rows [h0, h1) of each channel's
// plane), prefetched into L2 a share at a time between pieces of the current band's arithmetic.
// Left to the copy, they come from memory in one burst that stalls it (resnet20's 3x3/2 direct
// forward ran 2-3% faster with them prefetched; implicit GEMM's bands prefetch the same way).
class NextRowsPrefetch {
 public:
  template <class T>
  void set(const T* image, index_t channels, index_t H, index_t W, index_t h0, index_t h1) {
    clear();
    h0 = std::max<index_t>(h0, 0);
    h1 = std::min(h1, H);
    if (h1 <= h0) return;
    for (index_t c = 0; c < channels; ++c) starts_.push_back(reinterpret_cast<const char*>(image + (c * H + h0) * W));
    span_ = (h1 - h0) * W * static_cast<index_t>(sizeof(T));
  }
  void clear() {
    starts_.clear();
    span_ = done_ = channel_ = offset_ = 0;
  }
  // The lines due after piece `step` of `steps`, walked channel by channel with no division per
  // line (two per line had cost the 7x7 layer's implicit GEMM 3%).
  void share(index_t step, index_t steps) {
    const index_t due = span_ * static_cast<index_t>(starts_.size()) * (step + 1) / steps;
    for (; done_ < due; done_ += 64) {
      __builtin_prefetch(starts_[channel_] + offset_, 0, 2);
      if ((offset_ += 64) >= span_) {
        offset_ = 0;
        ++channel_;
      }
    }
  }

 private:
  std::vector<const char*> starts_;  // per channel, the first byte of its rows
  index_t span_ = 0;                 // bytes of rows per channel
  index_t done_ = 0;                 // bytes prefetched so far
  index_t channel_ = 0, offset_ = 0;  // the next line: its channel, its byte in the span
};

// Each group's weights (K/G x C/G*R*S) packed whole, once per call, for every GEMM of the call
// (im2col's chunks, implicit GEMM's bands).
template <class T>
std::vector<gemm::PackedA<T>> packed_weights(const Conv2dShape& s, const T* w) {
  const index_t G = s.groups(), Kg = s.K_per_group(), CRSg = s.column_rows() / G;
  std::vector<gemm::PackedA<T>> packed;
  for (index_t g = 0; g < G; ++g) packed.emplace_back(as_const(dense_matrix(const_cast<T*>(w) + g * Kg * CRSg, Kg, CRSg)));
  return packed;
}

// The input gradient of a stride-1 convolution is a stride-1 convolution of grad_y with these
// weights (winograd.cpp, fft.cpp, direct.cpp run it so).
// w (K, C/G, R, S) -> w' (C, K/G, R, S) with w'[g, c, k, r, s] = w[g, k, c, R-1-r, S-1-s].
template <class T>
std::vector<T> rotated_transposed_weights(const Conv2dShape& s, const T* w) {
  const index_t Kg = s.K_per_group(), Cg = s.C_per_group(), RS = s.R * s.S;
  std::vector<T> out(s.K * Cg * RS);
  for (index_t g = 0; g < s.groups(); ++g)
    for (index_t k = 0; k < Kg; ++k)
      for (index_t c = 0; c < Cg; ++c) {
        const T* src = w + ((g * Kg + k) * Cg + c) * RS;
        T* dst = out.data() + ((g * Cg + c) * Kg + k) * RS;
        for (index_t i = 0; i < RS; ++i) dst[i] = src[RS - 1 - i];
      }
  return out;
}

}  // namespace fastconv::conv::cpu
