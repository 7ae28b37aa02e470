"""The fused LSTM cell (csrc/rnn): against a float64 numpy reference on every ISA (its GEMM runs
the micro-kernels), by numerical gradients, against torch.nn.LSTMCell, and nn.LSTM against the
unfused composition of Tensor ops; then bad input, named."""
import re

import numpy as np
import pytest

import fastconv.functional as F
from fastconv import Tensor, _C, gradcheck, nn, ops
from fastconv.autograd import split, stack


def sigmoid(v):
    with np.errstate(over="ignore"):  # e^-v = inf for a very negative v: 1 / inf = 0, as it should
        return 1 / (1 + np.exp(-v))


def reference_lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh):
    """torch.nn.LSTMCell's equations in float64 numpy, gates in the order i, f, g, o."""
    x, h, c, w_ih, w_hh = (a.astype(np.float64) for a in (x, h, c, w_ih, w_hh))
    gates = x @ w_ih.T + h @ w_hh.T
    if b_ih is not None:
        gates = gates + b_ih + b_hh
    i, f, g, o = np.split(gates, 4, axis=1)
    c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    return sigmoid(o) * np.tanh(c), c


def composite_lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh):
    """The same step as a composition of Tensor ops, whose backward the engine derives."""
    i, f, g, o = split(F.linear(x, w_ih, b_ih) + F.linear(h, w_hh, b_hh), h.shape[1], dim=1)
    c = f.sigmoid() * c + i.sigmoid() * g.tanh()
    return o.sigmoid() * c.tanh(), c


def cell_arrays(rng, batch, input_size, hidden_size, dtype=np.float64, bias=True):
    shapes = [(batch, input_size), (batch, hidden_size), (batch, hidden_size),
              (4 * hidden_size, input_size), (4 * hidden_size, hidden_size)]
    arrays = [rng.standard_normal(s).astype(dtype) for s in shapes]
    biases = [rng.standard_normal(4 * hidden_size).astype(dtype) for _ in range(2)] if bias else [None, None]
    return arrays + biases


# (batch, input_size, hidden_size): tiny; rows and gates off the micro-kernel's tile; a depth
# I + H of several GEMM k slices whose boundary falls inside x's part, and one inside h's.
SHAPES = [(1, 1, 1), (7, 5, 3), (33, 300, 130), (4, 20, 600)]


@pytest.mark.parametrize("dtype, tolerance", [(np.float32, 2e-5), (np.float64, 1e-12)])
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_matches_float64_reference(isa, rng, shape, dtype, tolerance):
    arrays = cell_arrays(rng, *shape, dtype=dtype)
    h, c, gates = ops.lstm_cell(*arrays)
    expected_h, expected_c = reference_lstm_cell(*arrays)
    assert h.dtype == c.dtype == dtype
    np.testing.assert_allclose(h, expected_h, rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(c, expected_c, rtol=tolerance, atol=tolerance * np.abs(expected_c).max())
    assert gates.shape == (shape[0], 4 * shape[2]) and np.all((gates >= -1) & (gates <= 1))


def test_forward_without_bias(rng):
    arrays = cell_arrays(rng, 3, 4, 5, bias=False)
    for ours, expected in zip(ops.lstm_cell(*arrays)[:2], reference_lstm_cell(*arrays)):
        np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_and_nan_pre_activations(rng, dtype):
    """Saturated gates give the limits exactly where e^x would overflow; a NaN reaches the output
    instead of being clamped into a number."""
    x, h, c, w_ih, w_hh, b_ih, b_hh = cell_arrays(rng, 3, 2, 2, dtype=dtype)
    b_ih[:] = np.array([1e4, -1e4, 1e4, 1e4, -1e4, 1e4, -1e4, -1e4], dtype)  # i, f, g, o blocks of 2
    x[2, 0] = np.nan
    h_out, c_out, _ = ops.lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh)
    expected_h, expected_c = reference_lstm_cell(x[:2], h[:2], c[:2], w_ih, w_hh, b_ih, b_hh)
    np.testing.assert_allclose(c_out[:2], expected_c, rtol=1e-6)
    np.testing.assert_allclose(h_out[:2], expected_h, rtol=1e-6, atol=1e-7)
    assert np.isnan(h_out[2]).all() and np.isnan(c_out[2]).all()


