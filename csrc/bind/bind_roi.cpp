// fastconv._C's roi_align and roi_pool: arrays converted, then roi/roi.h's entry points without
// the GIL.
#include "bind/py_tensor.h"
#include "roi/roi.h"

namespace fastconv {

#define ROI_ALIGN_ARGS py::arg("spatial_scale"), py::arg("sampling_ratio"), py::arg("aligned")

void bind_roi(py::module_& m) {
  m.def("roi_align_forward", [](py::array x, py::array boxes, py::array out, double scale, index_t ratio, bool aligned) {
    call_without_gil(roi::roi_align_forward, x, boxes, out, roi::RoiAlignParams{scale, ratio, aligned});
  }, py::arg("input"), py::arg("boxes"), py::arg("out"), ROI_ALIGN_ARGS);

  m.def("roi_align_backward", [](py::array grad_y, py::array boxes, py::array grad_x, double scale, index_t ratio,
                                 bool aligned) {
    call_without_gil(roi::roi_align_backward, grad_y, boxes, grad_x, roi::RoiAlignParams{scale, ratio, aligned});
  }, py::arg("grad_output"), py::arg("boxes"), py::arg("grad_input"), ROI_ALIGN_ARGS);

  m.def("roi_pool_forward", [](py::array x, py::array boxes, py::array out, py::array argmax, double scale) {
    call_without_gil(roi::roi_pool_forward, x, boxes, out, argmax, scale);
  }, py::arg("input"), py::arg("boxes"), py::arg("out"), py::arg("argmax"), py::arg("spatial_scale"));

  m.def("roi_pool_backward", [](py::array grad_y, py::array argmax, py::array grad_x) {
    call_without_gil(roi::roi_pool_backward, grad_y, argmax, grad_x);
  }, py::arg("grad_output"), py::arg("argmax"), py::arg("grad_input"));
}

}  // namespace fastconv
