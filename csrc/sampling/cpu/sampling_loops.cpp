// sampling_loops.h's baseline table and the choice among the ISAs' tables.
#include "sampling/cpu/sampling_loops.h"

#include "core/isa.h"
#include "sampling/cpu/sampling_loop_bodies.h"

namespace fastconv::sampling::cpu {

namespace {
struct Baseline {};

// The three tables, built once (the AVX ones are only read where vector_isa() can name them).
template <class T>
struct Tables {
  SamplingLoops<T> baseline = sampling_loops_baseline<T>();
#if FASTCONV_X86
  SamplingLoops<T> avx2 = sampling_loops_avx2<T>();
  SamplingLoops<T> avx512 = sampling_loops_avx512<T>();
#endif
};
}  // namespace

template <class T>
SamplingLoops<T> sampling_loops_baseline() {
  return loop_bodies::table<Baseline, T>();
}

template <class T>
const SamplingLoops<T>& sampling_loops() {
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

template const SamplingLoops<float>& sampling_loops<float>();
template const SamplingLoops<double>& sampling_loops<double>();
template SamplingLoops<float> sampling_loops_baseline<float>();
template SamplingLoops<double> sampling_loops_baseline<double>();

}  // namespace fastconv::sampling::cpu
