// AVX2 micro-kernels: 16 ymm registers hold a 6 x 16 (float) or 6 x 8 (double) tile:
// 12 accumulators, 2 B vectors and 1 broadcast A value. The 3 x 4 dot tile: 12 accumulators
// (Zen 3's two FMA ports of 5 cycles' latency need 10), 3 A vectors and 1 B vector.
#include "core/arch.h"
#if FASTCONV_X86  // the whole file: AVX2 and AVX-512 are x86 only
#pragma GCC target("avx2,fma")
#include "core/simd_avx2.h"
#include "gemm/microkernel.h"

namespace fastconv::gemm {

using simd::Avx2F32;
using simd::Avx2F64;

const KernelFamily<float>& avx2_kernels_f32() {
  static const auto set = make_kernel_set<Avx2F32, 6, 2>(384, 4096);
  static const KernelFamily<float> family{set, set, make_dot_set<Avx2F32, 3, 4>()};
  return family;
}
const KernelFamily<double>& avx2_kernels_f64() {
  static const auto set = make_kernel_set<Avx2F64, 6, 2>(256, 2048);
  static const KernelFamily<double> family{set, set, make_dot_set<Avx2F64, 3, 4>()};
  return family;
}

}  // namespace fastconv::gemm

#endif  // FASTCONV_X86
