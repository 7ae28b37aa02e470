// Quotient and remainder of non-negative indices, in 32 bits when both operands fit: a GPU has no
// 64-bit integer divider (nvcc emits a long software sequence), and an elementwise kernel that
// splits every flat index into (plane, row, column) would spend more time dividing than moving
// its bytes. PyTorch's CUDA kernels use 32-bit index math when they can for the same reason.
// The results are those of the 64-bit division, whichever path runs.
#pragma once
#include "common/c_headers.h"
#include "common/host_device.h"
#include "common/index.h"

namespace fastconv {

FASTCONV_HD inline bool fits_u32(index_t a, index_t b) { return ((a | b) >> 32) == 0; }

// a / b for a >= 0, b > 0.
FASTCONV_HD inline index_t index_div(index_t a, index_t b) {
  return fits_u32(a, b) ? static_cast<index_t>(static_cast<uint32_t>(a) / static_cast<uint32_t>(b)) : a / b;
}

// a % b for a >= 0, b > 0.
FASTCONV_HD inline index_t index_mod(index_t a, index_t b) {
  return fits_u32(a, b) ? static_cast<index_t>(static_cast<uint32_t>(a) % static_cast<uint32_t>(b)) : a % b;
}

// (plane, row, column) of a flat NCHW index over planes of rows x cols.
struct PlaneIndex {
  index_t plane, row, col;
};

FASTCONV_HD inline PlaneIndex split_index(index_t i, index_t rows, index_t cols) {
  const index_t row_of_all = index_div(i, cols);
  return {index_div(row_of_all, rows), index_mod(row_of_all, rows), index_mod(i, cols)};
}

}  // namespace fastconv
