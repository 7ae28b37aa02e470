// AVX2 vector types for the kernels written once over a vector type V (gemm/microkernel.h,
// conv/direct_avx2.cpp): float and double lanes of a 256-bit ymm register.
//
// Include only from a file compiled for AVX2 (`#pragma GCC target("avx2,fma")` before any
// include): the functions are defined in an unnamed namespace, so each such file keeps its own
// AVX2 copy and no baseline caller can be linked against it.
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace fastconv::simd {
namespace {

struct Avx2F32 {
  using T = float;
  using Reg = __m256;
  static constexpr int width = 8;
  static constexpr int registers = 16;  // vector registers of the ISA
  static Reg zero() { return _mm256_setzero_ps(); }
  static Reg set1(T x) { return _mm256_set1_ps(x); }
  static Reg load(const T* p) { return _mm256_load_ps(p); }
  static Reg loadu(const T* p) { return _mm256_loadu_ps(p); }
  static void storeu(T* p, Reg v) { _mm256_storeu_ps(p, v); }
  // Lanes [0, n) only (n < 8), nothing else touched: as 4-, 2- and 1-lane stores, since a masked
  // store (vmaskmovps) is microcoded on AMD's cores, dozens of cycles.
  static void store_first(T* p, Reg v, int n) {
    __m128 part = _mm256_castps256_ps128(v);
    if (n >= 4) {
      _mm_storeu_ps(p, part);
      p += 4;
      n -= 4;
      part = _mm256_extractf128_ps(v, 1);
    }
    if (n >= 2) {
      _mm_storel_pi(reinterpret_cast<__m64*>(p), part);
      p += 2;
      n -= 2;
      part = _mm_movehl_ps(part, part);
    }
    if (n) _mm_store_ss(p, part);
  }
  // A lane mask from its bits (bit l: lane l); masked-out lanes load as 0, and do not fault when they
  // lie outside the array.
  using Mask = __m256i;
  static constexpr unsigned all_lanes = 0xFFu;
  static Mask mask(unsigned bits) {
    const __m256i lane_bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    return _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(static_cast<int>(bits)), lane_bit), lane_bit);
  }
  static Reg load_masked(const T* p, Mask m) { return _mm256_maskload_ps(p, m); }
  // The lanes of `bits` loaded, the others 0: a plain load when all lanes are wanted (vmaskmovps
  // is several times slower on AMD's cores).
  static Reg load_lanes(const T* p, unsigned bits) { return bits == all_lanes ? loadu(p) : load_masked(p, mask(bits)); }
  // Lane l = base[index[l]]; gather_valid: lanes whose index is negative are 0 and read nothing.
  static Reg gather(const T* base, const std::int32_t* index) {
    return _mm256_i32gather_ps(base, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(index)), sizeof(T));
  }
  static Reg gather_valid(const T* base, const std::int32_t* index) {
    const __m256i i = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(index));
    const __m256 valid = _mm256_castsi256_ps(_mm256_cmpgt_epi32(i, _mm256_set1_epi32(-1)));
    return _mm256_mask_i32gather_ps(zero(), base, i, valid, sizeof(T));
  }
  // gather_valid's lanes where every index that is not negative lies in [first, first + count),
  // count <= 2 * width: loads and permutes instead of a gather (as Avx512F32's).
  static Reg gather_window(const T* base, const std::int32_t* index, std::int32_t first, std::int32_t count) {
    const __m256i i = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(index));
    const __m256i at = _mm256_sub_epi32(i, _mm256_set1_epi32(first));  // its low 3 bits pick the lane
    const T* window = base + first;
    Reg r = _mm256_permutevar8x32_ps(load_lanes(window, first_bits(count)), at);
    if (count > width) {
      const Reg high = _mm256_permutevar8x32_ps(load_lanes(window + width, first_bits(count - width)), at);
      r = _mm256_blendv_ps(r, high, _mm256_castsi256_ps(_mm256_cmpgt_epi32(at, _mm256_set1_epi32(width - 1))));
    }
    return _mm256_and_ps(r, _mm256_castsi256_ps(_mm256_cmpgt_epi32(i, _mm256_set1_epi32(-1))));  // +0 where invalid
  }
  static unsigned first_bits(std::int32_t n) { return n >= width ? all_lanes : (1u << n) - 1; }  // lanes [0, n)
  static Reg fma(Reg a, Reg b, Reg c) { return _mm256_fmadd_ps(a, b, c); }
  static Reg mul(Reg a, Reg b) { return _mm256_mul_ps(a, b); }
  static Reg div(Reg a, Reg b) { return _mm256_div_ps(a, b); }
  static Reg add(Reg a, Reg b) { return _mm256_add_ps(a, b); }
  static Reg sub(Reg a, Reg b) { return _mm256_sub_ps(a, b); }
  static Reg fnmadd(Reg a, Reg b, Reg c) { return _mm256_fnmadd_ps(a, b, c); }  // c - a b, one rounding
  static Reg max(Reg a, Reg b) { return _mm256_max_ps(a, b); }
  static T sum(Reg v) {  // of the 8 lanes
    const __m128 half = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 pair = _mm_add_ps(half, _mm_movehl_ps(half, half));
    return _mm_cvtss_f32(_mm_add_ss(pair, _mm_movehdup_ps(pair)));
  }
  // Lane i = the sum of v[i]'s lanes, for 8 vectors: pairs of lanes, then of pairs, then the
  // halves added (21 instructions where 8 sum() calls take 48).
  static Reg sums(const Reg* v) {
    Reg pairs[4], quads[2];
#pragma GCC unroll 8
    for (int k = 0; k < 4; ++k)
      pairs[k] = _mm256_add_ps(_mm256_unpacklo_ps(v[2 * k], v[2 * k + 1]), _mm256_unpackhi_ps(v[2 * k], v[2 * k + 1]));
#pragma GCC unroll 8
    for (int k = 0; k < 2; ++k) {
      const __m256d a = _mm256_castps_pd(pairs[2 * k]), b = _mm256_castps_pd(pairs[2 * k + 1]);
      quads[k] = _mm256_add_ps(_mm256_castpd_ps(_mm256_unpacklo_pd(a, b)), _mm256_castpd_ps(_mm256_unpackhi_pd(a, b)));
    }
    return _mm256_add_ps(_mm256_permute2f128_ps(quads[0], quads[1], 0x20), _mm256_permute2f128_ps(quads[0], quads[1], 0x31));
  }
};

