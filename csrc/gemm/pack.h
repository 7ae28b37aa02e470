// Packing: copies a block of an operand into the order the micro-kernel reads it, zero-padding
// partial panels so that the kernel never needs an edge case.
//   A panel: kc steps of mr values  (dst[k * mr + r] = A(i0 + r, k0 + k))
//   B panel: kc steps of nr values  (dst[k * nr + c] = B(k0 + k, j0 + c))
// Any object with these two call shapes can feed the driver; conv/ uses that to gather
// image patches straight into a B panel.
#pragma once
#include <algorithm>
#include <cstring>

#include "core/view.h"
#include "gemm/kernels.h"

namespace fastconv::gemm {

template <class T>
struct PackMatrixA {
  MatrixView<const T> a;

  void operator()(index_t i0, index_t rows, index_t k0, index_t kc, int mr, T* dst) const {
    if (a.col_stride == 1) {  // rows of A are contiguous within each column group: walk runs
      for (index_t k = 0; k < kc;) {
        const index_t run = a.col_group ? std::min(kc - k, a.col_group - (k0 + k) % a.col_group) : kc - k;
        for (index_t r = 0; r < rows; ++r) {
          const T* src = &a.at(i0 + r, k0 + k);
          for (index_t q = 0; q < run; ++q) dst[(k + q) * mr + r] = src[q];
        }
        k += run;
      }
    } else {
      index_t offset[kMaxMR];
      for (index_t r = 0; r < rows; ++r) offset[r] = a.row_offset(i0 + r);
      for (index_t k = 0; k < kc; ++k) {
        const T* col = a.data + a.col_offset(k0 + k);
        for (index_t r = 0; r < rows; ++r) dst[k * mr + r] = col[offset[r]];
      }
    }
    if (rows < mr)
      for (index_t k = 0; k < kc; ++k) std::fill(dst + k * mr + rows, dst + (k + 1) * mr, T(0));
  }
};

template <class T>
struct PackMatrixB {
  MatrixView<const T> b;

  void operator()(index_t k0, index_t kc, index_t j0, index_t cols, int nr, T* dst) const {
    if (b.unit_stride_run(j0, cols)) {  // each row of the panel is one contiguous run
      const index_t first_col = b.col_offset(j0);
      for (index_t k = 0; k < kc; ++k) {  // inline loops: a call per 32-float row costs more than the copy
        const T* src = b.data + b.row_offset(k0 + k) + first_col;
        T* out = dst + k * nr;
        for (index_t c = 0; c < cols; ++c) out[c] = src[c];
        for (index_t c = cols; c < nr; ++c) out[c] = T(0);
      }
      return;
    }
    if (b.row_stride == 1 && b.regular_rows(k0, kc)) {  // column-major B (a transposed matrix)
      for (index_t c = 0; c < cols; ++c) {               // read each column contiguously
        const T* src = &b.at(k0, j0 + c);
        for (index_t k = 0; k < kc; ++k) dst[k * nr + c] = src[k];
      }
      for (index_t k = 0; k < kc; ++k)
        for (index_t c = cols; c < nr; ++c) dst[k * nr + c] = T(0);
      return;
    }
    index_t offset[kMaxNR];
    for (index_t c = 0; c < cols; ++c) offset[c] = b.col_offset(j0 + c);
    for (index_t k = 0; k < kc; ++k) {
      const T* row = b.data + b.row_offset(k0 + k);
      for (index_t c = 0; c < cols; ++c) dst[k * nr + c] = row[offset[c]];
      std::fill(dst + k * nr + cols, dst + (k + 1) * nr, T(0));
    }
  }
};

}  // namespace fastconv::gemm
