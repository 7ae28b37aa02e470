// pool_loops.h's baseline table and the choice among the ISAs' tables.
#include "pool/cpu/pool_loops.h"

#include "core/isa.h"
#include "pool/cpu/pool_loop_bodies.h"

namespace fastconv::pool::cpu {

namespace {
struct Baseline {
  static constexpr int kVectorBytes = 16;  // SSE2 on x86-64, NEON on aarch64
};
}  // namespace

template <class T>
PoolLoops<T> pool_loops_baseline() {
  return loop_bodies::table<Baseline, T>();
}

template <class T>
const PoolLoops<T>& pool_loops() {
#if FASTCONV_X86
  static const IsaTables<PoolLoops<T>> tables(pool_loops_baseline<T>(), pool_loops_avx2<T>(),
                                              pool_loops_avx512<T>());
#else
  static const IsaTables<PoolLoops<T>> tables(pool_loops_baseline<T>());
#endif
  return tables.active();
}

template const PoolLoops<float>& pool_loops<float>();
template const PoolLoops<double>& pool_loops<double>();
template PoolLoops<float> pool_loops_baseline<float>();
template PoolLoops<double> pool_loops_baseline<double>();

}  // namespace fastconv::pool::cpu
