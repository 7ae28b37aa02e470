// FASTCONV_HD marks a function that both the host compiler and nvcc compile: __host__
// __device__ under CUDA, nothing otherwise. The headers of common/ use only it, plain structs,
// <stdint.h> and <math.h>: no intrinsics, no standard containers, strings or exceptions, so
// that a kernel of any device includes them.
#pragma once

#if defined(__CUDACC__)
#define FASTCONV_HD __host__ __device__
#else
#define FASTCONV_HD
#endif
