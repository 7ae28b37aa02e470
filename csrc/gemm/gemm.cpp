#include "gemm/gemm.h"

#include <chrono>

#include "core/errors.h"
#include "core/isa.h"
#include "core/parallel.h"

namespace fastconv::gemm {

template <>
const KernelFamily<float>& active_family<float>() {
  switch (active_isa()) {
#if FASTCONV_X86
    case Isa::avx512: return avx512_kernels_f32();
    case Isa::avx2: return avx2_kernels_f32();
#endif
    default: return generic_kernels_f32();
  }
}

template <>
const KernelFamily<double>& active_family<double>() {
  switch (active_isa()) {
#if FASTCONV_X86
    case Isa::avx512: return avx512_kernels_f64();
    case Isa::avx2: return avx2_kernels_f64();
#endif
    default: return generic_kernels_f64();
  }
}

template <class T>
void gemm(const MatrixView<const T>& a, const MatrixView<const T>& b, const MatrixView<T>& c,
          const Epilogue<T>& ep) {
  check(a.rows == c.rows && b.cols == c.cols && a.cols == b.rows, "gemm: shapes (", a.rows, ", ",
        a.cols, ") @ (", b.rows, ", ", b.cols, ") -> (", c.rows, ", ", c.cols, ") do not match");
  const DotSet<T>& dot = active_family<T>().dot;
  if (dot_fits(dot, a, b)) return gemm_dot(dot, a, b, c, ep);
  gemm_packed(a.rows, b.cols, a.cols, PackMatrixA<T>{a}, PackMatrixB<T>{b}, c, ep);
}

void checked_gemm(const TensorArg& a, const TensorArg& b, const TensorArg& c, double alpha, double beta) {
  dispatch_float(a, "a", [&](auto tag) {
    using T = decltype(tag);
    auto av = matrix_arg<const T>(a, "a"), bv = matrix_arg<const T>(b, "b");
    auto cv = matrix_arg<T>(c, "c");
    gemm<T>(av, bv, cv, {T(alpha), T(beta)});
  });
}

double fma_peak_gflops(bool float64, index_t iterations) {
  auto fma = float64 ? active_kernels<double>().fma_loop : active_kernels<float>().fma_loop;
  double flops = 0;
  const auto start = std::chrono::steady_clock::now();
  parallel_for(0, num_threads(), 1, [&](index_t lo, index_t hi) {
    double done = 0;
    for (index_t t = lo; t < hi; ++t) done += fma(iterations);
#pragma omp atomic
    flops += done;
  });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return flops / seconds * 1e-9;
}

template void gemm<float>(const MatrixView<const float>&, const MatrixView<const float>&,
                          const MatrixView<float>&, const Epilogue<float>&);
template void gemm<double>(const MatrixView<const double>&, const MatrixView<const double>&,
                           const MatrixView<double>&, const Epilogue<double>&);

}  // namespace fastconv::gemm
