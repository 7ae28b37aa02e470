// fastconv._C's conv2d: arrays converted, then conv/conv.h's entry points, without the GIL where
// a kernel runs. Python's None becomes an absent argument, and back.
#include "bind/py_tensor.h"
#include "conv/conv.h"

namespace fastconv {

using Pair = std::array<index_t, 2>;
using Shape4 = std::array<index_t, 4>;

#define CONV_PARAMS_ARGS py::arg("stride"), py::arg("pad_begin"), py::arg("pad_end"), py::arg("dilation"), py::arg("groups")

void bind_conv(py::module_& m) {
  m.def("conv2d_output_shape", [](Shape4 input, Shape4 weight, Pair st, Pair pb, Pair pe, Pair dl, index_t g) {
    return conv::conv2d_output_shape(input, weight, {st, pb, pe, dl, g});
  }, py::arg("input_shape"), py::arg("weight_shape"), CONV_PARAMS_ARGS);

  m.def("conv2d_algorithms", &conv::algorithm_names);

  m.def("conv2d_unsupported_reason", [](const std::string& algo, Shape4 input, Shape4 weight, Pair st, Pair pb,
                                        Pair pe, Pair dl, index_t g) -> py::object {
    const char* why = conv::conv2d_unsupported_reason(algo, input, weight, {st, pb, pe, dl, g});
    return why ? py::str(why) : py::object(py::none());
  }, py::arg("algo"), py::arg("input_shape"), py::arg("weight_shape"), CONV_PARAMS_ARGS);

  // The algorithm whose kernel runs `algo`'s gradient ("input" or "weight") of this shape.
  m.def("conv2d_gradient_kernel", [](const std::string& algo, const std::string& direction, Shape4 input,
                                     Shape4 weight, Pair st, Pair pb, Pair pe, Pair dl, index_t g) {
    return conv::conv2d_gradient_kernel(algo, direction, input, weight, {st, pb, pe, dl, g});
  }, py::arg("algo"), py::arg("direction"), py::arg("input_shape"), py::arg("weight_shape"), CONV_PARAMS_ARGS);

  // None where the call's transform cannot be reused (conv/conv.h).
  m.def("conv2d_weight_transform_tile", [](const std::string& algo, Shape4 input, Shape4 weight, Pair st, Pair pb,
                                           Pair pe, Pair dl, index_t g, const std::string& use) -> py::object {
    const auto tile = conv::conv2d_weight_transform_tile(algo, input, weight, {st, pb, pe, dl, g}, use);
    return tile ? py::object(py::int_(*tile)) : py::object(py::none());
  }, py::arg("algo"), py::arg("input_shape"), py::arg("weight_shape"), CONV_PARAMS_ARGS, py::arg("use"));

  m.def("conv2d_transformed_weight_size", &conv::conv2d_transformed_weight_size, py::arg("algo"),
        py::arg("weight_shape"), py::arg("groups"), py::arg("use"), py::arg("tile") = 0);

  m.def("conv2d_transform_weight", [](py::array w, py::array out, index_t g, const std::string& algo,
                                      const std::string& use, index_t tile) {
    call_without_gil(conv::conv2d_transform_weight, w, out, g, algo, use, tile);
  }, py::arg("weight"), py::arg("out"), py::arg("groups"), py::arg("algo"), py::arg("use"), py::arg("tile") = 0);

  m.def("same_bytes", [](py::array a, py::array b) {
    return call_without_gil(conv::same_bytes, a, b);
  }, py::arg("a"), py::arg("b"));

  m.def("conv2d_forward", [](py::array x, py::array w, py::object bias, py::array y, Pair st, Pair pb, Pair pe,
                             Pair dl, index_t g, const std::string& algo, bool relu, py::object transformed,
                             py::object residual, index_t pixel_shuffle) {
    call_without_gil(conv::conv2d_forward, x, w, bias, y, conv::Conv2dParams{st, pb, pe, dl, g}, algo, relu,
                     transformed, residual, pixel_shuffle);
  }, py::arg("input"), py::arg("weight"), py::arg("bias"), py::arg("out"), CONV_PARAMS_ARGS,
     py::arg("algo") = "im2col", py::arg("relu") = false, py::arg("transformed") = py::none(),
     py::arg("residual") = py::none(), py::arg("pixel_shuffle") = 1);

  m.def("conv2d_backward_input", [](py::array grad_y, py::array w, py::array grad_x, Pair st, Pair pb, Pair pe,
                                    Pair dl, index_t g, const std::string& algo, py::object transformed,
                                    index_t pixel_shuffle) {
    call_without_gil(conv::conv2d_backward_input, grad_y, w, grad_x, conv::Conv2dParams{st, pb, pe, dl, g}, algo,
                     transformed, pixel_shuffle);
  }, py::arg("grad_output"), py::arg("weight"), py::arg("grad_input"), CONV_PARAMS_ARGS, py::arg("algo") = "im2col",
     py::arg("transformed") = py::none(), py::arg("pixel_shuffle") = 1);

  m.def("conv2d_backward_weight", [](py::array x, py::array grad_y, py::array grad_w, py::object grad_b, Pair st,
                                     Pair pb, Pair pe, Pair dl, index_t g, const std::string& algo) {
    call_without_gil(conv::conv2d_backward_weight, x, grad_y, grad_w, grad_b, conv::Conv2dParams{st, pb, pe, dl, g},
                     algo);
  }, py::arg("input"), py::arg("grad_output"), py::arg("grad_weight"), py::arg("grad_bias"), CONV_PARAMS_ARGS,
     py::arg("algo") = "im2col");

  m.def("conv2d_backward", [](py::array x, py::array w, py::array grad_y, py::array grad_x, py::array grad_w,
                              py::object grad_b, Pair st, Pair pb, Pair pe, Pair dl, index_t g, const std::string& algo) {
    call_without_gil(conv::conv2d_backward, x, w, grad_y, grad_x, grad_w, grad_b,
                     conv::Conv2dParams{st, pb, pe, dl, g}, algo);
  }, py::arg("input"), py::arg("weight"), py::arg("grad_output"), py::arg("grad_input"), py::arg("grad_weight"),
     py::arg("grad_bias"), CONV_PARAMS_ARGS, py::arg("algo") = "im2col");

  // The Winograd transform codelets, for tests: tiles (count, n, n) -> (count, n', n').
  m.def("winograd_codelet", [](const std::string& which, int tile, py::array tiles) {
    const auto shape = conv::winograd_codelet_shape(which, tile, to_tensor_arg(tiles));
    py::array out(tiles.dtype(), std::vector<py::ssize_t>(shape.begin(), shape.end()));
    call_without_gil(conv::winograd_codelet, which, tile, tiles, out);
    return out;
  }, py::arg("which"), py::arg("tile"), py::arg("tiles"));
}

}  // namespace fastconv
