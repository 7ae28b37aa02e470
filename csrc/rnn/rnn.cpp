// The checked dispatch of the LSTM cell: every array checked against the shapes of the input
// (N, I) and the hidden state (N, H) before the kernel of its dtype runs.
#include "rnn/rnn.h"

#include "rnn/cpu/lstm_cell.h"

namespace fastconv::rnn {

namespace {

std::array<index_t, 2> shape2(const TensorArg& a, const char* name, const char* layout) {
  if (a.ndim != 2) fail<ValueError>(name, ": expected a 2-d array ", layout, ", got shape ", shape_str(a));
  return {a.shape[0], a.shape[1]};
}

LstmShape lstm_shape(const TensorArg& x, const TensorArg& h) {
  const auto [N, I] = shape2(x, "input", "(N, input_size)");
  const auto [Nh, H] = shape2(h, "hidden", "(N, hidden_size)");
  if (Nh != N) fail<ValueError>("hidden: expected ", N, " rows (input's batch), got shape ", shape_str(h));
  return {N, I, H};
}

template <class T>
T* state_arg(const TensorArg& a, const char* name, const LstmShape& s) {
  return shaped_arg<T>(a, name, "(N, hidden_size)", std::array<index_t, 2>{s.N, s.H});
}

template <class T>
T* gates_arg(const TensorArg& a, const char* name, const LstmShape& s) {
  return shaped_arg<T>(a, name, "(N, 4 * hidden_size)", std::array<index_t, 2>{s.N, s.gate_width()});
}

}  // namespace

void lstm_cell_forward(const TensorArg& x, const TensorArg& h, const TensorArg& c, const TensorArg& w_ih,
                       const TensorArg& w_hh, const TensorArg& b_ih, const TensorArg& b_hh, const TensorArg& h_out,
                       const TensorArg& c_out, const TensorArg& gates) {
  dispatch_float(x, "input", [&](auto tag) {
    using T = decltype(tag);
    const LstmShape s = lstm_shape(x, h);
    cpu::LstmCellForward<T> f;
    f.x = shaped_arg<const T>(x, "input", "(N, input_size)", std::array<index_t, 2>{s.N, s.I});
    f.h = state_arg<const T>(h, "hidden", s);
    f.c = state_arg<const T>(c, "cell", s);
    f.w_ih = shaped_arg<const T>(w_ih, "weight_ih", "(4 * hidden_size, input_size)",
                                 std::array<index_t, 2>{s.gate_width(), s.I});
    f.w_hh = shaped_arg<const T>(w_hh, "weight_hh", "(4 * hidden_size, hidden_size)",
                                 std::array<index_t, 2>{s.gate_width(), s.H});
    f.b_ih = vector_arg<const T>(b_ih, "bias_ih", s.gate_width());
    f.b_hh = vector_arg<const T>(b_hh, "bias_hh", s.gate_width());
    f.h_out = state_arg<T>(h_out, "hidden_out", s);
    f.c_out = state_arg<T>(c_out, "cell_out", s);
    f.gates = gates_arg<T>(gates, "gates", s);
    cpu::lstm_cell_forward<T>(s, f);
  });
}

void lstm_cell_backward(const TensorArg& grad_h, const TensorArg& grad_c, const TensorArg& gates,
                        const TensorArg& c, const TensorArg& c_out, const TensorArg& grad_gates,
                        const TensorArg& grad_c_prev) {
  dispatch_float(c, "cell", [&](auto tag) {
    using T = decltype(tag);
    const auto [N, H] = shape2(c, "cell", "(N, hidden_size)");
    const LstmShape s{N, 0, H};  // the pointwise pass never sees the input
    cpu::LstmCellBackward<T> b;
    b.grad_h = state_arg<const T>(grad_h, "grad_hidden", s);
    b.grad_c = state_arg<const T>(grad_c, "grad_cell", s);
    b.gates = gates_arg<const T>(gates, "gates", s);
    b.c = state_arg<const T>(c, "cell", s);
    b.c_out = state_arg<const T>(c_out, "cell_out", s);
    b.grad_gates = gates_arg<T>(grad_gates, "grad_gates", s);
    b.grad_c_prev = state_arg<T>(grad_c_prev, "grad_cell_prev", s);
    cpu::lstm_cell_backward<T>(s, b);
  });
}

}  // namespace fastconv::rnn
