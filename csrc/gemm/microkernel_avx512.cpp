// AVX-512 micro-kernels: 32 zmm registers hold a 12 x 32 (float) or 12 x 16 (double) tile:
// 24 accumulators, 2 B vectors and 1 broadcast A value. The narrow 8-row tile serves M that
// are multiples of 8 (16, 32, 64 output channels) without padded rows. The 4 x 4 dot tile:
// 16 accumulators (two FMA ports of 4 cycles' latency need 8), 8 loads per 16 FMAs.
#include "core/arch.h"
#if FASTCONV_X86  // the whole file: AVX2 and AVX-512 are x86 only
#pragma GCC target("avx512f,avx2,fma")
#include "core/simd_avx512.h"
#include "gemm/microkernel.h"

namespace fastconv::gemm {

using simd::Avx512F32;
using simd::Avx512F64;

const KernelFamily<float>& avx512_kernels_f32() {
  static const KernelFamily<float> family{make_kernel_set<Avx512F32, 12, 2>(256, 4096),
                                          make_kernel_set<Avx512F32, 8, 2>(256, 4096),
                                          make_dot_set<Avx512F32, 4, 4>()};
  return family;
}
const KernelFamily<double>& avx512_kernels_f64() {
  static const KernelFamily<double> family{make_kernel_set<Avx512F64, 12, 2>(256, 2048),
                                           make_kernel_set<Avx512F64, 8, 2>(256, 2048),
                                           make_dot_set<Avx512F64, 4, 4>()};
  return family;
}

}  // namespace fastconv::gemm

#endif  // FASTCONV_X86
