"""The fused LSTM cell (csrc/rnn), torch.nn.LSTMCell's arithmetic and gate order (i, f, g, o)."""
from fastconv.backend import device_of, empty, empty_like, kernels
from fastconv.ops._checks import check_ndim, contiguous, float_array, same_dtype


def _checked(arrays):
    """name -> array (None kept): each a C-contiguous float array, all of one dtype."""
    arrays = {n: None if a is None else contiguous(float_array(a, n)) for n, a in arrays.items()}
    same_dtype(arrays)
    return arrays


def _check_shapes(a):
    check_ndim(a["input"], 2, "input", "(N, input_size)")
    check_ndim(a["hidden"], 2, "hidden", "(N, hidden_size)")
    (batch, input_size), hidden_size = a["input"].shape, a["hidden"].shape[1]
    expected = {"hidden": (batch, hidden_size), "cell": (batch, hidden_size),
                "weight_ih": (4 * hidden_size, input_size), "weight_hh": (4 * hidden_size, hidden_size),
                "bias_ih": (4 * hidden_size,), "bias_hh": (4 * hidden_size,)}
    for name, shape in expected.items():
        if a[name] is not None and a[name].shape != shape:
            raise ValueError(f"{name}: expected shape {shape} for input of shape {a['input'].shape} and "
                             f"hidden_size {hidden_size}, got {a[name].shape}")


def lstm_cell(input, hidden, cell, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    """One LSTM step, as torch.nn.LSTMCell: input (N, I), hidden and cell (N, H), weight_ih (4H, I),
    weight_hh (4H, H), biases (4H,) or None. The four gates come from one GEMM over the stacked
    depth I + H, then one pass applies the biases, activations and state update.

    Returns (hidden', cell', gates): gates (N, 4H) are the activated i, f, g, o that
    lstm_cell_backward needs."""
    lib = kernels(input, hidden, cell, weight_ih, weight_hh, bias_ih, bias_hh, op="lstm_cell")
    a = _checked({"input": input, "hidden": hidden, "cell": cell, "weight_ih": weight_ih,
                  "weight_hh": weight_hh, "bias_ih": bias_ih, "bias_hh": bias_hh})
    _check_shapes(a)
    h = a["hidden"]
    h_out, c_out = empty_like(h), empty_like(h)
    gates = empty((h.shape[0], 4 * h.shape[1]), h.dtype, device_of(h))
    lib.lstm_cell_forward(a["input"], h, a["cell"], a["weight_ih"], a["weight_hh"], a["bias_ih"], a["bias_hh"],
                          h_out, c_out, gates)
    return h_out, c_out, gates


def lstm_cell_backward(grad_hidden, grad_cell, gates, cell, cell_out):
    """The pointwise half of the LSTM cell's backward: (grad_gates (N, 4H), grad_cell_prev (N, H))
    from the gradients of hidden' and cell', the forward's gates, cell and cell'. The gradients
    of the input, the hidden state and the weights are GEMMs of grad_gates."""
    lib = kernels(grad_hidden, grad_cell, gates, cell, cell_out, op="lstm_cell_backward")
    a = _checked({"cell": cell, "grad_hidden": grad_hidden, "grad_cell": grad_cell, "gates": gates,
                  "cell_out": cell_out})
    grad_gates, grad_cell_prev = empty_like(a["gates"]), empty_like(a["cell"])
    lib.lstm_cell_backward(a["grad_hidden"], a["grad_cell"], a["gates"], a["cell"], a["cell_out"], grad_gates,
                           grad_cell_prev)
    return grad_gates, grad_cell_prev
