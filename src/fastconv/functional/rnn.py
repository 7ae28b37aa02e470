"""lstm_cell over the fused kernel of fastconv.ops: one GEMM for the four gates and one pointwise
pass forward; one pointwise pass, then the GEMMs of the gate gradient, backward."""
from fastconv import ops
from fastconv.autograd import Function


class LSTMCell(Function):
    """(h', c') of one LSTM step, torch.nn.LSTMCell's arithmetic and gate order (i, f, g, o)."""

    @staticmethod
    def forward(ctx, x, h, c, weight_ih, weight_hh, bias_ih, bias_hh):
        h_out, c_out, gates = ops.lstm_cell(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh)
        ctx.save_for_backward(x, h, c, weight_ih, weight_hh, gates, c_out)
        return h_out, c_out

    @staticmethod
    def backward(ctx, grad_h, grad_c):
        x, h, c, weight_ih, weight_hh, gates, c_out = ctx.saved_arrays
        need_x, need_h, need_c, need_w_ih, need_w_hh, need_b_ih, need_b_hh = ctx.needs_input_grad
        grad_gates, grad_c_prev = ops.lstm_cell_backward(grad_h, grad_c, gates, c, c_out)
        # gates = x W_ih^T + h W_hh^T + b: each operand's gradient is one GEMM with grad_gates
        grad_bias = grad_gates.sum(axis=0) if need_b_ih or need_b_hh else None
        return (ops.matmul(grad_gates, weight_ih) if need_x else None,
                ops.matmul(grad_gates, weight_hh) if need_h else None,
                grad_c_prev if need_c else None,
                ops.matmul(grad_gates.T, x) if need_w_ih else None,
                ops.matmul(grad_gates.T, h) if need_w_hh else None,
                grad_bias if need_b_ih else None,
                grad_bias if need_b_hh else None)


def lstm_cell(input, hx, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    """One LSTM step: input (N, input_size), hx = (h, c) each (N, hidden_size) -> (h', c')."""
    h, c = hx
    return LSTMCell.apply(input, h, c, weight_ih, weight_hh, bias_ih, bias_hh)
