"""conv2d on channels_last arrays (NCHW axes over NHWC memory, torch's channels_last): the same
values as on NCHW arrays, the output and grad_input channels_last, on every ISA (the direct
kernels of AVX2 and AVX-512, im2col + GEMM on the generic level). algo='im2col' runs the in-place
kernels; 'auto' may run them or NCHW copies, whichever is faster."""
import numpy as np
import pytest

import fastconv
from fastconv import _C, autograd, nn, ops
from fastconv.ops import conv_algo
from fastconv.ops._checks import is_channels_last
from fastconv.ops.conv import conv2d_arguments
from tests.functional_cases import run_until_chosen
from tests.reference import conv2d_reference

RNG = np.random.default_rng(11)

# (N, C, H, W, K, R, S, stride, padding, dilation, groups)
CASES = [
    (2, 3, 7, 9, 5, 3, 3, 1, 1, 1, 1),          # 5 output channels: one partial vector
    (2, 16, 8, 8, 33, 3, 3, 2, 1, 1, 1),        # strided; two vectors of channels and a partial third
    (1, 8, 11, 10, 24, 5, 4, (2, 1), (2, 1), 1, 1),
    (2, 12, 10, 11, 20, 5, 4, (3, 2), (2, 1), 1, 1),  # input gradient by sub-pixel phases of 1-2 taps
    (1, 5, 9, 7, 6, 2, 3, 3, 0, 1, 1),          # stride above the kernel's height: phases without taps
    (2, 20, 7, 9, 12, 3, 3, 1, 1, 1, 1),        # direct weight gradient: a whole and a partial channel vector
    (1, 16, 9, 8, 16, 3, 5, (1, 2), (2, 1), (2, 1), 1),  # direct weight gradient: 15 taps, strided, dilated
    (2, 16, 9, 9, 7, 5, 5, 1, 2, 1, 1),         # direct weight gradient: 25 taps, a partial block of channels
    (2, 4, 9, 8, 17, 3, 3, 1, "same", 2, 1),    # dilated: the input gradient's rotated taps
    (2, 4, 8, 8, 6, 4, 4, 1, "same", 1, 1),     # even kernel: asymmetric padding
    (3, 32, 5, 6, 16, 1, 1, 1, 0, 1, 1),        # pointwise
    (2, 24, 6, 7, 8, 1, 1, 2, 0, 1, 1),         # strided 1x1
    (1, 2, 4, 4, 3, 6, 6, 1, 1, 1, 1),          # kernel as large as the padded input
    (2, 16, 9, 7, 16, 3, 3, 1, 2, 2, 2),        # groups of 8 channels: im2col + GEMM per group
    (2, 8, 7, 7, 16, 3, 3, 1, 1, 1, 8),         # depthwise, multiplier 2: im2col + GEMM per channel
    (2, 21, 7, 9, 21, 3, 3, 1, 1, 1, 21),       # depthwise, multiplier 1: its own kernels; a partial vector
    (2, 40, 8, 7, 40, 5, 3, 2, (2, 1), (1, 2), 40),  # strided, dilated depthwise; two vectors and a part
    (2, 24, 9, 10, 24, 3, 3, (2, 1), 1, (2, 1), 24),  # depthwise by output rows, strided and dilated down
    (1, 16, 6, 11, 16, 3, 5, 1, 2, 1, 16),           # depthwise by output rows, 5 wide
]


def channels_last(a):
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def nhwc_memory(a):
    """NHWC memory (channels_last, or an array whose two layouts are the same memory)."""
    return a.transpose(0, 2, 3, 1).flags.c_contiguous


