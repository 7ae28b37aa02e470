"""channels_last activations (NCHW axes over NHWC memory, torch's channels_last) through the
engine-level ops: element-wise arithmetic and functions, reductions kept as dims, reshape, cat,
activations, softmax, dropout, element-wise losses and their nn layers. Each keeps the input's
layout in its output (torch's rule), gives the NCHW call's values and gradients, and a leaf's
.grad takes the leaf's layout (torch's rule for .grad)."""
import numpy as np
import pytest

import fastconv.functional as F
from fastconv import Tensor, backend, nn
from fastconv.autograd import cat, gradcheck
from fastconv.ops._checks import is_channels_last

SHAPE = (2, 3, 4, 5)


def channels_last(x):
    """x's values with NHWC memory, written out here rather than with the helper under test."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def target(seed):
    return channels_last(np.abs(np.random.default_rng(seed).standard_normal(SHAPE)) % 1)


# name: a function of one 4-d Tensor returning a 4-d Tensor
OPS = {
    "add": lambda t: t + t * 2.0, "sub": lambda t: 1.0 - t, "div": lambda t: t / 3.0, "pow": lambda t: t ** 2,
    "neg": lambda t: -t, "exp": lambda t: t.exp(), "log": lambda t: (t.abs() + 1).log(),
    "sqrt": lambda t: (t.abs() + 1).sqrt(), "tanh": F.tanh, "sigmoid": F.sigmoid, "relu": F.relu,
    "leaky_relu": lambda t: F.leaky_relu(t, 0.2), "elu": F.elu,
    "softmax_channels": lambda t: F.softmax(t, 1), "log_softmax_width": lambda t: F.log_softmax(t, 3),
    "minus_channel_max": lambda t: t - t.max(axis=1, keepdims=True),
    "minus_plane_mean": lambda t: t - t.mean(axis=(2, 3), keepdims=True),
    "reshape_same_shape": lambda t: t.reshape(SHAPE),
    "cat_channels": lambda t: cat([t, t * 2.0], 1), "cat_batch": lambda t: cat([t, t], 0),
    "mse_none": lambda t: F.mse_loss(t, Tensor(target(1)), reduction="none"),
    "l1_none": lambda t: F.l1_loss(t, Tensor(target(2)), reduction="none"),
    "smooth_l1_none": lambda t: F.smooth_l1_loss(t, Tensor(target(3)), reduction="none", beta=0.5),
    "bce_with_logits_none": lambda t: F.binary_cross_entropy_with_logits(t, Tensor(target(4)), reduction="none"),
    "nn.ReLU": nn.ReLU(), "nn.Sigmoid": nn.Sigmoid(), "nn.Tanh": nn.Tanh(), "nn.LeakyReLU": nn.LeakyReLU(0.1),
    "nn.ELU": nn.ELU(), "nn.Sequential": nn.Sequential(nn.ReLU(), nn.Tanh()),
}


def run(fn, x, grad):
    t = Tensor(x, requires_grad=True)
    y = fn(t)
    y.backward(grad(y.shape))
    return y.data, t.grad.data


@pytest.mark.parametrize("name", OPS)
def test_op_keeps_channels_last(rng, name):
    x = rng.standard_normal(SHAPE)
    grad = lambda shape: np.random.default_rng(0).standard_normal(shape)  # the same for both calls
    y, dx = run(OPS[name], channels_last(x), lambda shape: channels_last(grad(shape)))
    expected_y, expected_dx = run(OPS[name], x, grad)
    assert is_channels_last(y) and is_channels_last(dx)
    np.testing.assert_allclose(y, expected_y, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(dx, expected_dx, rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("layer", [lambda t: F.dropout(t, 0.4), nn.Dropout(0.4)])
def test_dropout_keeps_channels_last_with_the_seed_s_mask(rng, layer):
    x = rng.standard_normal(SHAPE)
    results = []
    for data in (channels_last(x), x):
        backend.manual_seed(7)
        results.append(run(layer, data, np.ones))
    (y, dx), (expected_y, expected_dx) = results
    assert is_channels_last(y) and is_channels_last(dx)
    np.testing.assert_array_equal(y, expected_y)
    np.testing.assert_array_equal(dx, expected_dx)


def test_leaf_grad_takes_the_leaf_s_layout(rng):
    # flatten (a copy into NCHW order) gives an NCHW gradient; .grad is stored channels_last
    x = Tensor(channels_last(rng.standard_normal(SHAPE)), requires_grad=True)
    (x.flatten(1) * 2.0).sum().backward()
    assert is_channels_last(x.grad.data)
    np.testing.assert_array_equal(x.grad.data, np.full(SHAPE, 2.0))
    (x.flatten(1) * 3.0).sum().backward()  # accumulates in place, layout kept
    assert is_channels_last(x.grad.data)
    np.testing.assert_array_equal(x.grad.data, np.full(SHAPE, 5.0))


def test_flatten_layer_of_channels_last(rng):
    x = rng.standard_normal(SHAPE)
    y = nn.Flatten()(Tensor(channels_last(x)))
    np.testing.assert_array_equal(y.data, x.reshape(2, -1))  # NCHW order, as torch's flatten


@pytest.mark.parametrize("name", ["leaky_relu", "elu", "softmax_channels", "log_softmax_width",
                                  "bce_with_logits_none"])
def test_gradcheck_on_channels_last(one_thread, rng, name):
    x = Tensor(channels_last(rng.standard_normal((1, 3, 2, 3))), requires_grad=True)
    fn = OPS[name]
    if name == "bce_with_logits_none":  # its target is of SHAPE
        fn = lambda t: F.binary_cross_entropy_with_logits(t, Tensor(target(5)[:1, :, :2, :3]), reduction="none")
    assert gradcheck(fn, [x])
    assert is_channels_last(x.data) and is_channels_last(x.grad.data)


def test_cross_entropy_over_channels_last_logits(rng):
    logits = rng.standard_normal(SHAPE)
    classes = rng.integers(0, SHAPE[1], (SHAPE[0],) + SHAPE[2:])
    losses = []
    for data in (channels_last(logits), logits):
        t = Tensor(data, requires_grad=True)
        loss = F.cross_entropy(t, classes)
        loss.backward()
        losses.append((loss.item(), t.grad.data))
    (loss, dx), (expected_loss, expected_dx) = losses
    assert is_channels_last(dx)
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-14)
    np.testing.assert_allclose(dx, expected_dx, rtol=1e-14, atol=1e-16)
