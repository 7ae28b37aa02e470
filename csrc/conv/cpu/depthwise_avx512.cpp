// depthwise.h's kernels for AVX-512 (depthwise_rows.h over core/simd_avx512.h's vectors).
#include "core/arch.h"
#if FASTCONV_X86  // the whole file: AVX-512 is x86 only
#pragma GCC target("avx512f,avx2,fma")
#include "conv/cpu/depthwise_rows.h"
#include "core/simd_avx512.h"

namespace fastconv::conv::cpu::depthwise {

template <>
void planes_avx512(const PlanePass<float>& pass, index_t lo, index_t hi) { planes<simd::Avx512F32>(pass, lo, hi); }
template <>
void planes_avx512(const PlanePass<double>& pass, index_t lo, index_t hi) { planes<simd::Avx512F64>(pass, lo, hi); }
template <>
void weights_avx512(const WeightPass<float>& pass, index_t lo, index_t hi) { weights<simd::Avx512F32>(pass, lo, hi); }
template <>
void weights_avx512(const WeightPass<double>& pass, index_t lo, index_t hi) { weights<simd::Avx512F64>(pass, lo, hi); }

}  // namespace fastconv::conv::cpu::depthwise

#endif  // FASTCONV_X86
