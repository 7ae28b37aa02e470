// Public GEMM entry: C = alpha * A B + beta * C (+ row bias, ReLU) for any strided or
// column-grouped views (core/view.h). Transposes are views with swapped strides.
#pragma once
#include "core/view.h"
#include "gemm/driver.h"
#include "gemm/pack.h"

namespace fastconv::gemm {

template <class T>
void gemm(const MatrixView<const T>& a, const MatrixView<const T>& b, const MatrixView<T>& c,
          const Epilogue<T>& ep = {});

}  // namespace fastconv::gemm
