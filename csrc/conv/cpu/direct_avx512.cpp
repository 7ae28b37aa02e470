// The AVX-512 kernels of the direct convolution: direct_rows.h's row and weight-gradient kernels
// over core/simd_avx512.h.
#include "core/arch.h"
#if FASTCONV_X86  // the whole file: AVX-512 is x86 only
#pragma GCC target("avx512f,avx2,fma")
#include "conv/cpu/direct_rows.h"
#include "core/simd_avx512.h"

namespace fastconv::conv::cpu::direct {

template <>
void run_row_avx512<float>(const RowJob<float>& job) { run_rows<simd::Avx512F32>(job); }
template <>
void run_row_avx512<double>(const RowJob<double>& job) { run_rows<simd::Avx512F64>(job); }
template <>
void run_weight_avx512<float>(const WeightJob<float>& job) { run_weight<simd::Avx512F32>(job); }
template <>
void run_weight_avx512<double>(const WeightJob<double>& job) { run_weight<simd::Avx512F64>(job); }

}  // namespace fastconv::conv::cpu::direct

#endif  // FASTCONV_X86
