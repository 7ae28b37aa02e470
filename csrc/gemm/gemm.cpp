#include "gemm/gemm.h"

#include "core/errors.h"
#include "core/isa.h"

namespace fastconv::gemm {

template <>
const KernelFamily<float>& active_family<float>() {
  switch (active_isa()) {
    case Isa::avx512: return avx512_kernels_f32();
    case Isa::avx2: return avx2_kernels_f32();
    default: return generic_kernels_f32();
  }
}

template <>
const KernelFamily<double>& active_family<double>() {
  switch (active_isa()) {
    case Isa::avx512: return avx512_kernels_f64();
    case Isa::avx2: return avx2_kernels_f64();
    default: return generic_kernels_f64();
  }
}

template <class T>
void gemm(const MatrixView<const T>& a, const MatrixView<const T>& b, const MatrixView<T>& c,
          const Epilogue<T>& ep) {
  check(a.rows == c.rows && b.cols == c.cols && a.cols == b.rows, "gemm: shapes (", a.rows, ", ",
        a.cols, ") @ (", b.rows, ", ", b.cols, ") -> (", c.rows, ", ", c.cols, ") do not match");
  gemm_packed(a.rows, b.cols, a.cols, PackMatrixA<T>{a}, PackMatrixB<T>{b}, c, ep);
}

template void gemm<float>(const MatrixView<const float>&, const MatrixView<const float>&,
                          const MatrixView<float>&, const Epilogue<float>&);
template void gemm<double>(const MatrixView<const double>&, const MatrixView<const double>&,
                           const MatrixView<double>&, const Epilogue<double>&);

}  // namespace fastconv::gemm