def _arrays(case, dtype, bias=True):
    n, c, h, w, k, r, s, stride, padding, dilation, groups = case
    x = RNG.standard_normal((n, c, h, w)).astype(dtype)
    weight = RNG.standard_normal((k, c // groups, r, s)).astype(dtype)
    b = RNG.standard_normal(k).astype(dtype) if bias else None
    return x, weight, b, dict(stride=stride, padding=padding, dilation=dilation, groups=groups)


def _tolerance(dtype):
    return dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
def test_forward_matches_reference_and_keeps_layout(isa, case, dtype):
    x, w, b, kw = _arrays(case, dtype)
    y = ops.conv2d(channels_last(x), w, b, **kw, relu=True, algo="im2col")
    assert nhwc_memory(y) and y.dtype == dtype
    stride, pad_begin, pad_end, dilation, groups = conv2d_arguments(w.shape, **kw)
    ref = conv2d_reference(x, w, b, stride, pad_begin, pad_end, dilation, groups)
    np.testing.assert_allclose(y, np.maximum(ref, 0), **_tolerance(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
def test_gradients_match_nchw(isa, case, dtype):
    x, w, _, kw = _arrays(case, dtype, bias=False)
    dy = RNG.standard_normal(ops.conv2d(x, w, **kw).shape).astype(dtype)
    want = ops.conv2d_backward(x.astype(np.float64), w.astype(np.float64), dy.astype(np.float64), **kw)
    got = ops.conv2d_backward(channels_last(x), w, channels_last(dy), **kw, algo="im2col")
    assert nhwc_memory(got[0])
    for g, ref in zip(got, want):
        np.testing.assert_allclose(g, ref, **_tolerance(dtype))
    # the one-gradient calls, and a grad_output in the other layout (converted once)
    in_place = dict(kw, algo="im2col")
    np.testing.assert_allclose(ops.conv2d_input(x.shape, w, channels_last(dy), **in_place), want[0],
                               **_tolerance(dtype))
    np.testing.assert_allclose(ops.conv2d_weight(channels_last(x), w.shape, dy, **in_place), want[1],
                               **_tolerance(dtype))
    if is_channels_last(channels_last(dy)):  # a 1x1 output's gradient says nothing of the layout
        assert is_channels_last(ops.conv2d_input(x.shape, w, channels_last(dy), **in_place))


@pytest.mark.parametrize("case", CASES[:3])
def test_auto_times_in_place_against_nchw_copies(case, tmp_path, monkeypatch):
    monkeypatch.setenv("FASTCONV_CACHE_DIR", str(tmp_path))
    conv_algo.forget_choices()
    x, w, b, kw = _arrays(case, np.float64)
    dy = RNG.standard_normal(ops.conv2d(x, w, **kw).shape)
    y, grads = run_until_chosen(lambda: (ops.conv2d(channels_last(x), w, b, **kw),
                                         ops.conv2d_backward(channels_last(x), w, channels_last(dy), **kw)))
    assert is_channels_last(y) and is_channels_last(grads[0])
    np.testing.assert_allclose(y, ops.conv2d(x, w, b, **kw), rtol=1e-10, atol=1e-10)
    for got, want in zip(grads, ops.conv2d_backward(x, w, dy, **kw)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    picks = {key[-1]: algo for key, algo in conv_algo.chosen().items() if key[-1].endswith("@channels_last")}
    assert set(picks) == {"forward@channels_last", "backward@channels_last"}
    assert set(picks.values()) <= set(conv_algo.LAYOUTS)


def test_deterministic_mode_runs_in_place(monkeypatch):
    monkeypatch.setattr(conv_algo, "_mode", "deterministic")
    conv_algo.forget_choices()
    x, w, b, kw = _arrays(CASES[0], np.float32)
    ops.conv2d(channels_last(x), w, b, **kw)
    assert [a for k, a in conv_algo.chosen().items() if k[-1] == "forward@channels_last"] == ["channels_last"]
    conv_algo.forget_choices()


def test_named_algorithm_runs_on_an_nchw_copy_and_keeps_layout():
    x, w, b, kw = _arrays((2, 8, 9, 9, 8, 3, 3, 1, 1, 1, 1), np.float64)
    y = ops.conv2d(channels_last(x), w, b, **kw, algo="winograd")  # an NCHW kernel: on a copy
    assert is_channels_last(y)
    np.testing.assert_allclose(y, ops.conv2d(x, w, b, **kw), rtol=1e-10, atol=1e-10)


def _depthwise_weight_gradient_reference(x, dy, pad):
    """dw[c, 0, r, s] = sum over n, p, q of dy[n, c, p, q] * x_padded[n, c, p + r, q + s] (3x3,
    stride 1), and db[c] = the sum of dy[:, c], in float64."""
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    P, Q = dy.shape[2:]
    dw = np.array([[np.einsum("ncpq,ncpq->c", dy.astype(np.float64), xp[:, :, r:r + P, s:s + Q]) for s in range(3)]
                   for r in range(3)])
    return dw.transpose(2, 0, 1)[:, None], dy.astype(np.float64).sum(axis=(0, 2, 3))


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("n, c, h, w", [(1, 40, 6, 9), (3, 20, 5, 30), (5, 16, 4, 4)])
def test_depthwise_weight_gradient_splits_images_or_channel_vectors(isa, threads, n, c, h, w):
    """The depthwise 3x3 weight gradient's threads each take images and sum their own, or with
    fewer images than threads take channel vectors: every split, partial vectors and rows that
    end inside a block of pixels give the float64 sums."""
    x = RNG.standard_normal((n, c, h, w)).astype(np.float32)
    weight = RNG.standard_normal((c, 1, 3, 3)).astype(np.float32)
    dy = RNG.standard_normal((n, c, h, w)).astype(np.float32)
    previous = fastconv.get_num_threads()
    fastconv.set_num_threads(threads)
    try:
        _, dw, db = ops.conv2d_backward(channels_last(x), weight, channels_last(dy), padding=1, groups=c,
                                        algo="im2col")
    finally:
        fastconv.set_num_threads(previous)
    want_dw, want_db = _depthwise_weight_gradient_reference(x, dy, 1)
    np.testing.assert_allclose(dw, want_dw, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(db, want_db, rtol=1e-4, atol=1e-4)


def test_single_channel_input_is_nchw_memory_too():
    """C == 1: both layouts are the same memory; the call runs NCHW and says so by its output."""
    x, w, b, kw = _arrays((2, 1, 8, 8, 4, 3, 3, 1, 1, 1, 1), np.float32)
    assert not is_channels_last(channels_last(x))
    np.testing.assert_array_equal(ops.conv2d(channels_last(x), w, b, **kw, algo="im2col"),
                                  ops.conv2d(x, w, b, **kw, algo="im2col"))


def test_nan_and_inf_propagate_as_in_nchw(isa):
    x, w, b, kw = _arrays((1, 16, 6, 6, 20, 3, 3, 1, 1, 1, 1), np.float32)
    x[0, 3, 2, 4], x[0, 7, 5, 0] = np.nan, np.inf
    got = ops.conv2d(channels_last(x), w, b, **kw, relu=True, algo="im2col")
    want = ops.conv2d(x, w, b, **kw, relu=True)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_empty_batch():
    x = np.zeros((0, 8, 5, 5), np.float32)
    w = RNG.standard_normal((4, 8, 3, 3)).astype(np.float32)
    assert ops.conv2d(x, w, padding=1).shape == (0, 4, 5, 5)


def test_kernels_refuse_mixed_layouts_naming_the_argument():
    x = channels_last(RNG.standard_normal((1, 8, 5, 5)).astype(np.float32))
    w = RNG.standard_normal((4, 8, 3, 3)).astype(np.float32)
    nchw_out = np.empty((1, 4, 5, 5), np.float32)
    args = ((1, 1), (1, 1), (1, 1), (1, 1), 1)
    with pytest.raises(ValueError, match="out: expected a channels_last"):
        _C.conv2d_forward(x, w, None, nchw_out, *args, "im2col", False, None)
    with pytest.raises(ValueError, match="input: a channels_last array runs algo='im2col' only"):
        _C.conv2d_forward(x, w, None, channels_last(nchw_out), *args, "winograd_2x3", False, None)


def test_module_keeps_layout_and_gradients_check(one_thread):
    fastconv.manual_seed(0)
    conv = nn.Conv2d(8, 16, 3, stride=2, padding=1, dtype=np.float64)
    x = autograd.Tensor(channels_last(RNG.standard_normal((2, 8, 7, 6))), requires_grad=True)
    assert is_channels_last(conv(x).data)
    assert autograd.gradcheck(lambda t: conv(t), (x,))  # the analytic pass runs channels_last
    assert is_channels_last(x.grad.data)
