// Public GEMM entry: C = alpha * A B + beta * C (+ row bias, residual, ReLU) for any strided or
// column-grouped views (core/view.h). Transposes are views with swapped strides.
#pragma once
#include "core/tensor_arg.h"
#include "core/view.h"
#include "gemm/driver.h"
#include "gemm/pack.h"

namespace fastconv::gemm {

template <class T>
void gemm(const MatrixView<const T>& a, const MatrixView<const T>& b, const MatrixView<T>& c,
          const Epilogue<T>& ep = {});

// fastconv._C's gemm: c = alpha * a @ b + beta * c for float32/float64 matrices of any strides,
// each array checked first.
void checked_gemm(const TensorArg& a, const TensorArg& b, const TensorArg& c, double alpha, double beta);

// The micro-kernels' FMA peak in GFLOP/s on every thread (the benchmark's roofline): each thread
// runs the active ISA's fma_loop for `iterations`.
double fma_peak_gflops(bool float64, index_t iterations);

}  // namespace fastconv::gemm
