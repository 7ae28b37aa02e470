import numpy as np
import pytest

from fastconv import ops
from fastconv.backend import DeviceError, to_device, to_host
from tests.conv_transpose.cases import case_arrays
from tests.functional_cases import run_until_chosen
from tests.reference import conv_transpose2d_reference, numeric_gradient

# (N, C_in, H, W, C_out/groups, R, S, stride, padding, output_padding, groups, dilation)
CASES = [
    (1, 1, 3, 3, 1, 3, 3, 1, 0, 0, 1, 1),
    (2, 4, 5, 6, 3, 4, 4, 2, 1, 1, 1, 1),          # FCN-style 2x upsampling
    (2, 4, 5, 4, 2, 3, 2, (2, 3), (1, 0), (1, 2), 2, 1),
    (1, 3, 4, 5, 2, 3, 3, 1, 0, 2, 1, 3),          # output_padding >= stride: allowed by dilation
    (2, 6, 3, 3, 1, 3, 3, 2, 1, 0, 6, 1),          # depthwise
    (2, 8, 5, 5, 4, 1, 1, 1, 0, 0, 1, 1),          # pointwise: no column matrix
    (1, 5, 7, 3, 3, 5, 3, 3, 2, 2, 1, (1, 2)),
]


def _pair(v):
    return v if isinstance(v, tuple) else (v, v)


def _args(case):
    stride, padding, output_padding, groups, dilation = case[7:]
    return dict(stride=stride, padding=padding, output_padding=output_padding, groups=groups, dilation=dilation)


def _reference(x, w, b, case):
    stride, padding, output_padding, groups, dilation = case[7:]
    return conv_transpose2d_reference(x, w, b, _pair(stride), _pair(padding), _pair(output_padding), groups,
                                      _pair(dilation))


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_transpose2d_forward_matches_scatter_reference(isa, device, rng, case, dtype):
    x, w, b = case_arrays(rng, case, dtype)
    y = to_host(ops.conv_transpose2d(*(to_device(a, device) for a in (x, w, b)), **_args(case)))
    ref = _reference(x, w, b, case)
    assert y.dtype == dtype and y.shape == ref.shape
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, ref, rtol=tol, atol=tol * np.sqrt(w.size))


@pytest.mark.parametrize("seed", range(40))
def test_conv_transpose2d_im2col_forward_random_shapes(device, seed):
    # im2col's col2im sums a strided layer's taps phase by phase (padding cells absorb the
    # out-of-image taps; rows past the last window, output_padding > padding, read zeros).
    rng = np.random.default_rng(seed)
    case = _random_case(rng)
    x, w, b = case_arrays(rng, case)
    y = ops.conv_transpose2d(*(to_device(a, device) for a in (x, w, b)), **_args(case), algo="im2col")
    np.testing.assert_allclose(to_host(y), _reference(x, w, b, case), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_transpose2d_im2col_forward_in_channel_blocks(device, rng, dtype):
    # 40 output channels per group of 4x4 taps over 2 x 15 x 13 pixels: the column gradient is
    # made and summed a few channels at a time, group by group.
    case = (3, 6, 15, 13, 40, 4, 4, 2, 0, 1, 2, 1)
    x, w, b = case_arrays(rng, case, dtype)
    ref = _reference(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), case)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    y = ops.conv_transpose2d(*(to_device(a, device) for a in (x, w, b)), **_args(case), algo="im2col")
    np.testing.assert_allclose(to_host(y), ref, rtol=tol, atol=tol * np.abs(ref).max())


