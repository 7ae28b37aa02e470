// AVX-512 vector types for the kernels written once over a vector type V (gemm/microkernel.h,
// conv/cpu/depthwise_rows.h): float and double lanes of a 512-bit zmm register, with the same
// members as simd_avx2.h's.
//
// Include only from a file compiled for AVX-512 (`#pragma GCC target("avx512f,avx2,fma")` before
// any include): the functions are defined in an unnamed namespace, so each such file keeps its
// own copy and no baseline caller can be linked against it.
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace fastconv::simd {
namespace {

// The last step of sums() below, for float or double lanes: quarter j of the result = the sum
// of v[j]'s four 128-bit quarters, for 4 vectors (quarters 0+1 and 2+3 added, then those two).
inline __m512 add_vectors(__m512 a, __m512 b) { return _mm512_add_ps(a, b); }
inline __m512d add_vectors(__m512d a, __m512d b) { return _mm512_add_pd(a, b); }
template <int Imm>
__m512 shuffle_quarters(__m512 a, __m512 b) { return _mm512_shuffle_f32x4(a, b, Imm); }
template <int Imm>
__m512d shuffle_quarters(__m512d a, __m512d b) { return _mm512_shuffle_f64x2(a, b, Imm); }
template <class Reg>
Reg add_quarters(const Reg* v) {
  constexpr int kEven = _MM_SHUFFLE(2, 0, 2, 0), kOdd = _MM_SHUFFLE(3, 1, 3, 1);
  const Reg lo = add_vectors(shuffle_quarters<kEven>(v[0], v[1]), shuffle_quarters<kOdd>(v[0], v[1]));
  const Reg hi = add_vectors(shuffle_quarters<kEven>(v[2], v[3]), shuffle_quarters<kOdd>(v[2], v[3]));
  return add_vectors(shuffle_quarters<kEven>(lo, hi), shuffle_quarters<kOdd>(lo, hi));
}

struct Avx512F32 {
  using T = float;
  using Reg = __m512;
  static constexpr int width = 16;
  static constexpr int registers = 32;  // vector registers of the ISA
  static Reg zero() { return _mm512_setzero_ps(); }
  static Reg set1(T x) { return _mm512_set1_ps(x); }
  static Reg load(const T* p) { return _mm512_load_ps(p); }
  static Reg loadu(const T* p) { return _mm512_loadu_ps(p); }
  static void storeu(T* p, Reg v) { _mm512_storeu_ps(p, v); }
  static void store_first(T* p, Reg v, int n) { _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << n) - 1), v); }
  // A lane mask from its bits (bit l: lane l); masked-out lanes load as 0, and do not fault when they
  // lie outside the array.
  using Mask = __mmask16;
  static constexpr unsigned all_lanes = 0xFFFFu;
  static Mask mask(unsigned bits) { return static_cast<Mask>(bits); }
  static Reg load_masked(const T* p, Mask m) { return _mm512_maskz_loadu_ps(m, p); }
  static Reg load_lanes(const T* p, unsigned bits) { return load_masked(p, mask(bits)); }  // as fast as a plain load
  // Lane l = base[index[l]]; gather_valid: lanes whose index is negative are 0 and read nothing.
  static Reg gather(const T* base, const std::int32_t* index) {
    return _mm512_i32gather_ps(_mm512_loadu_si512(index), base, sizeof(T));
  }
  static Reg gather_valid(const T* base, const std::int32_t* index) {
    const __m512i i = _mm512_loadu_si512(index);
    return _mm512_mask_i32gather_ps(zero(), _mm512_cmpge_epi32_mask(i, _mm512_setzero_si512()), i, base, sizeof(T));
  }
  // gather_valid's lanes where every index that is not negative lies in [first, first + count),
  // count <= 2 * width: one or two loads and a permute instead of a gather, which AMD's Zen 4 (and
  // Intel's cores since their gather microcode fix) run several times slower.
  static Reg gather_window(const T* base, const std::int32_t* index, std::int32_t first, std::int32_t count) {
    const __m512i i = _mm512_loadu_si512(index);
    const __mmask16 valid = _mm512_cmpge_epi32_mask(i, _mm512_setzero_si512());
    const __m512i at = _mm512_sub_epi32(i, _mm512_set1_epi32(first));
    const T* window = base + first;
    const Reg low = load_lanes(window, first_bits(count));
    if (count <= width) return _mm512_maskz_permutexvar_ps(valid, at, low);
    return _mm512_maskz_permutex2var_ps(valid, low, at, load_lanes(window + width, first_bits(count - width)));
  }
  static unsigned first_bits(std::int32_t n) { return n >= width ? all_lanes : (1u << n) - 1; }  // lanes [0, n)
  static Reg fma(Reg a, Reg b, Reg c) { return _mm512_fmadd_ps(a, b, c); }
  static Reg mul(Reg a, Reg b) { return _mm512_mul_ps(a, b); }
  static Reg div(Reg a, Reg b) { return _mm512_div_ps(a, b); }
  static Reg add(Reg a, Reg b) { return _mm512_add_ps(a, b); }
  static Reg sub(Reg a, Reg b) { return _mm512_sub_ps(a, b); }
  static Reg fnmadd(Reg a, Reg b, Reg c) { return _mm512_fnmadd_ps(a, b, c); }  // c - a b, one rounding
  static Reg max(Reg a, Reg b) { return _mm512_max_ps(a, b); }
  static T sum(Reg v) { return _mm512_reduce_add_ps(v); }
  // Lane i = the sum of v[i]'s lanes, for 16 vectors: pairs of lanes, then of pairs, within each
  // 128-bit quarter, then the quarters added (add_quarters; 45 instructions where 16 sum() calls
  // take 128).
  static Reg sums(const Reg* v) {
    Reg pairs[8], quads[4];
#pragma GCC unroll 8
    for (int k = 0; k < 8; ++k)
      pairs[k] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * k], v[2 * k + 1]), _mm512_unpackhi_ps(v[2 * k], v[2 * k + 1]));
