// batch_norm_loops.h's loops compiled for AVX-512 (512-bit vectors).
#include "core/arch.h"
#if FASTCONV_X86  // the whole file: x86 only
#pragma GCC target("avx512f,avx2,fma")
// No a * b + c fused into one rounding (GCC contracts by default in C++): the element-wise passes
// give the baseline build's bits on every ISA (the sums, in lanes of the ISA's width, add in
// another order).
#pragma GCC optimize("fp-contract=off")
#include "norm/cpu/batch_norm_loop_bodies.h"

namespace fastconv::norm::cpu {

namespace {
struct Avx512 {};
}  // namespace

template <>
BatchNormLoops<float> batch_norm_loops_avx512<float>() { return loop_bodies::table<Avx512, float>(); }
template <>
BatchNormLoops<double> batch_norm_loops_avx512<double>() { return loop_bodies::table<Avx512, double>(); }

}  // namespace fastconv::norm::cpu

#endif  // FASTCONV_X86
