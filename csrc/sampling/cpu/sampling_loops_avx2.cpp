// sampling_loops.h's loops compiled for AVX2 (256-bit vectors).
#include "core/arch.h"
#if FASTCONV_X86  // the whole file: x86 only
#pragma GCC target("avx2,fma")
// No a * b + c fused into one rounding: the baseline build (SSE2) has no FMA, and every ISA must
// give its bits (GCC contracts by default in C++).
#pragma GCC optimize("fp-contract=off")
#include "core/simd_avx2.h"
#include "sampling/cpu/sampling_loop_bodies.h"

namespace fastconv::sampling::cpu {

namespace {
struct Avx2 {
  template <class T>
  using Vec = std::conditional_t<std::is_same_v<T, float>, simd::Avx2F32, simd::Avx2F64>;
};
}  // namespace

template <>
SamplingLoops<float> sampling_loops_avx2<float>() { return loop_bodies::table<Avx2, float>(); }
template <>
SamplingLoops<double> sampling_loops_avx2<double>() { return loop_bodies::table<Avx2, double>(); }

}  // namespace fastconv::sampling::cpu

#endif  // FASTCONV_X86
