"""interpolate and grid_sample on channels_last arrays (NCHW axes over NHWC memory, torch's
channels_last): the output and the input gradient keep that layout, and hold the NCHW call's
values. interpolate's channels_last kernels add in the NCHW kernels' order, so their values are
the same bits on x86-64 (whose baseline build contracts no multiply-add into an FMA); elsewhere
to float rounding."""
import platform

import numpy as np
import pytest

import fastconv
import fastconv.functional as F
from fastconv import Tensor, nn, ops
from fastconv.autograd import gradcheck
from fastconv.ops._checks import is_channels_last

BITWISE = platform.machine().lower() in ("x86_64", "amd64")

# (mode, keyword arguments): every mode interpolate has, up and down, odd sizes and scales
INTERPOLATIONS = [
    ("nearest", dict(size=(9, 4))),
    ("nearest", dict(scale_factor=1.7)),
    ("nearest-exact", dict(scale_factor=(0.6, 2.3))),
    ("bilinear", dict(size=(9, 4))),
    ("bilinear", dict(scale_factor=2, align_corners=True)),
    ("bilinear", dict(size=(5, 7))),  # a size that does not change: copied, as in torch
    ("bicubic", dict(scale_factor=1.7)),
    ("bicubic", dict(size=(3, 13), align_corners=True)),
    ("bilinear", dict(size=(2, 3), antialias=True)),
    ("bicubic", dict(scale_factor=0.35, antialias=True)),
    ("area", dict(size=(3, 2))),
]


