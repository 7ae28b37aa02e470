// The loop of every CUDA kernel that gives one thread per element: fastconv/cuda/loader.py
// launches at most a capped grid, so a thread takes elements i, i + gridDim.x * blockDim.x, ...
// Indices are int64: a tensor may hold more than 2^31 elements.
#pragma once
#include "common/index.h"

#define FASTCONV_GRID_STRIDE(i, count)                                                                   \
  for (::fastconv::index_t i = blockIdx.x * static_cast<::fastconv::index_t>(blockDim.x) + threadIdx.x; \
       i < (count); i += static_cast<::fastconv::index_t>(gridDim.x) * blockDim.x)
