// The C headers of the common/ code (<stdint.h>, <math.h>), or what NVRTC has in their place:
// run-time compilation has no C library headers, but its math functions are built in and the
// fixed-width integers are a few typedefs (those of glibc on 64-bit Linux, so that an int64_t
// kernel argument has the layout numpy's int64 has), INFINITY as CUDA's math_constants.h spells
// it, and the INT32 limits (bilinear.h's safe_int_range).
#pragma once

#if defined(__CUDACC_RTC__)
typedef signed char int8_t;
typedef int int32_t;
typedef long int64_t;
typedef unsigned char uint8_t;
typedef unsigned int uint32_t;
typedef unsigned long uint64_t;
#define INFINITY __int_as_float(0x7f800000U)
#define INT32_MAX 2147483647
#define INT32_MIN (-INT32_MAX - 1)
#else
#include <math.h>
#include <stdint.h>
#endif
