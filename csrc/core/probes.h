// What the benchmark measures about the machine besides the FMA peak (gemm/gemm.h): a copy's
// bandwidth on every thread, and the scratch memory (core/scratch.h) an algorithm holds:
// release it on every thread, run the kernel once, read what it allocated.
#pragma once
#include "core/tensor_arg.h"

namespace fastconv {

// dst = src, bytes split across the threads; both C-contiguous and of equal size.
void parallel_copy(const TensorArg& src, const TensorArg& dst);

index_t scratch_bytes();   // held by every thread's buffers together
void release_scratch();    // on the calling thread and every pool thread

}  // namespace fastconv
