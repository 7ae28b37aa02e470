// AVX-512 vector types for the kernels written once over a vector type V (gemm/microkernel.h,
// conv/cpu/depthwise_rows.h): float and double lanes of a 512-bit zmm register, with the same
// members as simd_avx2.h's.
//
// Include only from a file compiled for AVX-512 (`#pragma GCC target("avx512f,avx2,fma")` before
// any include): the functions are defined in an unnamed namespace, so each such file keeps its
// own copy and no baseline caller can be linked against it.
#pragma once
#include <immintrin.h>

namespace fastconv::simd {
namespace {

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
  static Reg fma(Reg a, Reg b, Reg c) { return _mm512_fmadd_ps(a, b, c); }
  static Reg mul(Reg a, Reg b) { return _mm512_mul_ps(a, b); }
  static Reg add(Reg a, Reg b) { return _mm512_add_ps(a, b); }
  static Reg max(Reg a, Reg b) { return _mm512_max_ps(a, b); }
  static T sum(Reg v) { return _mm512_reduce_add_ps(v); }
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
  static Reg fma(Reg a, Reg b, Reg c) { return _mm512_fmadd_pd(a, b, c); }
  static Reg mul(Reg a, Reg b) { return _mm512_mul_pd(a, b); }
  static Reg add(Reg a, Reg b) { return _mm512_add_pd(a, b); }
  static Reg max(Reg a, Reg b) { return _mm512_max_pd(a, b); }
  static T sum(Reg v) { return _mm512_reduce_add_pd(v); }
};

}  // namespace
}  // namespace fastconv::simd
