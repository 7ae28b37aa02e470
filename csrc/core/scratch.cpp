// kernel_scratch (core/scratch.h): thread_scratch behind a call, instantiated here, in a file
// compiled for the baseline ISA.
#include "core/scratch.h"

namespace fastconv {

template <class T>
T* kernel_scratch(index_t n, ScratchSlot slot) {
  return thread_scratch<T>(n, slot);
}

template float* kernel_scratch<float>(index_t, ScratchSlot);
template double* kernel_scratch<double>(index_t, ScratchSlot);

}  // namespace fastconv