def channels_last(x):
    """x's values with NHWC memory, written out here rather than with the helper under test."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def assert_same_values(ours, expected, dtype):
    if BITWISE:
        np.testing.assert_array_equal(ours, expected)
    else:
        tol = 1e-6 if dtype == np.float32 else 1e-14
        np.testing.assert_allclose(ours, expected, rtol=tol, atol=tol)


def arguments(mode, kwargs):
    return dict(mode=mode, **kwargs)


@pytest.mark.parametrize("mode,kwargs", INTERPOLATIONS)
@pytest.mark.parametrize("channels", [1, 3, 17, 37])  # 37: whole vectors of every ISA and a tail
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_interpolate_channels_last_matches_nchw(isa, rng, mode, kwargs, channels, dtype):
    x = rng.standard_normal((2, channels, 5, 7)).astype(dtype)
    args = arguments(mode, kwargs)
    expected = ops.interpolate(x, **args)
    y = ops.interpolate(channels_last(x), **args)
    assert y.shape == expected.shape and y.dtype == dtype
    assert is_channels_last(y) or channels == 1  # a single channel is both layouts

    def assert_same(ours, reference):
        if mode == "area":  # adaptive_avg_pool2d's kernels, to float rounding
            np.testing.assert_allclose(ours, reference, rtol=1e-6 if dtype == np.float32 else 1e-14)
        else:
            assert_same_values(ours, reference, dtype)

    assert_same(y, expected)
    grad = rng.standard_normal(expected.shape).astype(dtype)
    expected_dx = ops.interpolate_backward(grad, x.shape, **args)
    for grad_layout in (channels_last(grad), grad):  # either layout of grad_output is accepted
        dx = ops.interpolate_backward(grad_layout, x.shape, **args, channels_last=True)
        assert is_channels_last(dx) or channels == 1
        assert_same(dx, expected_dx)
    # grad_output's layout decides when the forward input's is not given
    assert is_channels_last(ops.interpolate_backward(channels_last(grad), x.shape, **args)) or channels == 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bilinear_channels_last_streamed_output(stream_stores, rng, dtype):
    # output rows of 41 pixels x 17 channels: several of the streamed blocks, the last one partial
    x = rng.standard_normal((2, 17, 6, 20)).astype(dtype)
    y = ops.interpolate(channels_last(x), size=(11, 41), mode="bilinear")
    assert is_channels_last(y)
    assert_same_values(y, ops.interpolate(x, size=(11, 41), mode="bilinear"), dtype)


@pytest.mark.parametrize("mode,kwargs", [m for m in INTERPOLATIONS if m[0] != "area"])
def test_interpolate_channels_last_propagates_nan(rng, mode, kwargs):
    x = rng.standard_normal((1, 5, 5, 7))
    x[0, 2, 3, 4] = np.nan
    x[0, 4, 0, 0] = np.inf
    args = arguments(mode, kwargs)
    expected = ops.interpolate(x, **args)
    y = ops.interpolate(channels_last(x), **args)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(expected))
    assert_same_values(y, expected, np.float64)


def test_interpolate_channels_last_against_torch(torch, rng):
    tf = torch.nn.functional
    for mode, kwargs in INTERPOLATIONS:
        x = rng.standard_normal((2, 6, 5, 7))
        tx = torch.tensor(x).contiguous(memory_format=torch.channels_last).requires_grad_()
        ty = tf.interpolate(tx, mode=mode, **kwargs)
        grad = rng.standard_normal(ty.shape)
        ty.backward(torch.tensor(grad).contiguous(memory_format=torch.channels_last))
        args = arguments(mode, kwargs)
        y = ops.interpolate(channels_last(x), **args)
        dx = ops.interpolate_backward(channels_last(grad), x.shape, **args)
        assert is_channels_last(y) and is_channels_last(dx)
        np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-10, atol=1e-10, err_msg=mode)
        np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-10, atol=1e-10, err_msg=mode)


def test_interpolate_channels_last_edge_shapes(rng):
    # an empty batch, 1x1 planes in and out (both layouts at once), one output pixel
    empty = channels_last(np.zeros((3, 4, 5, 6))[:0])
    assert ops.interpolate(empty, size=(7, 8), mode="bilinear").shape == (0, 4, 7, 8)
    x = rng.standard_normal((2, 4, 1, 1))
    for size in [(1, 1), (3, 2)]:
        np.testing.assert_array_equal(ops.interpolate(channels_last(x), size=size), ops.interpolate(x, size=size))
    x = rng.standard_normal((2, 4, 6, 5))
    y = ops.interpolate(channels_last(x), size=1, mode="bilinear")
    np.testing.assert_array_equal(y, ops.interpolate(x, size=1, mode="bilinear"))
    dx = ops.interpolate_backward(y, x.shape, size=1, mode="bilinear", channels_last=True)
    assert is_channels_last(dx)
    np.testing.assert_array_equal(dx, ops.interpolate_backward(y, x.shape, size=1, mode="bilinear"))


def test_channels_last_bad_input_is_refused(rng):
    from fastconv import _C
    x = channels_last(rng.standard_normal((1, 3, 4, 4)))
    with pytest.raises(ValueError, match="out: expected a channels_last"):  # the kernels write x's layout
        _C.interpolate_forward(x, np.empty((1, 3, 8, 8)), 0, False, 0.0, 0.0)
    grid = np.zeros((1, 2, 2, 2))
    with pytest.raises(ValueError, match="grad_input: expected a channels_last"):
        _C.grid_sample_backward(x, grid, channels_last(np.ones((1, 3, 2, 2))), np.empty((1, 3, 4, 4)), None, 0, 0,
                                False)
    with pytest.raises(TypeError, match="input: expected a float32 or float64 array"):
        ops.interpolate(channels_last(np.ones((1, 3, 4, 4), np.int32)), size=2)
    with pytest.raises(TypeError, match="grid: dtype float32 does not match input's float64"):
        ops.grid_sample(x, grid.astype(np.float32))


@pytest.mark.parametrize("mode,kwargs", [
    ("bilinear", dict(scale_factor=1.5)), ("bicubic", dict(size=(3, 4), antialias=True)),
    ("nearest", dict(size=(5, 3))), ("area", dict(size=(2, 3)))])
def test_interpolate_channels_last_gradcheck(one_thread, rng, mode, kwargs):
    x = Tensor(channels_last(rng.standard_normal((1, 3, 4, 5))), requires_grad=True)
    assert gradcheck(lambda t: F.interpolate(t, mode=mode, **kwargs), [x])
    assert is_channels_last(x.grad.data) and is_channels_last(x.data)


def test_upsample_layer_keeps_channels_last(rng):
    x = rng.standard_normal((2, 5, 3, 4))
    layer = nn.Upsample(scale_factor=2, mode="bilinear")
    y = layer(Tensor(channels_last(x)))
    assert is_channels_last(y.data)
    np.testing.assert_array_equal(y.data, layer(Tensor(x)).data)


GRID_SAMPLES = [dict(), dict(mode="nearest", padding_mode="border"),
                dict(padding_mode="reflection", align_corners=True)]


def grid_sample_both_ways(x, grid, grad, options):
    """(out, grad_input, grad_grid) of the NCHW call, then of the channels_last one."""
    nchw = (ops.grid_sample(x, grid, **options),) + ops.grid_sample_backward(grad, x, grid, **options)
    cl = (ops.grid_sample(channels_last(x), grid, **options),) + ops.grid_sample_backward(
        channels_last(grad), channels_last(x), grid, **options)
    return nchw, cl


@pytest.mark.parametrize("options", GRID_SAMPLES)
@pytest.mark.parametrize("shape", [(2, 17, 6, 7), (1, 3, 5, 4), (2, 1, 3, 5), (1, 6, 1, 5), (1, 37, 5, 6)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_grid_sample_channels_last_matches_nchw(isa, rng, options, shape, dtype):
    # one image: its channels split into groups for the grid gradient (2 threads or more)
    x = rng.standard_normal(shape).astype(dtype)
    grid = rng.uniform(-1.2, 1.2, (shape[0], 4, 3, 2)).astype(dtype)
    grad = rng.standard_normal(shape[:2] + (4, 3)).astype(dtype)
    nchw, cl = grid_sample_both_ways(x, grid, grad, options)
    assert all(is_channels_last(a) or shape[1] == 1 for a in cl[:2])
    for ours, expected in zip(cl, nchw):
        assert_same_values(ours, expected, dtype)


def test_grid_sample_channels_last_propagates_nan(rng):
    x = rng.standard_normal((1, 5, 4, 6))
    x[0, 1, 2, 3] = np.nan
    grid = rng.uniform(-1, 1, (1, 3, 4, 2))
    grid[0, 1, 2] = np.nan  # a NaN point reads NaN in every channel
    grad = rng.standard_normal((1, 5, 3, 4))
    nchw, cl = grid_sample_both_ways(x, grid, grad, {})
    assert np.isnan(nchw[0]).any() and np.isnan(nchw[2]).any()  # the output and the grid gradient
    for ours, expected in zip(cl, nchw):
        assert_same_values(ours, expected, np.float64)  # NaN where the NCHW call has NaN


def test_grid_sample_channels_last_against_torch(torch, rng):
    tf = torch.nn.functional
    for options in GRID_SAMPLES:
        x, grid = rng.standard_normal((2, 6, 5, 7)), rng.uniform(-1.1, 1.1, (2, 3, 4, 2))
        tx = torch.tensor(x).contiguous(memory_format=torch.channels_last).requires_grad_()
        tgrid = torch.tensor(grid, requires_grad=True)
        ty = tf.grid_sample(tx, tgrid, **{"align_corners": False, **options})
        grad = rng.standard_normal(ty.shape)
        ty.backward(torch.tensor(grad).contiguous(memory_format=torch.channels_last))
        y = ops.grid_sample(channels_last(x), grid, **options)
        dx, dgrid = ops.grid_sample_backward(channels_last(grad), channels_last(x), grid, **options)
        assert is_channels_last(y) and is_channels_last(dx)
        for ours, theirs in [(y, ty), (dx, tx.grad), (dgrid, tgrid.grad)]:
            np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-10, atol=1e-10)


def test_grid_sample_channels_last_gradcheck(one_thread, rng):
    x = Tensor(channels_last(rng.standard_normal((1, 3, 4, 5))), requires_grad=True)
    grid = Tensor(rng.uniform(-1, 1, (1, 2, 3, 2)), requires_grad=True)
    assert gradcheck(lambda t, g: F.grid_sample(t, g, align_corners=False), [x, grid])
    assert is_channels_last(x.grad.data)


@pytest.fixture
def four_threads():
    """More threads than images: the channels_last backward kernels then split each image's
    channels into blocks, and grid_sample's grid gradient into groups."""
    previous = fastconv.get_num_threads()
    fastconv.set_num_threads(4)
    yield
    fastconv.set_num_threads(previous)


def test_channels_last_backward_split_into_channel_blocks(four_threads, rng):
    x = rng.standard_normal((1, 40, 5, 6)).astype(np.float32)  # blocks of 16, 16 and 8 channels
    for mode, kwargs in [("nearest", dict(scale_factor=1.7)), ("bilinear", dict(size=(9, 4))),
                         ("bicubic", dict(scale_factor=0.6, antialias=True))]:
        grad = rng.standard_normal(ops.interpolate(x, mode=mode, **kwargs).shape).astype(np.float32)
        dx = ops.interpolate_backward(channels_last(grad), x.shape, mode=mode, **kwargs)
        assert is_channels_last(dx)
        assert_same_values(dx, ops.interpolate_backward(grad, x.shape, mode=mode, **kwargs), np.float32)
    grid = rng.uniform(-1.1, 1.1, (1, 3, 4, 2)).astype(np.float32)
    nchw, cl = grid_sample_both_ways(x, grid, rng.standard_normal((1, 40, 3, 4)).astype(np.float32), {})
    for ours, expected in zip(cl, nchw):
        assert_same_values(ours, expected, np.float32)
