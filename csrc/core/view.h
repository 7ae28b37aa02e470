// Plain views of arrays that the kernels index. They are built, and checked, once at each
// family's checked dispatch (core/tensor_arg.h); kernels trust them.
#pragma once
#include <array>

#include "common/index.h"

namespace fastconv {

// An N-d array: shape and strides in elements.
template <class T, int N>
struct Tensor {
  T* data = nullptr;
  std::array<index_t, N> shape{};
  std::array<index_t, N> strides{};

  index_t size(int d) const { return shape[d]; }
  index_t numel() const {
    index_t n = 1;
    for (index_t s : shape) n *= s;
    return n;
  }
  bool is_contiguous() const {
    if (numel() == 0) return true;  // nothing is read or written; numpy leaves strides arbitrary
    index_t expected = 1;
    for (int d = N - 1; d >= 0; --d) {
      if (shape[d] != 1 && strides[d] != expected) return false;
      expected *= shape[d];
    }
    return true;
  }
};

// A 2-d matrix whose row and column indices may each be split into groups: column j lives at
// (j / col_group) * col_group_stride + (j % col_group) * col_stride, and rows likewise.
// Grouped indices let a GEMM read or write an NCHW batch as one [channels, images*pixels]
// matrix (or its transpose) without a copy (conv/im2col.cpp).
template <class T>
struct MatrixView {
  T* data = nullptr;
  index_t rows = 0, cols = 0;
  index_t row_stride = 0, col_stride = 1;
  index_t row_group = 0, row_group_stride = 0;  // row_group 0: rows not grouped
  index_t col_group = 0, col_group_stride = 0;  // col_group 0: columns not grouped

  static index_t split_offset(index_t i, index_t stride, index_t group, index_t group_stride) {
    return group == 0 ? i * stride : (i / group) * group_stride + (i % group) * stride;
  }
  index_t row_offset(index_t i) const { return split_offset(i, row_stride, row_group, row_group_stride); }
  index_t col_offset(index_t j) const { return split_offset(j, col_stride, col_group, col_group_stride); }
  T& at(index_t i, index_t j) const { return data[row_offset(i) + col_offset(j)]; }

  // True when columns [j, j + n) are unit-stride in memory.
  bool unit_stride_run(index_t j, index_t n) const {
    if (col_stride != 1) return false;
    return col_group == 0 || j / col_group == (j + n - 1) / col_group;
  }
  // How many of columns [j, j + n) from j on are one unit-stride run: up to the next group
  // boundary, or 1 when columns are strided.
  index_t unit_run(index_t j, index_t n) const {
    if (col_stride != 1) return 1;
    if (col_group == 0) return n;
    const index_t to_boundary = col_group - j % col_group;
    return to_boundary < n ? to_boundary : n;
  }
  // True when rows [i, i + n) are equally spaced by row_stride.
  bool regular_rows(index_t i, index_t n) const {
    return row_group == 0 || i / row_group == (i + n - 1) / row_group;
  }
  MatrixView transposed() const {
    return {data, cols, rows, col_stride, row_stride, col_group, col_group_stride, row_group, row_group_stride};
  }
  MatrixView row_block(index_t i0, index_t n) const {
    MatrixView v = *this;
    v.data += row_offset(i0);
    v.rows = n;
    return v;
  }
};

template <class T>
MatrixView<const T> as_const(const MatrixView<T>& v) {
  return {v.data, v.rows, v.cols, v.row_stride, v.col_stride,
          v.row_group, v.row_group_stride, v.col_group, v.col_group_stride};
}

template <class T>
MatrixView<T> dense_matrix(T* data, index_t rows, index_t cols) {
  return {data, rows, cols, cols, 1, 0, 0, 0, 0};
}

}  // namespace fastconv