#pragma GCC unroll 8
    for (int k = 0; k < 4; ++k) {
      const __m512d a = _mm512_castps_pd(pairs[2 * k]), b = _mm512_castps_pd(pairs[2 * k + 1]);
      quads[k] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(a, b)), _mm512_castpd_ps(_mm512_unpackhi_pd(a, b)));
    }
    return add_quarters(quads);  // quads[k]'s quarter q: the sums over quarter q of v[4k .. 4k + 3]
  }
};

struct Avx512F64 {
  using T = double;
  using Reg = __m512d;
  static constexpr int width = 8;
  static constexpr int registers = 32;  // vector registers of the ISA
  static Reg zero() { return _mm512_setzero_pd(); }
  static Reg set1(T x) { return _mm512_set1_pd(x); }
  static Reg load(const T* p) { return _mm512_load_pd(p); }
  static Reg loadu(const T* p) { return _mm512_loadu_pd(p); }
  static void storeu(T* p, Reg v) { _mm512_storeu_pd(p, v); }
  static void store_first(T* p, Reg v, int n) { _mm512_mask_storeu_pd(p, static_cast<__mmask8>((1u << n) - 1), v); }
  using Mask = __mmask8;  // as Avx512F32's
  static constexpr unsigned all_lanes = 0xFFu;
  static Mask mask(unsigned bits) { return static_cast<Mask>(bits); }
  static Reg load_masked(const T* p, Mask m) { return _mm512_maskz_loadu_pd(m, p); }
  static Reg load_lanes(const T* p, unsigned bits) { return load_masked(p, mask(bits)); }
  static Reg gather(const T* base, const std::int32_t* index) {  // as Avx512F32's
    return _mm512_i32gather_pd(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(index)), base, sizeof(T));
  }
  static Reg gather_valid(const T* base, const std::int32_t* index) {
    const __m256i i = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(index));
    const auto valid = static_cast<Mask>(~_mm256_movemask_ps(_mm256_castsi256_ps(i)));  // sign bits clear
    return _mm512_mask_i32gather_pd(zero(), valid, i, base, sizeof(T));
  }
  static Reg gather_window(const T* base, const std::int32_t* index, std::int32_t first, std::int32_t count) {
    const __m256i i = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(index));  // as Avx512F32's
    const auto valid = static_cast<Mask>(~_mm256_movemask_ps(_mm256_castsi256_ps(i)));
    const __m512i at = _mm512_cvtepi32_epi64(_mm256_sub_epi32(i, _mm256_set1_epi32(first)));
    const T* window = base + first;
    const Reg low = load_lanes(window, first_bits(count));
    if (count <= width) return _mm512_maskz_permutexvar_pd(valid, at, low);
    return _mm512_maskz_permutex2var_pd(valid, low, at, load_lanes(window + width, first_bits(count - width)));
  }
  static unsigned first_bits(std::int32_t n) { return n >= width ? all_lanes : (1u << n) - 1; }  // lanes [0, n)
  static Reg fma(Reg a, Reg b, Reg c) { return _mm512_fmadd_pd(a, b, c); }
  static Reg mul(Reg a, Reg b) { return _mm512_mul_pd(a, b); }
  static Reg add(Reg a, Reg b) { return _mm512_add_pd(a, b); }
  static Reg sub(Reg a, Reg b) { return _mm512_sub_pd(a, b); }
  static Reg fnmadd(Reg a, Reg b, Reg c) { return _mm512_fnmadd_pd(a, b, c); }
  static Reg max(Reg a, Reg b) { return _mm512_max_pd(a, b); }
  static T sum(Reg v) { return _mm512_reduce_add_pd(v); }
  static Reg sums(const Reg* v) {  // lane i = the sum of v[i]'s lanes, for 8 vectors: as Avx512F32's
    Reg pairs[4];
#pragma GCC unroll 8
    for (int k = 0; k < 4; ++k)
      pairs[k] = _mm512_add_pd(_mm512_unpacklo_pd(v[2 * k], v[2 * k + 1]), _mm512_unpackhi_pd(v[2 * k], v[2 * k + 1]));
    return add_quarters(pairs);  // pairs[k]'s quarter q: the sums over quarter q of v[2k], v[2k + 1]
  }
};

