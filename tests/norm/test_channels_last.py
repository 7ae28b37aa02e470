"""Batch norm on channels_last arrays (NCHW axes over NHWC memory): read in place by the NHWC
kernels, outputs and gradients channels_last, against the NCHW kernels on the same values (eval
bit for bit; training to float rounding, its per-channel sums being added in another order) and
torch's channels_last."""
import numpy as np
import pytest

from fastconv import functional as F
from fastconv import nn, ops
from fastconv.autograd import Tensor, gradcheck, no_grad
from fastconv.ops._checks import is_channels_last, to_channels_last

# (N, C, H, W): C of 3 and 17, odd planes, and 1800 pixels (the training sums' several chunks)
SHAPES = [(2, 3, 5, 7), (3, 17, 3, 3), (2, 3, 30, 30)]
FUSIONS = [(False, False), (True, False), (False, True), (True, True)]  # (relu, residual)
DTYPES = [np.float32, np.float64]


def _tol(dtype):
    return dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)


def _params(rng, c, dtype):
    gamma, beta, running_mean = (rng.standard_normal(c).astype(dtype) for _ in range(3))
    return gamma, beta, running_mean, (rng.random(c) + 0.5).astype(dtype)


def _both_layouts(fn, *arrays):
    """fn on the NCHW arrays and on their channels_last copies."""
    return fn(*arrays), fn(*(None if a is None else to_channels_last(a) for a in arrays))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("relu,residual", FUSIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_train_forward_and_backward_equal_nchw(isa, rng, stream_stores, shape, relu, residual, dtype):
    x = (rng.standard_normal(shape) * 2 + 3).astype(dtype)
    z, gy = (rng.standard_normal(shape).astype(dtype) for _ in range(2))
    gamma, beta, rm, rv = _params(rng, shape[1], dtype)
    stats = {}

    def forward(x, z, gy):
        running = (rm.copy(), rv.copy())
        y, mean, invstd = ops.batch_norm(x, *running, gamma, beta, training=True, momentum=0.3,
                                         residual=z if residual else None, relu=relu)
        stats[is_channels_last(x)] = running + (mean, invstd)
        grads = ops.batch_norm_backward(gy, x, mean, invstd, gamma, training=True, output=y, relu=relu,
                                        residual=residual)
        return (y,) + grads

    nchw, channels_last = _both_layouts(forward, x, z, gy)
    for ours, reference in zip(channels_last, nchw):
        if reference is None:
            assert ours is None
            continue
        assert is_channels_last(ours) == (ours.ndim == 4)
        np.testing.assert_allclose(ours, reference, **_tol(dtype))
    for ours, reference in zip(stats[True], stats[False]):
        np.testing.assert_allclose(ours, reference, **_tol(dtype))


@pytest.mark.parametrize("relu,residual", FUSIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_eval_forward_and_backward_equal_nchw(isa, rng, stream_stores, relu, residual, dtype):
    x, z, gy = (rng.standard_normal((2, 17, 5, 3)).astype(dtype) for _ in range(3))
    gamma, beta, rm, rv = _params(rng, 17, dtype)

    def run(x, z, gy):
        y, mean, invstd = ops.batch_norm(x, rm, rv, gamma, beta, residual=z if residual else None, relu=relu)
        return (y,) + ops.batch_norm_backward(gy, x, mean, invstd, gamma, training=False, output=y, relu=relu,
                                              residual=residual)

    nchw, channels_last = _both_layouts(run, x, z, gy)
    np.testing.assert_array_equal(channels_last[0], nchw[0])  # the same arithmetic per value
    assert is_channels_last(channels_last[0]) and is_channels_last(channels_last[1])
    for ours, reference in zip(channels_last[1:], nchw[1:]):
        if reference is not None:
            np.testing.assert_allclose(ours, reference, **_tol(dtype))


def test_residual_and_gradient_in_the_other_layout_are_accepted(rng):
    x = to_channels_last(rng.standard_normal((2, 3, 4, 5)))
    z, gy = rng.standard_normal(x.shape), rng.standard_normal(x.shape)  # NCHW
    y, mean, invstd = ops.batch_norm(x, None, None, training=True, residual=z, relu=True)
    y_ref, _, _ = ops.batch_norm(np.ascontiguousarray(x), None, None, training=True, residual=z, relu=True)
    assert is_channels_last(y)
    np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-12)
    dx, _, _, dz = ops.batch_norm_backward(gy, x, mean, invstd, output=np.ascontiguousarray(y), relu=True,
                                           residual=True)
    assert is_channels_last(dx) and is_channels_last(dz)
    np.testing.assert_array_equal(dz, np.where(y > 0, gy, 0))


def test_non_finite_values_propagate_as_in_nchw(rng):
    x = rng.standard_normal((2, 3, 3, 3)).astype(np.float32)
    x[0, 0, 0, 0] = np.inf  # channel 0's first value: its mean is inf and its variance NaN
    x[1, 2, 1, 1] = np.nan
    (y, mean, invstd), (y_cl, mean_cl, invstd_cl) = _both_layouts(
        lambda a: ops.batch_norm(a, None, None, training=True), x)
    np.testing.assert_array_equal(np.isnan(y_cl), np.isnan(y))
    np.testing.assert_array_equal(np.isinf(mean_cl), np.isinf(mean))
    np.testing.assert_array_equal(np.isnan(mean_cl), np.isnan(mean))
    np.testing.assert_allclose(mean_cl[1], mean[1], rtol=1e-6)  # sums in another order: rounding apart
    np.testing.assert_array_equal(np.isnan(invstd_cl), np.isnan(invstd))


def test_matches_torch_channels_last(torch, rng):
    x, z, gy = (rng.standard_normal((4, 17, 5, 7)) for _ in range(3))
    gamma, beta, rm, rv = _params(rng, 17, np.float64)
    cl = lambda a: torch.from_numpy(a).contiguous(memory_format=torch.channels_last).requires_grad_()
    tx, tz, tg, tb = cl(x), cl(z), torch.tensor(gamma, requires_grad=True), torch.tensor(beta, requires_grad=True)
    trm, trv = torch.tensor(rm), torch.tensor(rv)
    ty = torch.relu(torch.nn.functional.batch_norm(tx, trm, trv, tg, tb, True, 0.1, 1e-5) + tz)
    ty.backward(torch.from_numpy(gy).contiguous(memory_format=torch.channels_last))
    y, mean, invstd = ops.batch_norm(to_channels_last(x), rm, rv, gamma, beta, training=True,
                                     residual=to_channels_last(z), relu=True)
    assert ty.is_contiguous(memory_format=torch.channels_last) and is_channels_last(y)
    kw = dict(rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(y, ty.detach().numpy(), **kw)
    np.testing.assert_allclose(rm, trm.numpy(), **kw)
    np.testing.assert_allclose(rv, trv.numpy(), **kw)
    dx, dgamma, dbeta, dz = ops.batch_norm_backward(to_channels_last(gy), to_channels_last(x), mean, invstd, gamma,
                                                    output=y, relu=True, residual=True)
    for ours, theirs in ((dx, tx.grad), (dgamma, tg.grad), (dbeta, tb.grad), (dz, tz.grad)):
        np.testing.assert_allclose(ours, theirs.numpy(), **kw)


@pytest.mark.parametrize("training", [True, False])
def test_gradients_through_functional_on_channels_last(one_thread, rng, training):
    x, z = (Tensor(to_channels_last(rng.standard_normal((3, 3, 2, 3))), requires_grad=True) for _ in range(2))
    w, b = (Tensor(rng.standard_normal(3), requires_grad=True) for _ in range(2))
    rm, rv = Tensor(rng.standard_normal(3)), Tensor(rng.random(3) + 0.5)
    bn = lambda x, w, b, z: F.batch_norm(x, None if training else rm, None if training else rv, w, b, training,
                                         residual=z, relu=True)
    assert is_channels_last(bn(x, w, b, z).data)
    assert gradcheck(bn, [x, w, b, z])
    assert is_channels_last(x.grad.data) and is_channels_last(z.grad.data)


def test_layers_keep_channels_last(rng):
    x = Tensor(to_channels_last(rng.standard_normal((2, 3, 4, 5))), requires_grad=True)
    bn, bn_relu = nn.BatchNorm2d(3, dtype=np.float64), nn.BatchNormReLU2d(3, dtype=np.float64)
    y = bn_relu(bn(x), residual=x)
    assert is_channels_last(y.data)
    y.sum().backward()
    assert is_channels_last(x.grad.data)
    bn_relu.eval()
    with no_grad():
        assert is_channels_last(bn_relu(x).data)


@pytest.mark.parametrize("with_residual", [False, True])
def test_after_conv_on_channels_last_equals_nchw(rng, with_residual):
    # In eval mode without gradients the batch norm folds into the convolution, which reads
    # the input in its layout: the values must not depend on it.
    conv, bn_relu = nn.Conv2d(3, 4, 3, padding=1, dtype=np.float64), nn.BatchNormReLU2d(4, dtype=np.float64)
    bn_relu.running_mean.data[:] = rng.standard_normal(4)
    bn_relu.eval()
    x = rng.standard_normal((2, 3, 5, 6))
    residual = rng.standard_normal((2, 4, 5, 6)) if with_residual else None
    with no_grad():
        nchw, channels_last = _both_layouts(
            lambda a, z: bn_relu.after_conv(conv, Tensor(a), None if z is None else Tensor(z)).data, x, residual)
    np.testing.assert_allclose(channels_last, nchw, rtol=1e-12, atol=1e-12)
