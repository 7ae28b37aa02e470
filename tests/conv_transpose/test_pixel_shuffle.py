"""conv_transpose2d's pixel_shuffle algorithm (one stride-1 convolution of phase-stacked filters,
then a pixel shuffle) and the pixel shuffle kernels under it. Against the float64 scatter
reference, numerical gradients, numpy's reshape-and-transpose and torch, over the geometries it
runs (kernel + output_padding - 2 padding == stride): windows of 1, 2 and 3 offsets, stride 2
and 3, odd and rectangular inputs; and its refusals."""
import numpy as np
import pytest

import fastconv.functional as F
from fastconv import Tensor, _C, ops
from fastconv.autograd import gradcheck
from fastconv.ops import conv_algo, conv_transpose, conv_weight_cache
from tests.conv_transpose.cases import case_args, case_arrays, case_reference, check_gradients
from tests.functional_cases import algorithm_choices_made_by
from tests.reference import conv2d_reference, conv_transpose2d_reference, pixel_shuffle_reference

# (N, C_in, H, W, C_out, R, S, stride, padding, output_padding, groups)
CASES = [
    (2, 4, 5, 6, 3, 4, 4, 2, 1, 0, 1),   # the 2x upsampling layer: offsets -1..1 (a 3x3 window), odd sizes
    (2, 3, 4, 3, 5, 3, 3, 2, 1, 1, 1),   # 3x3/2 with output_padding: offsets 0..1
    (1, 5, 3, 7, 2, 2, 2, 2, 0, 0, 1),   # 2x2/2: one offset, a pointwise convolution
    (2, 3, 4, 5, 2, 6, 6, 3, 2, 1, 1),   # stride 3
    (1, 2, 6, 4, 3, 5, 5, 2, 2, 1, 1),   # 5x5/2: offsets -1..1 again, padding 2
    (1, 3, 1, 1, 2, 4, 4, 2, 1, 0, 1),   # one pixel: every window offset but 0 is padding
    (2, 20, 9, 11, 17, 4, 4, 2, 1, 0, 1),  # channels past one micro-kernel tile, Winograd's tiles cut
]


@pytest.mark.parametrize("factor,shape", [(2, (2, 8, 3, 5)), (3, (1, 18, 4, 2)), (1, (2, 3, 2, 2)), (2, (1, 4, 1, 1))])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pixel_shuffle_and_unshuffle_are_torchs_rearrangements(rng, factor, shape, dtype):
    deep = rng.standard_normal(shape).astype(dtype)
    wide = np.full((shape[0], shape[1] // factor ** 2, shape[2] * factor, shape[3] * factor), np.nan, dtype)
    _C.pixel_shuffle(deep, wide, factor)
    np.testing.assert_array_equal(wide, pixel_shuffle_reference(deep, factor))
    back = np.full_like(deep, np.nan)
    _C.pixel_unshuffle(wide, back, factor)
    np.testing.assert_array_equal(back, deep)


def test_pixel_shuffle_refuses_what_does_not_fit():
    deep, wide = np.zeros((1, 8, 3, 3), np.float32), np.zeros((1, 2, 6, 6), np.float32)
    with pytest.raises(ValueError, match="src: expected channels divisible by factor\\^2 = 9, got 8"):
        _C.pixel_shuffle(deep, wide, 3)
    with pytest.raises(ValueError, match="factor: expected an integer >= 1, got 0"):
        _C.pixel_shuffle(deep, wide, 0)
    with pytest.raises(ValueError, match="dst: expected shape \\(1, 2, 6, 6\\), got \\(1, 2, 6, 5\\)"):
        _C.pixel_shuffle(deep, np.zeros((1, 2, 6, 5), np.float32), 2)
    with pytest.raises(ValueError, match="src: expected height and width divisible by factor = 4"):
        _C.pixel_unshuffle(wide, deep, 4)
    with pytest.raises(ValueError, match="factor\\^2 overflows"):
        _C.pixel_shuffle(deep, wide, 2 ** 40)
    with pytest.raises((TypeError, ValueError), match="dst"):
        _C.pixel_shuffle(deep, wide.astype(np.float64), 2)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_matches_scatter_reference(isa, rng, case, dtype):
    x, w, b = case_arrays(rng, case, dtype)
    ref = case_reference(x, w, b, case)
    y = ops.conv_transpose2d(x, w, b, **case_args(case), algo="pixel_shuffle")
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert y.dtype == dtype and y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=tol, atol=tol * np.sqrt(w.size))


@pytest.mark.parametrize("case", CASES[:-1])  # the last one's numeric gradient takes half a minute
def test_gradients_match_numeric(rng, case):
    check_gradients(rng, case, "pixel_shuffle")


def test_gradcheck_through_autograd(one_thread, rng):
    x = Tensor(rng.standard_normal((2, 2, 3, 4)), requires_grad=True)
    w = Tensor(rng.standard_normal((2, 3, 4, 4)), requires_grad=True)
    b = Tensor(rng.standard_normal(3), requires_grad=True)
    assert gradcheck(lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, algo="pixel_shuffle"), (x, w, b))


