// fastconv._C's pooling: arrays converted, then pool/pool.h's entry points without the GIL.
#include "bind/py_tensor.h"
#include "pool/pool.h"

namespace fastconv {

using Pair = std::array<index_t, 2>;

#define POOL_WINDOW_ARGS py::arg("kernel_size"), py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("ceil_mode")
#define AVG_POOL_ARGS py::arg("kernel_size"), py::arg("stride"), py::arg("padding"), py::arg("ceil_mode"), py::arg("count_include_pad"), py::arg("divisor_override")

void bind_pool(py::module_& m) {
  m.def("pool2d_output_shape", [](std::array<index_t, 4> input, Pair k, Pair st, Pair pad, Pair dl, bool ceil) {
    return pool::pool2d_output_shape(input, {k, st, pad, dl, ceil});
  }, py::arg("input_shape"), POOL_WINDOW_ARGS);

  m.def("max_pool2d_forward", [](py::array x, py::array y, py::object indices, Pair k, Pair st, Pair pad, Pair dl,
                                 bool ceil) {
    call_without_gil(pool::max_pool2d_forward, x, y, indices, pool::Pool2dWindow{k, st, pad, dl, ceil});
  }, py::arg("input"), py::arg("out"), py::arg("indices"), POOL_WINDOW_ARGS);

  m.def("max_pool2d_backward", [](py::array grad_y, py::array indices, py::array grad_x) {
    call_without_gil(pool::max_pool2d_backward, grad_y, indices, grad_x);
  }, py::arg("grad_output"), py::arg("indices"), py::arg("grad_input"));

  // avg_pool2d has no dilation argument: its windows are dense.
  m.def("avg_pool2d_forward", [](py::array x, py::array y, Pair k, Pair st, Pair pad, bool ceil,
                                 bool count_include_pad, index_t divisor) {
    call_without_gil(pool::avg_pool2d_forward, x, y, pool::Pool2dWindow{k, st, pad, {1, 1}, ceil}, count_include_pad,
                     divisor);
  }, py::arg("input"), py::arg("out"), AVG_POOL_ARGS);

  m.def("avg_pool2d_backward", [](py::array grad_y, py::array grad_x, Pair k, Pair st, Pair pad, bool ceil,
                                  bool count_include_pad, index_t divisor) {
    call_without_gil(pool::avg_pool2d_backward, grad_y, grad_x, pool::Pool2dWindow{k, st, pad, {1, 1}, ceil},
                     count_include_pad, divisor);
  }, py::arg("grad_output"), py::arg("grad_input"), AVG_POOL_ARGS);

  m.def("adaptive_avg_pool2d_forward", [](py::array x, py::array y) {
    call_without_gil(pool::adaptive_avg_pool2d_forward, x, y);
  }, py::arg("input"), py::arg("out"));

  m.def("adaptive_avg_pool2d_backward", [](py::array grad_y, py::array grad_x) {
    call_without_gil(pool::adaptive_avg_pool2d_backward, grad_y, grad_x);
  }, py::arg("grad_output"), py::arg("grad_input"));
}

}  // namespace fastconv
