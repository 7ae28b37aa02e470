// fastconv._C's batch norm: arrays converted, then norm/norm.h's entry points without the GIL.
#include "bind/py_tensor.h"
#include "norm/norm.h"

namespace fastconv {

#define BATCH_NORM_ARGS py::arg("input"), py::arg("residual"), py::arg("weight"), py::arg("bias"), py::arg("running_mean"), py::arg("running_var"), py::arg("out")

void bind_norm(py::module_& m) {
  m.def("batch_norm_train_forward", [](py::array x, py::object z, py::object gamma, py::object beta,
                                       py::object running_mean, py::object running_var, py::array y,
                                       py::array save_mean, py::array save_invstd, double momentum, double eps,
                                       bool relu) {
    call_without_gil(norm::batch_norm_train_forward, x, z, gamma, beta, running_mean, running_var, y, save_mean,
                     save_invstd, momentum, eps, relu);
  }, BATCH_NORM_ARGS, py::arg("save_mean"), py::arg("save_invstd"), py::arg("momentum"), py::arg("eps"),
     py::arg("relu"));

  m.def("batch_norm_eval_forward", [](py::array x, py::object z, py::object gamma, py::object beta,
                                      py::array running_mean, py::array running_var, py::array y, double eps,
                                      bool relu) {
    call_without_gil(norm::batch_norm_eval_forward, x, z, gamma, beta, running_mean, running_var, y, eps, relu);
  }, BATCH_NORM_ARGS, py::arg("eps"), py::arg("relu"));

  m.def("batch_norm_backward", [](py::array grad_y, py::array x, py::object y, py::object gamma, py::array mean,
                                  py::array invstd, bool training, py::array grad_x, py::object grad_z,
                                  py::array grad_gamma, py::array grad_beta) {
    call_without_gil(norm::batch_norm_backward, grad_y, x, y, gamma, mean, invstd, training, grad_x, grad_z,
                     grad_gamma, grad_beta);
  }, py::arg("grad_output"), py::arg("input"), py::arg("output"), py::arg("weight"), py::arg("mean"),
     py::arg("invstd"), py::arg("training"), py::arg("grad_input"), py::arg("grad_residual"), py::arg("grad_weight"),
     py::arg("grad_bias"));
}

}  // namespace fastconv
