// fastconv._C's gemm: arrays converted, then gemm/gemm.h's checked entry without the GIL.
#include "bind/py_tensor.h"
#include "gemm/gemm.h"

namespace fastconv {

void bind_gemm(py::module_& m) {
  m.def("gemm", [](py::array a, py::array b, py::array c, double alpha, double beta) {
    call_without_gil(gemm::checked_gemm, a, b, c, alpha, beta);
  }, py::arg("a"), py::arg("b"), py::arg("c"), py::arg("alpha") = 1.0, py::arg("beta") = 0.0,
     "c = alpha * a @ b + beta * c for float32/float64 matrices of any strides.");
}

}  // namespace fastconv