struct Avx2F64 {
  using T = double;
  using Reg = __m256d;
  static constexpr int width = 4;
  static constexpr int registers = 16;  // vector registers of the ISA
  static Reg zero() { return _mm256_setzero_pd(); }
  static Reg set1(T x) { return _mm256_set1_pd(x); }
  static Reg load(const T* p) { return _mm256_load_pd(p); }
  static Reg loadu(const T* p) { return _mm256_loadu_pd(p); }
  static void storeu(T* p, Reg v) { _mm256_storeu_pd(p, v); }
  static void store_first(T* p, Reg v, int n) {  // lanes [0, n), n < 4: as Avx2F32's
    __m128d part = _mm256_castpd256_pd128(v);
    if (n >= 2) {
      _mm_storeu_pd(p, part);
      p += 2;
      n -= 2;
      part = _mm256_extractf128_pd(v, 1);
    }
    if (n) _mm_store_sd(p, part);
  }
  using Mask = __m256i;  // as Avx2F32's
  static constexpr unsigned all_lanes = 0xFu;
  static Mask mask(unsigned bits) {
    const __m256i lane_bit = _mm256_setr_epi64x(1, 2, 4, 8);
    return _mm256_cmpeq_epi64(_mm256_and_si256(_mm256_set1_epi64x(bits), lane_bit), lane_bit);
  }
  static Reg load_masked(const T* p, Mask m) { return _mm256_maskload_pd(p, m); }
  static Reg load_lanes(const T* p, unsigned bits) { return bits == all_lanes ? loadu(p) : load_masked(p, mask(bits)); }
  static Reg gather(const T* base, const std::int32_t* index) {  // as Avx2F32's
    return _mm256_i32gather_pd(base, _mm_loadu_si128(reinterpret_cast<const __m128i*>(index)), sizeof(T));
  }
  static Reg gather_valid(const T* base, const std::int32_t* index) {
    const __m128i i = _mm_loadu_si128(reinterpret_cast<const __m128i*>(index));
    const __m256d valid = _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm_cmpgt_epi32(i, _mm_set1_epi32(-1))));
    return _mm256_mask_i32gather_pd(zero(), base, i, valid, sizeof(T));
  }
  // Four lanes of double have no one-instruction permute across the register on AVX2: a gather.
  static Reg gather_window(const T* base, const std::int32_t* index, std::int32_t, std::int32_t) {
    return gather_valid(base, index);
  }
  static Reg fma(Reg a, Reg b, Reg c) { return _mm256_fmadd_pd(a, b, c); }
  static Reg mul(Reg a, Reg b) { return _mm256_mul_pd(a, b); }
  static Reg add(Reg a, Reg b) { return _mm256_add_pd(a, b); }
  static Reg sub(Reg a, Reg b) { return _mm256_sub_pd(a, b); }
  static Reg fnmadd(Reg a, Reg b, Reg c) { return _mm256_fnmadd_pd(a, b, c); }
  static Reg max(Reg a, Reg b) { return _mm256_max_pd(a, b); }
  static T sum(Reg v) {  // of the 4 lanes
    const __m128d half = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(half, _mm_unpackhi_pd(half, half)));
  }
  static Reg sums(const Reg* v) {  // lane i = the sum of v[i]'s lanes, for 4 vectors: as Avx2F32's
    const Reg lo = _mm256_add_pd(_mm256_unpacklo_pd(v[0], v[1]), _mm256_unpackhi_pd(v[0], v[1]));
    const Reg hi = _mm256_add_pd(_mm256_unpacklo_pd(v[2], v[3]), _mm256_unpackhi_pd(v[2], v[3]));
    return _mm256_add_pd(_mm256_permute2f128_pd(lo, hi, 0x20), _mm256_permute2f128_pd(lo, hi, 0x31));
  }
};

// r[0..3] rows -> c[0..3] columns, within each 128-bit half: c[b] = (r0[b], r1[b], r2[b], r3[b] |
// r0[b+4], r1[b+4], r2[b+4], r3[b+4]).
inline void transpose4_halves(const __m256* r, __m256* c) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  c[0] = _mm256_shuffle_ps(t0, t2, 0x44);
  c[1] = _mm256_shuffle_ps(t0, t2, 0xEE);
  c[2] = _mm256_shuffle_ps(t1, t3, 0x44);
  c[3] = _mm256_shuffle_ps(t1, t3, 0xEE);
}

// An 8 x 8 transpose: c[b] = (r0[b], r1[b], ..., r7[b]).
inline void transpose8(const __m256* r, __m256* c) {
  __m256 lo[4], hi[4];
  transpose4_halves(r, lo);
  transpose4_halves(r + 4, hi);
  for (int b = 0; b < 4; ++b) {
    c[b] = _mm256_permute2f128_ps(lo[b], hi[b], 0x20);
    c[4 + b] = _mm256_permute2f128_ps(lo[b], hi[b], 0x31);
  }
}

}  // namespace
}  // namespace fastconv::simd
