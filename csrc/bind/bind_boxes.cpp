// fastconv._C's box utilities: arrays converted, then boxes/boxes.h's entry points without the
// GIL.
#include <array>

#include "bind/py_tensor.h"
#include "boxes/boxes.h"

namespace fastconv {

void bind_boxes(py::module_& m) {
  m.def("box_iou", [](py::array boxes1, py::array boxes2, py::array out) {
    call_without_gil(boxes::box_iou, boxes1, boxes2, out);
  }, py::arg("boxes1"), py::arg("boxes2"), py::arg("out"));

  m.def("nms", [](py::array boxes, py::array scores, py::object idxs, py::array keep, double iou_threshold) {
    return call_without_gil(boxes::nms, boxes, scores, idxs, keep, iou_threshold);
  }, py::arg("boxes"), py::arg("scores"), py::arg("idxs"), py::arg("keep"), py::arg("iou_threshold"));

  m.def("encode_boxes", [](py::array reference, py::array proposals, py::array out, std::array<double, 4> weights) {
    call_without_gil([&](const TensorArg& r, const TensorArg& p, const TensorArg& o) {
      boxes::encode_boxes(r, p, o, weights.data());
    }, reference, proposals, out);
  }, py::arg("reference_boxes"), py::arg("proposals"), py::arg("out"), py::arg("weights"));

  m.def("decode_boxes", [](py::array deltas, py::array boxes, py::array out, std::array<double, 4> weights,
                           double clip) {
    call_without_gil([&](const TensorArg& d, const TensorArg& b, const TensorArg& o) {
      boxes::decode_boxes(d, b, o, weights.data(), clip);
    }, deltas, boxes, out);
  }, py::arg("rel_codes"), py::arg("boxes"), py::arg("out"), py::arg("weights"), py::arg("bbox_xform_clip"));

  m.def("grid_anchors", [](py::array sizes, py::array ratios, py::array out, std::int64_t H, std::int64_t W,
                           double stride_y, double stride_x) {
    call_without_gil(boxes::grid_anchors, sizes, ratios, out, H, W, stride_y, stride_x);
  }, py::arg("sizes"), py::arg("aspect_ratios"), py::arg("out"), py::arg("height"), py::arg("width"),
     py::arg("stride_y"), py::arg("stride_x"));

  m.def("match_boxes", [](py::array quality, py::array matches, double high, double low, bool allow_low_quality) {
    call_without_gil(boxes::match_boxes, quality, matches, high, low, allow_low_quality);
  }, py::arg("match_quality_matrix"), py::arg("matches"), py::arg("high_threshold"), py::arg("low_threshold"),
     py::arg("allow_low_quality_matches"));
}

}  // namespace fastconv
