// fastconv._C's conv_transpose2d: arrays converted, then conv_transpose/conv_transpose.h's entry
// points without the GIL.
#include "bind/py_tensor.h"
#include "conv_transpose/conv_transpose.h"

namespace fastconv {

using Pair = std::array<index_t, 2>;

#define CONV_TRANSPOSE_ARGS py::arg("stride"), py::arg("padding"), py::arg("output_padding"), py::arg("dilation"), py::arg("groups")

void bind_conv_transpose(py::module_& m) {
  m.def("conv_transpose2d_output_shape", [](std::array<index_t, 4> input, std::array<index_t, 4> weight,
                                            Pair st, Pair pad, Pair op, Pair dl, index_t g) {
    return conv_transpose::conv_transpose2d_output_shape(input, weight, {st, pad, op, dl, g});
  }, py::arg("input_shape"), py::arg("weight_shape"), CONV_TRANSPOSE_ARGS);

  // None when `algo` can run the shape, else why not.
  m.def("conv_transpose2d_unsupported_reason", [](const std::string& algo, std::array<index_t, 4> input,
                                                  std::array<index_t, 4> weight, Pair st, Pair pad, Pair op, Pair dl,
                                                  index_t g) -> py::object {
    const char* why = conv_transpose::conv_transpose2d_unsupported_reason(algo, input, weight, {st, pad, op, dl, g});
    return why ? py::object(py::str(why)) : py::object(py::none());
  }, py::arg("algo"), py::arg("input_shape"), py::arg("weight_shape"), CONV_TRANSPOSE_ARGS);

  m.def("conv_transpose2d_forward", [](py::array x, py::array w, py::object bias, py::array y,
                                       Pair st, Pair pad, Pair op, Pair dl, index_t g, const std::string& algo) {
    call_without_gil(conv_transpose::conv_transpose2d_forward, x, w, bias, y,
                     conv_transpose::ConvTranspose2dParams{st, pad, op, dl, g}, algo);
  }, py::arg("input"), py::arg("weight"), py::arg("bias"), py::arg("out"), CONV_TRANSPOSE_ARGS, py::arg("algo"));

  // grad_input or grad_weight may be None: that gradient is not computed (auto times each alone).
  m.def("conv_transpose2d_backward", [](py::array x, py::array w, py::array grad_y, py::object grad_x,
                                        py::object grad_w, py::object grad_b, Pair st, Pair pad, Pair op, Pair dl,
                                        index_t g, const std::string& input_algo, const std::string& weight_algo) {
    call_without_gil(conv_transpose::conv_transpose2d_backward, x, w, grad_y, grad_x, grad_w, grad_b,
                     conv_transpose::ConvTranspose2dParams{st, pad, op, dl, g}, input_algo, weight_algo);
  }, py::arg("input"), py::arg("weight"), py::arg("grad_output"), py::arg("grad_input"), py::arg("grad_weight"),
     py::arg("grad_bias"), CONV_TRANSPOSE_ARGS, py::arg("input_algo"), py::arg("weight_algo"));
}

}  // namespace fastconv
