// The Python module fastconv._C: one bind_<family> per family (bind_<family>.cpp), each only
// converting arguments (py_tensor.h) and calling its family's checked dispatch. The C++
// exceptions the checks raise (core/errors.h) reach Python as its ValueError and TypeError, a failed
// allocation (std::bad_alloc, or OutOfMemory with its size) as MemoryError.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "core/errors.h"

namespace py = pybind11;

namespace fastconv {
void bind_runtime(py::module_& m);
void bind_gemm(py::module_& m);
void bind_conv(py::module_& m);
void bind_roi(py::module_& m);
void bind_sampling(py::module_& m);
void bind_conv_transpose(py::module_& m);
void bind_norm(py::module_& m);
void bind_pool(py::module_& m);
void bind_rnn(py::module_& m);
void bind_boxes(py::module_& m);
}  // namespace fastconv

PYBIND11_MODULE(_C, m) {
  py::register_exception<fastconv::TypeError>(m, "TypeError", PyExc_TypeError);
  py::register_exception<fastconv::ValueError>(m, "ValueError", PyExc_ValueError);
  py::register_exception<fastconv::OutOfMemory>(m, "MemoryError", PyExc_MemoryError);
  fastconv::bind_runtime(m);
  fastconv::bind_gemm(m);
  fastconv::bind_conv(m);
  fastconv::bind_roi(m);
  fastconv::bind_sampling(m);
  fastconv::bind_conv_transpose(m);
  fastconv::bind_norm(m);
  fastconv::bind_pool(m);
  fastconv::bind_rnn(m);
  fastconv::bind_boxes(m);
  // pybind11 loads numpy's C API when a binding first makes an array, checking numpy's version on
  // the way (0.4 ms, mostly compiling a regular expression): done here, at import, so that it
  // is not charged to the first convolution (a third of lenet_c1's first forward).
  py::array_t<float> first_array(0);
}
