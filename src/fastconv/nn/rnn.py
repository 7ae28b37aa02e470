"""Recurrent cells (Elman RNN, LSTM, GRU) and a multi-layer LSTM, with PyTorch's gate order and init."""
import math

import numpy as np

from fastconv import backend
from fastconv import functional as F
from fastconv.autograd import Tensor, split, stack, unbind
from fastconv.nn import init
from fastconv.nn.linear import empty_parameter
from fastconv.nn.module import Module


def _register_recurrent_weights(module, gates, input_size, hidden_size, bias, dtype, suffix=""):
    """weight_ih (gates*H, input), weight_hh (gates*H, H) and their biases, all U(+-1/sqrt(H))."""
    shapes = {"weight_ih": (gates * hidden_size, input_size),
              "weight_hh": (gates * hidden_size, hidden_size),
              "bias_ih": (gates * hidden_size,) if bias else None,
              "bias_hh": (gates * hidden_size,) if bias else None}
    bound = 1 / math.sqrt(hidden_size)
    for name, shape in shapes.items():
        parameter = None if shape is None else init.uniform_(empty_parameter(shape, dtype), -bound, bound)
        setattr(module, name + suffix, parameter)


def _zeros_state(x, hidden_size):
    return Tensor(backend.zeros((x.shape[0], hidden_size), x.dtype, x.device))


def lstm_cell(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh):
    """One LSTM step -> (h, c), on the fused kernel (functional.lstm_cell)."""
    return F.lstm_cell(x, (h, c), weight_ih, weight_hh, bias_ih, bias_hh)


def rnn_tanh_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    """One step of the Elman network (Elman 1990): h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)."""
    return (F.linear(x, weight_ih, bias_ih) + F.linear(h, weight_hh, bias_hh)).tanh()


def gru_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    """One GRU step (Cho et al. 2014); gates in PyTorch's order r, z, n."""
    x_r, x_z, x_n = split(F.linear(x, weight_ih, bias_ih), weight_hh.shape[1], dim=1)
    h_r, h_z, h_n = split(F.linear(h, weight_hh, bias_hh), weight_hh.shape[1], dim=1)
    reset, update = (x_r + h_r).sigmoid(), (x_z + h_z).sigmoid()
    candidate = (x_n + reset * h_n).tanh()
    return (1 - update) * candidate + update * h


class _RecurrentCell(Module):
    gates = 0  # stacked gate blocks in the weights

    def __init__(self, input_size, hidden_size, bias=True, dtype=np.float32):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        _register_recurrent_weights(self, self.gates, input_size, hidden_size, bias, dtype)

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}"


class RNNCell(_RecurrentCell):
    """torch.nn.RNNCell with its default tanh nonlinearity."""
    gates = 1

    def forward(self, x, hx=None):
        """x (N, input_size), hx (N, hidden_size) or None for zeros -> h'."""
        h = hx if hx is not None else _zeros_state(x, self.hidden_size)
        return rnn_tanh_cell(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)


class LSTMCell(_RecurrentCell):
    gates = 4

    def forward(self, x, hx=None):
        """x (N, input_size), hx = (h, c) each (N, hidden_size) or None for zeros -> (h, c)."""
        h, c = hx if hx is not None else (_zeros_state(x, self.hidden_size),) * 2
        return lstm_cell(x, h, c, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)


class GRUCell(_RecurrentCell):
    gates = 3

    def forward(self, x, hx=None):
        h = hx if hx is not None else _zeros_state(x, self.hidden_size)
        return gru_cell(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)


class LSTM(Module):
    """A stack of LSTM layers unrolled over time; parameters named weight_ih_l0, ... as in PyTorch."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dtype=np.float32):
        super().__init__()
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.batch_first = batch_first
        for layer in range(num_layers):
            _register_recurrent_weights(self, 4, input_size if layer == 0 else hidden_size,
                                        hidden_size, bias, dtype, suffix=f"_l{layer}")

    def _layer_weights(self, layer):
        return [getattr(self, f"{name}_l{layer}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]

    def forward(self, x, hx=None):
        """x (T, N, input_size) (or (N, T, input_size) if batch_first), hx = (h0, c0) each
        (num_layers, N, hidden_size) or None -> output (T, N, H), (h_n, c_n)."""
        if self.batch_first:
            x = x.transpose(0, 1)
        final_h, final_c = [], []
        for layer in range(self.num_layers):
            weight_ih, weight_hh, bias_ih, bias_hh = self._layer_weights(layer)
            h, c = ((hx[0][layer], hx[1][layer]) if hx is not None
                    else (_zeros_state(x[0], self.hidden_size),) * 2)
            outputs = []
            for step in unbind(x, 0):
                h, c = lstm_cell(step, h, c, weight_ih, weight_hh, bias_ih, bias_hh)
                outputs.append(h)
            x = stack(outputs, 0)
            final_h.append(h)
            final_c.append(c)
        return (x.transpose(0, 1) if self.batch_first else x), (stack(final_h), stack(final_c))
