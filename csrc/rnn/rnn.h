// The fused LSTM cell (Hochreiter & Schmidhuber 1997), torch.nn.LSTMCell's arithmetic with its gate
// order i, f, g, o: gates = x W_ih^T + h W_hh^T + b_ih + b_hh, c' = f c + i g, h' = o tanh(c').
// Each entry point checks every array against the shapes of x (N, I) and h (N, H) and runs the
// kernel of its dtype (cpu/lstm_cell.h).
#pragma once
#include "core/tensor_arg.h"

namespace fastconv::rnn {

struct LstmShape {
  index_t N, I, H;  // batch, input size, hidden size
  index_t gate_width() const { return 4 * H; }
};

// One step: h_out, c_out (N, H) and the activated gates (N, 4H) that the backward reads. The
// biases may be absent (bias=False).
void lstm_cell_forward(const TensorArg& input, const TensorArg& hidden, const TensorArg& cell,
                       const TensorArg& weight_ih, const TensorArg& weight_hh, const TensorArg& bias_ih,
                       const TensorArg& bias_hh, const TensorArg& hidden_out, const TensorArg& cell_out,
                       const TensorArg& gates);

// The pointwise half of the backward: from the gradients of h' and c', the gradient of the
// pre-activation gates (N, 4H) and of the previous cell state (N, H). The weight and input
// gradients are GEMMs of grad_gates, which the caller runs.
void lstm_cell_backward(const TensorArg& grad_hidden, const TensorArg& grad_cell, const TensorArg& gates,
                        const TensorArg& cell, const TensorArg& cell_out, const TensorArg& grad_gates,
                        const TensorArg& grad_cell_prev);

}  // namespace fastconv::rnn
