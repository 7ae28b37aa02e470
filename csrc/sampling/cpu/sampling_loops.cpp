// sampling_loops.h's baseline table and the choice among the ISAs' tables.
#include "sampling/cpu/sampling_loops.h"

#include "core/isa.h"
#include "sampling/cpu/sampling_loop_bodies.h"

namespace fastconv::sampling::cpu {

namespace {
struct Baseline {
  template <class T>
  using Vec = void;  // scalar loops
};
}  // namespace

template <class T>
SamplingLoops<T> sampling_loops_baseline() {
  return loop_bodies::table<Baseline, T>();
}

template <class T>
const SamplingLoops<T>& sampling_loops() {
#if FASTCONV_X86
  static const IsaTables<SamplingLoops<T>> tables(sampling_loops_baseline<T>(), sampling_loops_avx2<T>(),
                                                  sampling_loops_avx512<T>());
#else
  static const IsaTables<SamplingLoops<T>> tables(sampling_loops_baseline<T>());
#endif
  return tables.active();
}

template const SamplingLoops<float>& sampling_loops<float>();
template const SamplingLoops<double>& sampling_loops<double>();
template SamplingLoops<float> sampling_loops_baseline<float>();
template SamplingLoops<double> sampling_loops_baseline<double>();

}  // namespace fastconv::sampling::cpu
