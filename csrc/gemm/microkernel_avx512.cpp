// AVX-512 micro-kernels: 32 zmm registers hold a 12 x 32 (float) or 12 x 16 (double) tile:
// 24 accumulators, 2 B vectors and 1 broadcast A value. The narrow 8-row tile serves M that
// are multiples of 8 (16, 32, 64 output channels) without padded rows.
#include "core/arch.h"
#if FASTCONV_X86  // the whole file: AVX2 and AVX-512 are x86 only
#pragma GCC target("avx512f,avx2,fma")
#include <immintrin.h>

#include "gemm/microkernel.h"

namespace fastconv::gemm {
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
  static Reg fma(Reg a, Reg b, Reg c) { return _mm512_fmadd_ps(a, b, c); }
  static Reg mul(Reg a, Reg b) { return _mm512_mul_ps(a, b); }
  static Reg add(Reg a, Reg b) { return _mm512_add_ps(a, b); }
  static Reg max(Reg a, Reg b) { return _mm512_max_ps(a, b); }
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
  static Reg fma(Reg a, Reg b, Reg c) { return _mm512_fmadd_pd(a, b, c); }
  static Reg mul(Reg a, Reg b) { return _mm512_mul_pd(a, b); }
  static Reg add(Reg a, Reg b) { return _mm512_add_pd(a, b); }
  static Reg max(Reg a, Reg b) { return _mm512_max_pd(a, b); }
};

}  // namespace

const KernelFamily<float>& avx512_kernels_f32() {
  static const KernelFamily<float> family{make_kernel_set<Avx512F32, 12, 2>(256, 4096, 3072),
                                          make_kernel_set<Avx512F32, 8, 2>(256, 4096, 3072)};
  return family;
}
const KernelFamily<double>& avx512_kernels_f64() {
  static const KernelFamily<double> family{make_kernel_set<Avx512F64, 12, 2>(256, 2048, 2048),
                                           make_kernel_set<Avx512F64, 8, 2>(256, 2048, 2048)};
  return family;
}

}  // namespace fastconv::gemm

#endif  // FASTCONV_X86
