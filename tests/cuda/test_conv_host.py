"""conv.cu's im2col and col2im (bodies in csrc/conv/cuda/im2col_body.h), compiled for the host
and run through their wrappers (fastconv/cuda/im2col.py) over the whole grid
(tests/cuda/host_kernels.py), compared with fastconv._C's im2col kernels: conv2d with a one-hot weight (output
channel k copies column row k) is im2col, and its input gradient is col2im. A GEMM with one
nonzero per sum adds exact zeros, so both comparisons are bit for bit; col2im's gather adds the
taps in the CPU kernel's order. torch's unfold and fold are a second, independent oracle."""
import itertools

import numpy as np
import pytest

from fastconv import _C
from fastconv.cuda import im2col as columns
from fastconv.cuda.im2col import column_geometry, columns_shape
from tests.cuda import host_kernels

# (N, C, H, W, kh, kw, stride, padding, pad_end, dilation): plain, strided (the CPU's col2im by
# phases), dilated, asymmetric and negative end padding, a kernel as large as the padded input,
# 1x1 (the CPU's pointwise path).
CASES = [
    (2, 3, 7, 6, 3, 3, (1, 1), (1, 1), (1, 1), (1, 1)),
    (1, 2, 9, 8, 3, 2, (2, 3), (1, 0), (2, 1), (1, 1)),
    (2, 2, 8, 9, 3, 3, (1, 2), (2, 1), (0, 2), (2, 3)),
    (1, 3, 6, 7, 4, 3, (2, 2), (1, 2), (-1, 0), (1, 1)),
    (1, 1, 5, 4, 7, 6, (1, 1), (1, 1), (1, 1), (1, 1)),
    (2, 4, 5, 5, 1, 1, (1, 1), (0, 0), (0, 0), (1, 1)),
]


@pytest.fixture
def host(monkeypatch):
    host_kernels.install(monkeypatch, "conv")


def one_hot_weight(c, kh, kw, dtype):
    """(C*kh*kw, C, kh, kw): output channel (c * kh + r) * kw + s reads tap (r, s) of channel c."""
    rows = c * kh * kw
    return np.eye(rows, dtype=dtype).reshape(rows, c, kh, kw)


def run(op, case, source, out):
    """columns.<op> on `source` into `out` (returned), with case's geometry."""
    _, _, _, _, kh, kw, stride, padding, pad_end, dilation = case
    getattr(columns, op)(source, kh, kw, stride, padding, dilation, out, pad_end=pad_end)
    return out


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_im2col_and_col2im_equal_the_cpu_kernels(host, case, dtype, rng):
    n, c, h, w, kh, kw, stride, padding, pad_end, dilation = case
    geometry = column_geometry((n, c, h, w), kh, kw, stride, padding, dilation, pad_end)
    p, q = geometry[-2:]
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    weight = one_hot_weight(c, kh, kw, dtype)
    conv_args = (stride, padding, pad_end, dilation, 1)

    cols = run("im2col", case, x, np.full(columns_shape(geometry), np.nan, dtype))
    expected = np.full((n, weight.shape[0], p, q), np.nan, dtype)
    _C.conv2d_forward(x, weight, None, expected, *conv_args, algo="im2col")
    np.testing.assert_array_equal(cols, expected.reshape(cols.shape))

    dy = rng.standard_normal(cols.shape).astype(dtype)
    dx = run("col2im", case, dy, np.full(x.shape, np.nan, dtype))
    expected_dx = np.full(x.shape, np.nan, dtype)
    _C.conv2d_backward_input(dy.reshape(expected.shape), weight, expected_dx, *conv_args, algo="im2col")
    np.testing.assert_array_equal(dx, expected_dx)


@pytest.mark.parametrize("case", [c for c in CASES if c[7] == c[8]])  # torch pads both ends alike
def test_im2col_and_col2im_are_torch_unfold_and_fold(host, case, torch, rng):
    n, c, h, w, kh, kw, stride, padding, _, dilation = case
    geometry = column_geometry((n, c, h, w), kh, kw, stride, padding, dilation)
    x = rng.standard_normal((n, c, h, w))
    options = dict(kernel_size=(kh, kw), dilation=dilation, padding=padding, stride=stride)
    cols = run("im2col", case, x, np.empty(columns_shape(geometry)))
    np.testing.assert_array_equal(cols, torch.nn.functional.unfold(torch.from_numpy(x), **options).numpy())
    dx = run("col2im", case, cols, np.empty(x.shape))
    folded = torch.nn.functional.fold(torch.from_numpy(cols), output_size=(h, w), **options).numpy()
    np.testing.assert_allclose(dx, folded, rtol=1e-13, atol=1e-13)  # torch scatters in another order


@pytest.mark.parametrize("bad, message", [
    (dict(kh=0), "kh: expected a kernel size >= 1"),
    (dict(stride=(0, 1)), "stride: must be >= 1"),
    (dict(dilation=(1, 0)), "dilation: must be >= 1"),
    (dict(padding=(-1, 0)), "padding: must be >= 0"),
    (dict(kw=9), "larger than the padded input"),
    (dict(stride=(2**63, 1)), "stride: expected values of magnitude at most 2\\*\\*63 - 1"),
])
def test_column_geometry_refuses_bad_arguments_before_any_launch(bad, message):
    arguments = dict(kh=3, kw=3, stride=(1, 1), padding=(1, 1), dilation=(1, 1)) | bad
    with pytest.raises(ValueError, match=message):
        column_geometry((1, 2, 5, 5), **arguments)


def test_column_geometry_is_conv2d_output_size():
    for h, k, s, p, d in itertools.product(range(1, 7), range(1, 4), range(1, 3), range(0, 2), range(1, 3)):
        if d * (k - 1) + 1 > h + 2 * p:
            continue
        *_, out_h, out_w = column_geometry((1, 1, h, h + 1), k, k, (s, s), (p, p), (d, d))
        assert (out_h, out_w) == ((h + 2 * p - d * (k - 1) - 1) // s + 1, (h + 1 + 2 * p - d * (k - 1) - 1) // s + 1)


def test_outputs_and_columns_of_the_wrong_shape_are_refused_before_any_launch(host):
    x = np.zeros((1, 2, 5, 5), np.float32)
    with pytest.raises(ValueError, match=r"out: expected shape \(1, 18, 25\)"):
        columns.im2col(x, 3, 3, (1, 1), (1, 1), (1, 1), np.zeros((1, 18, 24), np.float32))
    with pytest.raises(TypeError, match="out: dtype float64 does not match float32"):
        columns.im2col(x, 3, 3, (1, 1), (1, 1), (1, 1), np.zeros((1, 18, 25), np.float64))
    with pytest.raises(ValueError, match=r"cols: expected shape \(1, 18, 25\) for out \(1, 2, 5, 5\)"):
        columns.col2im(np.zeros((1, 18, 9), np.float32), 3, 3, (1, 1), (1, 1), (1, 1), x)
    strided = np.zeros((1, 2, 5, 10), np.float32)[..., ::2]
    with pytest.raises(ValueError, match="out: expected a C-contiguous array"):
        columns.col2im(np.zeros((1, 18, 25), np.float32), 3, 3, (1, 1), (1, 1), (1, 1), strided)
