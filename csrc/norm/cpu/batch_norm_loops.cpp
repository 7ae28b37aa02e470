// batch_norm_loops.h's baseline table and the choice among the ISAs' tables.
#include "norm/cpu/batch_norm_loops.h"

#include "core/isa.h"
#include "norm/cpu/batch_norm_loop_bodies.h"

namespace fastconv::norm::cpu {

namespace {
struct Baseline {};

// The three tables, built once (the AVX ones are only read where vector_isa() can name them).
template <class T>
struct Tables {
  BatchNormLoops<T> baseline = batch_norm_loops_baseline<T>();
#if FASTCONV_X86
  BatchNormLoops<T> avx2 = batch_norm_loops_avx2<T>();
  BatchNormLoops<T> avx512 = batch_norm_loops_avx512<T>();
#endif
};
}  // namespace

template <class T>
BatchNormLoops<T> batch_norm_loops_baseline() {
  return loop_bodies::table<Baseline, T>();
}

template <class T>
const BatchNormLoops<T>& batch_norm_loops() {
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

template const BatchNormLoops<float>& batch_norm_loops<float>();
template const BatchNormLoops<double>& batch_norm_loops<double>();
template BatchNormLoops<float> batch_norm_loops_baseline<float>();
template BatchNormLoops<double> batch_norm_loops_baseline<double>();

}  // namespace fastconv::norm::cpu