@pytest.mark.parametrize("case", CASES)
def test_conv_transpose2d_gradients_match_numeric(device, rng, case):
    x, w, b = case_arrays(rng, case)
    y = ops.conv_transpose2d(*(to_device(a, device) for a in (x, w, b)), **_args(case))
    gy = rng.standard_normal(y.shape)
    dx, dw, db = map(to_host, ops.conv_transpose2d_backward(*(to_device(a, device) for a in (x, w, gy)), **_args(case)))
    np.testing.assert_allclose(dx, numeric_gradient(lambda xx: _reference(xx, w, None, case), x, gy), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(dw, numeric_gradient(lambda ww: _reference(x, ww, None, case), w, gy), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(db, gy.sum(axis=(0, 2, 3)), rtol=1e-12, atol=1e-10)


def _random_case(rng):
    groups = int(rng.choice([1, 1, 2, 3]))
    stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    dilation = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    r, s = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    padding = (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
    output_padding = tuple(int(rng.integers(0, max(st, dl))) for st, dl in zip(stride, dilation))
    h, w = int(rng.integers(1, 7)), int(rng.integers(1, 7))
    # Keep the output size positive: grow the input until it is.
    while (h - 1) * stride[0] - 2 * padding[0] + dilation[0] * (r - 1) + output_padding[0] + 1 < 1:
        h += 1
    while (w - 1) * stride[1] - 2 * padding[1] + dilation[1] * (s - 1) + output_padding[1] + 1 < 1:
        w += 1
    return (int(rng.integers(1, 4)), groups * int(rng.integers(1, 4)), h, w, int(rng.integers(1, 4)), r, s,
            stride, padding, output_padding, groups, dilation)


@pytest.mark.parametrize("seed", range(30))
def test_conv_transpose2d_random_shapes_against_torch(torch, device, seed):
    rng = np.random.default_rng(seed)
    case = _random_case(rng)
    x, w, b = case_arrays(rng, case)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.conv_transpose2d(tx, tw, tb, **_args(case))
    gy = rng.standard_normal(ty.shape)
    ty.backward(torch.tensor(gy))
    x, w, b, gy = (to_device(a, device) for a in (x, w, b, gy))
    y = ops.conv_transpose2d(x, w, b, **_args(case))
    dx, dw, db = ops.conv_transpose2d_backward(x, w, gy, **_args(case))
    for ours, theirs in ((y, ty), (dx, tx.grad), (dw, tw.grad), (db, tb.grad)):
        np.testing.assert_allclose(to_host(ours), theirs.detach().numpy(), rtol=1e-10, atol=1e-10)


def test_conv_transpose2d_float32_against_torch_on_a_real_layer(torch, device, rng):
    x = rng.standard_normal((4, 64, 16, 16)).astype(np.float32)
    w = (rng.standard_normal((64, 32, 4, 4)) * 0.05).astype(np.float32)
    y = ops.conv_transpose2d(to_device(x, device), to_device(w, device), stride=2, padding=1)
    ref = torch.nn.functional.conv_transpose2d(torch.from_numpy(x), torch.from_numpy(w), stride=2, padding=1)
    np.testing.assert_allclose(to_host(y), ref.numpy(), rtol=1e-4, atol=1e-4)


def test_conv_transpose2d_out_is_fully_written(rng):
    # Poison the output and the column scratch first: a missed element shows up as NaN.
    x = rng.standard_normal((3, 5, 6, 6)).astype(np.float32)
    w = rng.standard_normal((5, 4, 3, 3)).astype(np.float32)
    ops.conv_transpose2d(np.full_like(x, np.nan), w, stride=2, output_padding=1)
    y = ops.conv_transpose2d(x, w, stride=2, output_padding=1)
    assert np.isfinite(y).all()
    dx, dw, db = ops.conv_transpose2d_backward(x, w, np.ones_like(y), stride=2, output_padding=1)
    assert np.isfinite(dx).all() and np.isfinite(dw).all() and np.isfinite(db).all()


X4 = np.zeros((2, 4, 5, 5))
W4 = np.zeros((4, 3, 3, 3))


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(input=np.zeros((4, 5, 5)), weight=W4), ValueError, "input: expected a 4-d array"),
    (dict(input=X4, weight=np.zeros((4, 3, 3))), ValueError, "weight: expected a 4-d array"),
    (dict(input=X4, weight=np.zeros((6, 3, 3, 3))), ValueError, "weight: expected 4 input channels"),
    (dict(input=X4, weight=W4, groups=3), ValueError, "input: 4 channels are not divisible by groups=3"),
    (dict(input=X4, weight=W4, stride=2, output_padding=2), ValueError, "output_padding: must be >= 0 and smaller"),
    (dict(input=X4, weight=W4, output_padding=1), ValueError, "output_padding: must be >= 0 and smaller"),
    (dict(input=X4, weight=W4, padding=4), ValueError, "input: output size height -0?[0-9]+ is not positive"),
    (dict(input=X4, weight=W4, padding=-1), ValueError, "padding: must be >= 0"),
    (dict(input=X4, weight=W4, stride=0), ValueError, "stride: must be >= 1"),
    (dict(input=X4, weight=W4, dilation=(1, 2, 3)), TypeError, "dilation: expected an int or a pair"),
    (dict(input=X4.astype(np.float32), weight=W4), TypeError, "weight: dtype float64 does not match"),
    (dict(input=X4, weight=W4, bias=np.zeros(4)), ValueError, "bias: expected shape \\(3,\\)"),
])
def test_conv_transpose2d_bad_input_raises_clearly(kwargs, error, match):
    with pytest.raises(error, match=match):
        ops.conv_transpose2d(**kwargs)


