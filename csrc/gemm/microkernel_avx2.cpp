// AVX2 micro-kernels: 16 ymm registers hold a 6 x 16 (float) or 6 x 8 (double) tile:
// 12 accumulators, 2 B vectors and 1 broadcast A value.
#pragma GCC target("avx2,fma")
#include <immintrin.h>

#include "gemm/microkernel.h"

namespace fastconv::gemm {
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

const KernelFamily<float>& avx2_kernels_f32() {
  static const auto set = make_kernel_set<Avx2F32, 6, 2>(256, 512, 2048);
  static const KernelFamily<float> family{set, set};
  return family;
}
const KernelFamily<double>& avx2_kernels_f64() {
  static const auto set = make_kernel_set<Avx2F64, 6, 2>(256, 256, 2048);
  static const KernelFamily<double> family{set, set};
  return family;
}

}  // namespace fastconv::gemm
