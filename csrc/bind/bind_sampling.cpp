// fastconv._C's grid_sample, affine_grid and interpolate: arrays converted, then
// sampling/sampling.h's entry points without the GIL.
#include "bind/py_tensor.h"
#include "sampling/sampling.h"

namespace fastconv {

#define GRID_SAMPLE_ARGS py::arg("mode"), py::arg("padding_mode"), py::arg("align_corners")
#define INTERPOLATE_ARGS py::arg("mode"), py::arg("align_corners"), py::arg("scale_h"), py::arg("scale_w")

void bind_sampling(py::module_& m) {
  m.def("grid_sample_forward", [](py::array x, py::array grid, py::array out, int mode, int padding, bool align) {
    call_without_gil(sampling::grid_sample_forward, x, grid, out, mode, padding, align);
  }, py::arg("input"), py::arg("grid"), py::arg("out"), GRID_SAMPLE_ARGS);

  m.def("grid_sample_backward", [](py::array x, py::array grid, py::array grad_y, py::object grad_x,
                                   py::object grad_grid, int mode, int padding, bool align) {
    call_without_gil(sampling::grid_sample_backward, x, grid, grad_y, grad_x, grad_grid, mode, padding, align);
  }, py::arg("input"), py::arg("grid"), py::arg("grad_output"), py::arg("grad_input"), py::arg("grad_grid"),
     GRID_SAMPLE_ARGS);

  m.def("affine_grid_forward", [](py::array theta, py::array grid, bool align) {
    call_without_gil(sampling::affine_grid_forward, theta, grid, align);
  }, py::arg("theta"), py::arg("grid"), py::arg("align_corners"));

  m.def("affine_grid_backward", [](py::array grad_grid, py::array grad_theta, bool align) {
    call_without_gil(sampling::affine_grid_backward, grad_grid, grad_theta, align);
  }, py::arg("grad_grid"), py::arg("grad_theta"), py::arg("align_corners"));

  m.def("interpolate_forward", [](py::array x, py::array out, int mode, bool align, double sh, double sw) {
    call_without_gil(sampling::interpolate_forward, x, out, mode, align, sh, sw);
  }, py::arg("input"), py::arg("out"), INTERPOLATE_ARGS);

  m.def("interpolate_backward", [](py::array grad_y, py::array grad_x, int mode, bool align, double sh, double sw) {
    call_without_gil(sampling::interpolate_backward, grad_y, grad_x, mode, align, sh, sw);
  }, py::arg("grad_output"), py::arg("grad_input"), INTERPOLATE_ARGS);
}

}  // namespace fastconv