def test_conv_transpose2d_backward_checks_grad_output_shape():
    with pytest.raises(ValueError, match="grad_output: expected shape \\(2, 3, 7, 7\\)"):
        ops.conv_transpose2d_backward(X4, W4, np.zeros((2, 3, 8, 8)))


# The algorithms each device's conv2d offers besides im2col (the reference), and "auto".
OTHER_ALGORITHMS = {"cpu": ("direct", "winograd_2x3", "fft", "auto"), "cuda": ("implicit", "winograd_2x3", "auto")}


def test_conv_transpose2d_algorithms_agree_and_unsupported_ones_raise(device, rng):
    # Each kernel is a conv2d kernel on the equivalent convolution, picked like conv2d's.
    x = to_device(rng.standard_normal((2, 6, 5, 7)), device)
    w = to_device(rng.standard_normal((6, 4, 3, 3)), device)
    gy = to_device(rng.standard_normal(ops.conv_transpose2d(x, w, padding=1).shape), device)
    ref = to_host(ops.conv_transpose2d(x, w, padding=1, algo="im2col"))
    ref_grads = [to_host(g) for g in ops.conv_transpose2d_backward(x, w, gy, padding=1, algo="im2col")]
    for algo in OTHER_ALGORITHMS[device]:
        np.testing.assert_allclose(to_host(ops.conv_transpose2d(x, w, padding=1, algo=algo)), ref, rtol=1e-9, atol=1e-9)
        for ours, theirs in zip(ops.conv_transpose2d_backward(x, w, gy, padding=1, algo=algo), ref_grads):
            np.testing.assert_allclose(to_host(ours), theirs, rtol=1e-9, atol=1e-9)
    with pytest.raises(ValueError, match="algo.*winograd_4x3"):
        ops.conv_transpose2d(x, w, stride=2, algo="winograd_4x3")


def test_auto_backward_times_the_pair_against_shared_im2col(rng):
    from fastconv.ops import conv_algo
    x = rng.standard_normal((2, 6, 5, 7))
    w = rng.standard_normal((6, 4, 4, 4))
    gy = rng.standard_normal(ops.conv_transpose2d(x, w, stride=2, padding=1).shape)
    ref = ops.conv_transpose2d_backward(x, w, gy, stride=2, padding=1, algo="im2col")
    conv_algo.set_mode("benchmark")
    ours = run_until_chosen(lambda: ops.conv_transpose2d_backward(x, w, gy, stride=2, padding=1))
    direction = "transposed backward+pixel_shuffle"  # 4x4/2, padding 1: pixel_shuffle runs it too
    pairs = [tuple(v.split(",")) for k, v in conv_algo.chosen().items() if k[-1] == direction and k[0] == gy.shape]
    separate = tuple(conv_algo.chosen()[k[:-1] + (d,)] for d in ("forward", "weight")
                     for k in conv_algo.chosen() if k[-1] == direction and k[0] == gy.shape)
    assert len(pairs) == 1 and pairs[0] in (separate, ("im2col", "im2col"), (separate[0], "subpixel"),
                                            ("pixel_shuffle", "pixel_shuffle"), ("pixel_shuffle", separate[1]))
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)


GY = np.zeros((2, 3, 7, 7))


@pytest.mark.parametrize("op,call", [
    pytest.param("conv_transpose2d", lambda d: ops.conv_transpose2d(d, W4), id="conv_transpose2d-input"),
    pytest.param("conv_transpose2d", lambda d: ops.conv_transpose2d(X4, d), id="conv_transpose2d-weight"),
    pytest.param("conv_transpose2d", lambda d: ops.conv_transpose2d(X4, W4, d), id="conv_transpose2d-bias"),
    pytest.param("conv_transpose2d_backward", lambda d: ops.conv_transpose2d_backward(d, W4, GY),
                 id="conv_transpose2d_backward-input"),
    pytest.param("conv_transpose2d_backward", lambda d: ops.conv_transpose2d_backward(X4, d, GY),
                 id="conv_transpose2d_backward-weight"),
    pytest.param("conv_transpose2d_backward", lambda d: ops.conv_transpose2d_backward(X4, W4, d),
                 id="conv_transpose2d_backward-grad_output"),
])
def test_conv_transpose2d_refuses_a_device_array_before_any_kernel_runs(cuda_array, op, call):
    with pytest.raises(DeviceError, match=f"^{op}: fastconv has no CUDA kernels"):
        call(cuda_array)
