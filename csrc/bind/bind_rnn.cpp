// fastconv._C's LSTM cell: arrays converted, then rnn/rnn.h's entry points without the GIL.
#include "bind/py_tensor.h"
#include "rnn/rnn.h"

namespace fastconv {

void bind_rnn(py::module_& m) {
  m.def("lstm_cell_forward", [](py::array x, py::array h, py::array c, py::array w_ih, py::array w_hh,
                                py::object b_ih, py::object b_hh, py::array h_out, py::array c_out,
                                py::array gates) {
    call_without_gil(rnn::lstm_cell_forward, x, h, c, w_ih, w_hh, b_ih, b_hh, h_out, c_out, gates);
  }, py::arg("input"), py::arg("hidden"), py::arg("cell"), py::arg("weight_ih"), py::arg("weight_hh"),
     py::arg("bias_ih"), py::arg("bias_hh"), py::arg("hidden_out"), py::arg("cell_out"), py::arg("gates"));

  m.def("lstm_cell_backward", [](py::array grad_h, py::array grad_c, py::array gates, py::array c,
                                 py::array c_out, py::array grad_gates, py::array grad_c_prev) {
    call_without_gil(rnn::lstm_cell_backward, grad_h, grad_c, gates, c, c_out, grad_gates, grad_c_prev);
  }, py::arg("grad_hidden"), py::arg("grad_cell"), py::arg("gates"), py::arg("cell"), py::arg("cell_out"),
     py::arg("grad_gates"), py::arg("grad_cell_prev"));
}

}  // namespace fastconv