// r[0..3] rows -> c[0..3] columns, within each 128-bit quarter: quarter q of c[b] = (r0[4q + b],
// r1[4q + b], r2[4q + b], r3[4q + b]) (simd_avx2.h's transpose4_halves on four quarters).
inline void transpose4_quarters(const __m512* r, __m512* c) {
  const __m512 t0 = _mm512_unpacklo_ps(r[0], r[1]), t1 = _mm512_unpackhi_ps(r[0], r[1]);
  const __m512 t2 = _mm512_unpacklo_ps(r[2], r[3]), t3 = _mm512_unpackhi_ps(r[2], r[3]);
  c[0] = _mm512_shuffle_ps(t0, t2, 0x44);
  c[1] = _mm512_shuffle_ps(t0, t2, 0xEE);
  c[2] = _mm512_shuffle_ps(t1, t3, 0x44);
  c[3] = _mm512_shuffle_ps(t1, t3, 0xEE);
}

// An 8 x 8 transpose within each 256-bit half: half h of c[b] = (r0[8h + b], ..., r7[8h + b])
// (simd_avx2.h's transpose8 on two halves).
inline void transpose8_halves(const __m512* r, __m512* c) {
  __m512 lo[4], hi[4];
  transpose4_quarters(r, lo);
  transpose4_quarters(r + 4, hi);
  // quarters (lo 0, hi 0, lo 2, hi 2) and (lo 1, hi 1, lo 3, hi 3)
  const __m512i first = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27);
  const __m512i second = _mm512_setr_epi32(4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31);
  for (int b = 0; b < 4; ++b) {
    c[b] = _mm512_permutex2var_ps(lo[b], first, hi[b]);
    c[4 + b] = _mm512_permutex2var_ps(lo[b], second, hi[b]);
  }
}

}  // namespace
}  // namespace fastconv::simd
