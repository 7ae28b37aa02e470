// depthwise.h's kernels for AVX2 (depthwise_rows.h over core/simd_avx2.h's vectors).
#include "core/arch.h"
#if FASTCONV_X86  // the whole file: AVX2 is x86 only
#pragma GCC target("avx2,fma")
#include "conv/cpu/depthwise_rows.h"
#include "core/simd_avx2.h"

namespace fastconv::conv::cpu::depthwise {

template <>
void planes_avx2(const PlanePass<float>& pass, index_t lo, index_t hi) { planes<simd::Avx2F32>(pass, lo, hi); }
template <>
void planes_avx2(const PlanePass<double>& pass, index_t lo, index_t hi) { planes<simd::Avx2F64>(pass, lo, hi); }
template <>
void weights_avx2(const WeightPass<float>& pass, index_t lo, index_t hi) { weights<simd::Avx2F32>(pass, lo, hi); }
template <>
void weights_avx2(const WeightPass<double>& pass, index_t lo, index_t hi) { weights<simd::Avx2F64>(pass, lo, hi); }

}  // namespace fastconv::conv::cpu::depthwise

#endif  // FASTCONV_X86
