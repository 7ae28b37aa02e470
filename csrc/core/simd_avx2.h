// AVX2 vector types for the kernels written once over a vector type V (gemm/microkernel.h,
// conv/direct_avx2.cpp): float and double lanes of a 256-bit ymm register.
//
// Include only from a file compiled for AVX2 (`#pragma GCC target("avx2,fma")` before any
// include): the functions are defined in an unnamed namespace, so each such file keeps its own
// AVX2 copy and no baseline caller can be linked against it.
#pragma once
#include <immintrin.h>

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
  static Reg fma(Reg a, Reg b, Reg c) { return _mm256_fmadd_ps(a, b, c); }
  static Reg mul(Reg a, Reg b) { return _mm256_mul_ps(a, b); }
  static Reg add(Reg a, Reg b) { return _mm256_add_ps(a, b); }
  static Reg max(Reg a, Reg b) { return _mm256_max_ps(a, b); }
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
  static Reg fma(Reg a, Reg b, Reg c) { return _mm256_fmadd_pd(a, b, c); }
  static Reg mul(Reg a, Reg b) { return _mm256_mul_pd(a, b); }
  static Reg add(Reg a, Reg b) { return _mm256_add_pd(a, b); }
  static Reg max(Reg a, Reg b) { return _mm256_max_pd(a, b); }
};

}  // namespace
}  // namespace fastconv::simd
