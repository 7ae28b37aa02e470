// pool_loops.h's loops compiled for AVX-512 (512-bit vectors).
#include "core/arch.h"
#if FASTCONV_X86  // the whole file: x86 only
#pragma GCC target("avx512f,avx2,fma")
#include "pool/cpu/pool_loop_bodies.h"

namespace fastconv::pool::cpu {

namespace {
struct Avx512 {
  static constexpr int kVectorBytes = 64;
};
}  // namespace

template <>
PoolLoops<float> pool_loops_avx512<float>() { return loop_bodies::table<Avx512, float>(); }
template <>
PoolLoops<double> pool_loops_avx512<double>() { return loop_bodies::table<Avx512, double>(); }

}  // namespace fastconv::pool::cpu

#endif  // FASTCONV_X86
