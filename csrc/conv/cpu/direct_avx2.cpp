// The AVX2 kernels of the direct convolution (direct.h): direct_rows.h's row and weight-gradient
// kernels over core/simd_avx2.h. Only raw loops and intrinsics here: anything inline shared
// with other files (STL included) would be compiled for AVX2 too, and the linker may keep that
// copy for the baseline callers.
#include "core/arch.h"
#if FASTCONV_X86  // the whole file: AVX2 and AVX-512 are x86 only
#pragma GCC target("avx2,fma")
#include "conv/cpu/direct.h"
#include "conv/cpu/direct_rows.h"
#include "core/simd_avx2.h"

namespace fastconv::conv::cpu::direct {

template <>
void run_row_avx2<float>(const RowJob<float>& job) { run_rows<simd::Avx2F32>(job); }
template <>
void run_row_avx2<double>(const RowJob<double>& job) { run_rows<simd::Avx2F64>(job); }
template <>
void run_weight_avx2<float>(const WeightJob<float>& job) { run_weight<simd::Avx2F32>(job); }
template <>
void run_weight_avx2<double>(const WeightJob<double>& job) { run_weight<simd::Avx2F64>(job); }

}  // namespace fastconv::conv::cpu::direct

#endif  // FASTCONV_X86