def lstm_step(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
    return F.lstm_cell(x, (h, c), w_ih, w_hh, b_ih, b_hh)


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("bias", [True, False])
def test_gradients_match_finite_differences(rng, bias):
    arrays = [a for a in cell_arrays(rng, 3, 4, 2, bias=bias) if a is not None]
    assert gradcheck(lstm_step, [Tensor(a, requires_grad=True) for a in arrays])


def test_gradient_of_one_output_alone(rng):
    """h' used, c' not (the last step of a sequence): c' gets zeros, not a missing gradient."""
    inputs = [Tensor(a, requires_grad=True) for a in cell_arrays(rng, 2, 3, 2)]
    assert gradcheck(lambda *args: lstm_step(*args)[0], inputs)


@pytest.mark.parametrize("output", ["h", "c"])
def test_matches_torch_lstm_cell(torch, rng, output):
    """Outputs and every gradient, through h' or c', against torch.nn.LSTMCell in float64."""
    arrays = cell_arrays(rng, 5, 6, 4)
    ours = [Tensor(a, requires_grad=True) for a in arrays]
    cell = torch.nn.LSTMCell(6, 4, dtype=torch.float64)
    state = [torch.tensor(a, requires_grad=True) for a in arrays[:3]]
    with torch.no_grad():
        for name, value in zip(["weight_ih", "weight_hh", "bias_ih", "bias_hh"], arrays[3:]):
            getattr(cell, name).copy_(torch.tensor(value))
    pick = 0 if output == "h" else 1
    out, expected = lstm_step(*ours)[pick], cell(state[0], (state[1], state[2]))[pick]
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-12, atol=1e-12)
    weights = rng.standard_normal(out.shape)
    (out * weights).sum().backward()
    (expected * torch.tensor(weights)).sum().backward()
    theirs = state + [getattr(cell, n) for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    for index, (a, b) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=f"gradient of argument {index}")


def test_nn_lstm_matches_the_composite_cell(rng):
    layer = nn.LSTM(3, 4, num_layers=2, dtype=np.float64)
    x = Tensor(rng.standard_normal((6, 2, 3)), requires_grad=True)
    out, (h_n, c_n) = layer(x)
    (out.sum() + (h_n * c_n).sum()).backward()
    grads = {name: p.grad.numpy().copy() for name, p in layer.named_parameters()}
    grad_x = x.grad.numpy().copy()

    x.grad = None
    for p in layer.parameters():
        p.grad = None
    layer_input, finals = x, []
    for index in range(2):
        weights = [getattr(layer, f"{name}_l{index}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        h = c = Tensor(np.zeros((2, 4)))
        steps = []
        for t in range(6):
            h, c = composite_lstm_cell(layer_input[t], h, c, *weights)
            steps.append(h)
        finals.append(h * c)
        layer_input = stack(steps)
    np.testing.assert_allclose(out.numpy(), layer_input.numpy(), rtol=1e-12, atol=1e-12)
    (layer_input.sum() + finals[0].sum() + finals[1].sum()).backward()
    np.testing.assert_allclose(grad_x, x.grad.numpy(), rtol=1e-10, atol=1e-12)
    for name, p in layer.named_parameters():
        np.testing.assert_allclose(grads[name], p.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("name, shape, message", [
    ("hidden", (3, 5), "hidden: expected shape (2, 5)"),
    ("cell", (2, 4), "cell: expected shape (2, 5)"),
    ("weight_ih", (20, 3), "weight_ih: expected shape (20, 4)"),
    ("weight_hh", (20, 4), "weight_hh: expected shape (20, 5)"),
    ("bias_ih", (16,), "bias_ih: expected shape (20,)"),
    ("input", (2, 4, 1), "input: expected a 2-d array (N, input_size)"),
])
def test_shape_mismatch_is_named(rng, name, shape, message):
    arrays = dict(zip(["input", "hidden", "cell", "weight_ih", "weight_hh", "bias_ih", "bias_hh"],
                      cell_arrays(rng, 2, 4, 5)))
    arrays[name] = rng.standard_normal(shape)
    with pytest.raises(ValueError, match=re.escape(message)):
        ops.lstm_cell(**arrays)


def test_mixed_dtypes_are_refused(rng):
    arrays = cell_arrays(rng, 2, 3, 4)
    arrays[3] = arrays[3].astype(np.float32)
    with pytest.raises(TypeError, match="weight_ih: dtype float32 does not match input's float64"):
        ops.lstm_cell(*arrays)


def test_compiled_entry_checks_its_outputs(rng):
    """The C++ dispatch refuses what Python would never pass: a gates buffer of the wrong width."""
    x, h, c, w_ih, w_hh, b_ih, b_hh = cell_arrays(rng, 2, 3, 4)
    outputs = [np.empty((2, 4)), np.empty((2, 4)), np.empty((2, 12))]
    with pytest.raises(ValueError, match=r"gates: expected shape \(2, 16\), got \(2, 12\)"):
        _C.lstm_cell_forward(x, h, c, w_ih, w_hh, b_ih, b_hh, *outputs)
