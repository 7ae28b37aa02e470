// pool_loops.h's loops compiled for AVX2 (256-bit vectors).
#include "core/arch.h"
#if FASTCONV_X86  // the whole file: x86 only
#pragma GCC target("avx2,fma")
#include "pool/cpu/pool_loop_bodies.h"

namespace fastconv::pool::cpu {

namespace {
struct Avx2 {
  static constexpr int kVectorBytes = 32;
};
}  // namespace

template <>
PoolLoops<float> pool_loops_avx2<float>() { return loop_bodies::table<Avx2, float>(); }
template <>
PoolLoops<double> pool_loops_avx2<double>() { return loop_bodies::table<Avx2, double>(); }

}  // namespace fastconv::pool::cpu

#endif  // FASTCONV_X86
