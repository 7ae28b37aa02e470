// batch_norm_loops.h's baseline table and the choice among the ISAs' tables.
#include "norm/cpu/batch_norm_loops.h"

#include "core/isa.h"
#include "norm/cpu/batch_norm_loop_bodies.h"

namespace fastconv::norm::cpu {

namespace {
struct Baseline {};
}  // namespace

template <class T>
BatchNormLoops<T> batch_norm_loops_baseline() {
  return loop_bodies::table<Baseline, T>();
}

template <class T>
const BatchNormLoops<T>& batch_norm_loops() {
#if FASTCONV_X86
  static const IsaTables<BatchNormLoops<T>> tables(batch_norm_loops_baseline<T>(), batch_norm_loops_avx2<T>(),
                                                   batch_norm_loops_avx512<T>());
#else
  static const IsaTables<BatchNormLoops<T>> tables(batch_norm_loops_baseline<T>());
#endif
  return tables.active();
}

template const BatchNormLoops<float>& batch_norm_loops<float>();
template const BatchNormLoops<double>& batch_norm_loops<double>();
template BatchNormLoops<float> batch_norm_loops_baseline<float>();
template BatchNormLoops<double> batch_norm_loops_baseline<double>();

}  // namespace fastconv::norm::cpu
