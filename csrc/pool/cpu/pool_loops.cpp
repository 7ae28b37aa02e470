// pool_loops.h's baseline table and the choice among the ISAs' tables.
#include "pool/cpu/pool_loops.h"

#include "core/isa.h"
#include "pool/cpu/pool_loop_bodies.h"

namespace fastconv::pool::cpu {

namespace {
struct Baseline {
  static constexpr int kVectorBytes = 16;  // SSE2 on x86-64, NEON on aarch64
};

// The three tables, built once (the AVX ones are only read where vector_isa() can name them).
template <class T>
struct Tables {
  PoolLoops<T> baseline = pool_loops_baseline<T>();
#if FASTCONV_X86
  PoolLoops<T> avx2 = pool_loops_avx2<T>();
  PoolLoops<T> avx512 = pool_loops_avx512<T>();
#endif
};
}  // namespace

template <class T>
PoolLoops<T> pool_loops_baseline() {
  return loop_bodies::table<Baseline, T>();
}

template <class T>
const PoolLoops<T>& pool_loops() {
  static const Tables<T> tables;
#if FASTCONV_X86
  switch (vector_isa()) {
    case Isa::avx512: return tables.avx512;
    case Isa::avx2: return tables.avx2;
    case Isa::generic: break;
  }
#endif
  return tables.baseline;
}

template const PoolLoops<float>& pool_loops<float>();
template const PoolLoops<double>& pool_loops<double>();
template PoolLoops<float> pool_loops_baseline<float>();
template PoolLoops<double> pool_loops_baseline<double>();

}  // namespace fastconv::pool::cpu