def test_an_in_place_weight_change_is_seen(rng):
    """The stacked filters are kept per weight array: a change of its bytes (an optimiser step)
    restacks them, and a new array of another shape at the same address gets its own."""
    conv_weight_cache.clear()
    x, w = rng.standard_normal((1, 3, 4, 4)), rng.standard_normal((3, 2, 4, 4))
    first = ops.conv_transpose2d(x, w, stride=2, padding=1, algo="pixel_shuffle")
    w *= -0.5
    second = ops.conv_transpose2d(x, w, stride=2, padding=1, algo="pixel_shuffle")
    np.testing.assert_allclose(second, -0.5 * first, rtol=1e-12, atol=1e-12)
    w[0, 0, 0, 0] += 1.0  # one tap: its phase only
    ref = conv_transpose2d_reference(x, w, None, (2, 2), (1, 1))
    np.testing.assert_allclose(ops.conv_transpose2d(x, w, stride=2, padding=1, algo="pixel_shuffle"), ref,
                               rtol=1e-12, atol=1e-12)
    narrower = w[:, :1].copy()
    np.testing.assert_allclose(ops.conv_transpose2d(x, narrower, stride=2, padding=1, algo="pixel_shuffle"),
                               ref[:, :1], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_stacked_filters_live_in_conv2ds_weight_cache(rng, dtype):
    """With any transforms of them, under that cache's one budget (the least recently used
    weight's go first), and made per call when the cache is off."""
    x = rng.standard_normal((2, 4, 5, 6)).astype(dtype)
    weights = [rng.standard_normal((4, 3, 4, 4)).astype(dtype) for _ in range(3)]
    refs = [conv_transpose2d_reference(x, w, None, (2, 2), (1, 1)) for w in weights]
    tol = 1e-4 if dtype == np.float32 else 1e-10
    budget = conv_weight_cache.budget_bytes()
    conv_weight_cache.clear()
    try:
        ops.conv_transpose2d(x, weights[0], stride=2, padding=1, algo="pixel_shuffle")
        one = conv_weight_cache.cached_bytes()
        assert one >= weights[0].nbytes * 3  # the weight's copy and its stacked filters (2.25x its size)
        conv_weight_cache.set_budget(int(2.5 * one))
        for w, ref in zip(weights, refs):
            y = ops.conv_transpose2d(x, w, stride=2, padding=1, algo="pixel_shuffle")
            np.testing.assert_allclose(y, ref, rtol=tol, atol=tol * np.abs(ref).max())
        assert conv_weight_cache.cached_bytes() == 2 * one  # the first weight's entry went
        conv_weight_cache.set_budget(0)
        assert conv_weight_cache.cached_bytes() == 0
        for w, ref in zip(weights, refs):
            y = ops.conv_transpose2d(x, w, stride=2, padding=1, algo="pixel_shuffle")
            np.testing.assert_allclose(y, ref, rtol=tol, atol=tol * np.abs(ref).max())
    finally:
        conv_weight_cache.set_budget(budget)
        conv_weight_cache.clear()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_input_gradient_alone_reads_grad_outputs_phases(rng, dtype):
    """auto's usual backward pair is pixel_shuffle's input gradient with another weight-gradient
    kernel: Winograd then reads grad_output's phases in place, with no unshuffled copy."""
    from fastconv.ops import conv_transpose_shuffle
    x = rng.standard_normal((2, 32, 7, 9)).astype(dtype)  # channels enough for Winograd's rule
    w = (rng.standard_normal((32, 16, 4, 4)) * 0.1).astype(dtype)
    dy = rng.standard_normal((2, 16, 14, 18)).astype(dtype)
    args = ((2, 2), (1, 1), (0, 0), (1, 1), 1)
    geometry = conv_transpose_shuffle._geometry(w.shape, args)
    assert conv_transpose_shuffle._inner_algorithm(x.shape, geometry.stacked_shape, geometry.conv_args,
                                                   "input").startswith("winograd")
    dx = np.full_like(x, np.nan)
    conv_transpose_shuffle.backward(_C, x, w, dy, dx, None, None, args)
    ref = conv2d_reference(dy, w, None, (2, 2), (1, 1), (1, 1))  # a transposed conv's input gradient
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(dx, ref, rtol=tol, atol=tol * np.abs(ref).max())


def test_stacked_filters_of_a_wide_layer(rng):
    """Stacked filters of 576 KiB (as large as the output cache's blocks), kept and remade."""
    x = rng.standard_normal((1, 64, 6, 6)).astype(np.float32)
    w = (rng.standard_normal((64, 64, 4, 4)) * 0.05).astype(np.float32)
    for _ in range(2):
        ref = conv_transpose2d_reference(x, w, None, (2, 2), (1, 1))
        y = ops.conv_transpose2d(x, w, stride=2, padding=1, algo="pixel_shuffle")
        np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
        w *= -1.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_on_a_real_layer_against_torch(torch, rng, dtype):
    # The bench's 2x upsampling layer, smaller: several Winograd tiles per image, the bias fused.
    x = rng.standard_normal((2, 24, 12, 10)).astype(dtype)
    w = (rng.standard_normal((24, 16, 4, 4)) * 0.05).astype(dtype)
    b = rng.standard_normal(16).astype(dtype)
    gy = rng.standard_normal((2, 16, 24, 20)).astype(dtype)
    tx, tw, tb = (torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.conv_transpose2d(tx, tw, tb, stride=2, padding=1)
    ty.backward(torch.tensor(gy, dtype=torch.float64))
    y = ops.conv_transpose2d(x, w, b, stride=2, padding=1, algo="pixel_shuffle")
    dx, dw, db = ops.conv_transpose2d_backward(x, w, gy, stride=2, padding=1, algo="pixel_shuffle")
    tol = 1e-4 if dtype == np.float32 else 1e-10
    for ours, theirs in ((y, ty), (dx, tx.grad), (dw, tw.grad), (db, tb.grad)):
        expected = theirs.detach().numpy()
        np.testing.assert_allclose(ours, expected, rtol=tol, atol=tol * np.abs(expected).max())


@pytest.mark.parametrize("kwargs,reason", [
    (dict(stride=2, padding=1, dilation=2), "groups=1 and dilation=1"),
    (dict(stride=2, padding=1, groups=2), "groups=1 and dilation=1"),
    (dict(stride=1, padding=1), "one stride above 1"),
    (dict(stride=(2, 3), padding=1), "one stride above 1"),
    (dict(stride=2, padding=0), "kernel \\+ output_padding - 2 \\* padding == stride"),
])
def test_pinned_where_it_cannot_run_names_the_reason(kwargs, reason):
    x, w = np.zeros((1, 4, 5, 5)), np.zeros((4, 2, 4, 4))
    with pytest.raises(ValueError, match=f"algo='pixel_shuffle' cannot run this transposed convolution: .*{reason}"):
        ops.conv_transpose2d(x, w, **kwargs, algo="pixel_shuffle")
    gy = np.zeros(ops.conv_transpose2d(x, w, **kwargs, algo="im2col").shape)
    with pytest.raises(ValueError, match=f"algo='pixel_shuffle' cannot run .*{reason}"):
        ops.conv_transpose2d_backward(x, w, gy, **kwargs, algo="pixel_shuffle")


def test_auto_times_it_where_it_runs_and_not_elsewhere(rng):
    x, w = rng.standard_normal((1, 4, 5, 5)), rng.standard_normal((4, 2, 4, 4))
    made = algorithm_choices_made_by(lambda: ops.conv_transpose2d(x, w, stride=2, padding=1))
    assert [k[-1] for k in made] == ["input+subpixel+pixel_shuffle"]
    made = algorithm_choices_made_by(lambda: ops.conv_transpose2d(x, w, stride=2, padding=0))
    assert [k[-1] for k in made] == ["input+subpixel"]
    assert "pixel_shuffle" in conv_transpose.algorithms() and "pixel_shuffle" not in conv_algo.algorithms()
