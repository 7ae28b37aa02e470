"""conv_transpose2d's own algorithm, subpixel: the forward and the weight gradient as one
stride-1 convolution per output phase. Against the float64 scatter reference, torch and numerical
gradients, over geometries where the phases differ (odd sizes, stride 2 and 3, kernels smaller than
the stride, padding past the kernel, output_padding, groups)."""
import numpy as np
import pytest

import fastconv.functional as F
from fastconv import Tensor, ops
from fastconv.autograd import gradcheck
from fastconv.ops import conv_algo
from fastconv.ops.conv_transpose import subpixel_first
from tests.conv_transpose.cases import case_args, case_arrays, case_reference, check_gradients
from tests.functional_cases import algorithm_choices_made_by
from tests.reference import conv_transpose2d_reference

# (N, C_in, H, W, C_out/groups, R, S, stride, padding, output_padding, groups)
CASES = [
    (2, 4, 5, 6, 3, 4, 4, 2, 1, 0, 1),               # the 2x upsampling layer, odd sizes
    (1, 1, 1, 1, 1, 1, 1, 2, 0, 0, 1),               # one pixel, a phase without taps
    (2, 6, 7, 5, 2, 3, 5, 3, 2, 1, 2),               # stride 3, groups
    (3, 3, 4, 4, 2, 1, 3, (2, 1), (0, 1), (1, 0), 1),  # a 1-tap axis: half the phases empty
    (1, 2, 3, 3, 2, 2, 3, 3, 0, 2, 1),               # kernel below the stride, output_padding 2
    (2, 4, 5, 7, 3, 4, 4, 2, 1, 1, 2),
    (1, 2, 5, 5, 3, 5, 5, 2, 4, 1, 1),               # padding past the kernel's reach
    (2, 3, 6, 4, 1, 3, 3, 1, 1, 0, 3),               # stride 1: one phase; depthwise
    (1, 5, 2, 9, 4, 6, 2, (3, 2), (2, 0), (2, 1), 1),
    # From 16 output channels per group the forward reads one copy of the input per column shift
    (2, 5, 5, 7, 16, 4, 4, 2, 1, 0, 1),              # odd widths: phases 7 and 6 columns wide
    (1, 4, 3, 21, 17, 5, 3, (1, 3), (2, 1), (0, 2), 2),  # 21-column phases read at two column shifts
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_subpixel_forward_matches_scatter_reference(isa, rng, case, dtype):
    x, w, b = case_arrays(rng, case, dtype)
    ref = case_reference(x, w, b, case)
    ops.conv_transpose2d(np.full_like(x, np.nan), w, b, **case_args(case), algo="subpixel")  # poisons the scratch
    y = ops.conv_transpose2d(x, w, b, **case_args(case), algo="subpixel")
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert y.dtype == dtype and y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=tol, atol=tol * np.sqrt(w.size))


@pytest.mark.parametrize("case", CASES)
def test_subpixel_gradients_match_numeric(rng, case):
    check_gradients(rng, case, "subpixel")


@pytest.mark.parametrize("case", [CASES[2], CASES[5]])
def test_subpixel_weight_gradient_on_every_isa(isa, rng, case):
    # its channels-last planes are padded to the micro-kernel's tile width, which the ISA sets
    check_gradients(rng, case, "subpixel")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_subpixel_on_a_real_layer_against_torch(torch, rng, dtype):
    # Several bands per image and whole GEMM tiles: the 2x upsampling layer of the bench, smaller.
    x = rng.standard_normal((2, 24, 12, 10)).astype(dtype)
    w = (rng.standard_normal((24, 16, 4, 4)) * 0.05).astype(dtype)
    gy = rng.standard_normal((2, 16, 24, 20)).astype(dtype)
    tx, tw = (torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (x, w))
    ty = torch.nn.functional.conv_transpose2d(tx, tw, stride=2, padding=1)
    ty.backward(torch.tensor(gy, dtype=torch.float64))
    y = ops.conv_transpose2d(x, w, stride=2, padding=1, algo="subpixel")
    dx, dw, _ = ops.conv_transpose2d_backward(x, w, gy, stride=2, padding=1, algo="subpixel")
    tol = 1e-4 if dtype == np.float32 else 1e-10
    for ours, theirs in ((y, ty), (dx, tx.grad), (dw, tw.grad)):
        expected = theirs.detach().numpy()
        np.testing.assert_allclose(ours, expected, rtol=tol, atol=tol * np.abs(expected).max())


def test_subpixel_gradcheck_through_autograd(one_thread, rng):
    x = Tensor(rng.standard_normal((2, 2, 3, 4)), requires_grad=True)
    w = Tensor(rng.standard_normal((2, 3, 3, 3)), requires_grad=True)
    b = Tensor(rng.standard_normal(3), requires_grad=True)
    assert gradcheck(lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1,
                                                        algo="subpixel"), (x, w, b))


def test_subpixel_pinned_where_it_cannot_run_names_the_algorithm():
    x, w = np.zeros((1, 2, 4, 4)), np.zeros((2, 3, 3, 3))
    with pytest.raises(ValueError, match="algo='subpixel' cannot run .*dilation"):
        ops.conv_transpose2d(x, w, stride=2, dilation=2, algo="subpixel")
    with pytest.raises(ValueError, match="algo='subpixel' cannot run .*dilation"):
        ops.conv_transpose2d_backward(x, w, np.zeros((1, 3, 11, 11)), stride=2, dilation=2, algo="subpixel")
    one = np.ones((1, 1, 1, 1))
    with pytest.raises(ValueError, match="algo='subpixel' cannot run .*stride_h x stride_w"):
        ops.conv_transpose2d(one, one, stride=64, algo="subpixel")
    assert ops.conv_transpose2d(one, one, stride=64).shape == (1, 1, 1, 1)  # auto skips it


def test_an_unknown_algorithm_lists_subpixel_among_the_choices():
    with pytest.raises(ValueError, match="algo: expected .*'subpixel'.*got 'subpixels'"):
        ops.conv_transpose2d(np.zeros((1, 2, 4, 4)), np.zeros((2, 3, 3, 3)), algo="subpixels")


def test_auto_times_subpixel_against_the_conv2d_pick_and_skips_it_where_unsupported(rng):
    conv_algo.set_mode("benchmark")
    x, w = rng.standard_normal((2, 3, 7, 5)), rng.standard_normal((3, 2, 4, 3))
    made = algorithm_choices_made_by(lambda: ops.conv_transpose2d(x, w, stride=2, padding=1))
    transposed = [conv_algo.chosen()[key] for key in made if key[-1].startswith("input+subpixel")]
    assert len(transposed) == 1 and transposed[0] in ["subpixel"] + conv_algo.algorithms()
    dilated = algorithm_choices_made_by(lambda: ops.conv_transpose2d(x, w, stride=2, padding=1, dilation=2))
    assert [key[-1] for key in dilated] == ["input"]  # conv2d's kernels only
    np.testing.assert_allclose(ops.conv_transpose2d(x, w, stride=2, padding=1),
                               conv_transpose2d_reference(x, w, None, (2, 2), (1, 1)), rtol=1e-12, atol=1e-12)


def test_deterministic_mode_runs_subpixel_where_its_rule_says(rng):
    conv_algo.set_mode("deterministic")
    try:
        x, w = rng.standard_normal((1, 16, 16, 16)), rng.standard_normal((16, 16, 4, 4))
        made = algorithm_choices_made_by(lambda: ops.conv_transpose2d(x, w, stride=2, padding=1))
        forward = "input+subpixel+pixel_shuffle (subpixel first)"  # pixel_shuffle runs 4x4/2 too, not first
        assert [conv_algo.chosen()[k] for k in made if k[-1] == forward] == ["subpixel"]
        gy = rng.standard_normal((1, 16, 32, 32))
        made = algorithm_choices_made_by(lambda: ops.conv_transpose2d_backward(x, w, gy, stride=2, padding=1))
        pairs = [conv_algo.chosen()[k] for k in made  # "forward,weight"
                 if k[-1] == "transposed backward+pixel_shuffle"]
        assert [pair.split(",")[1] for pair in pairs] == ["subpixel"]
    finally:
        conv_algo.set_mode("benchmark")


@pytest.mark.parametrize("output_shape,weight_shape,stride,groups,expected", [
    ((16, 32, 32, 32), (64, 32, 4, 4), (2, 2), 1, True),     # phases 16 wide, 2x2 taps
    ((16, 128, 16, 16), (256, 128, 4, 4), (2, 2), 1, False),  # phases 8 wide
    ((4, 64, 64, 64), (128, 64, 2, 2), (2, 2), 1, False),     # 1x1 taps: a pointwise GEMM per phase
    ((8, 32, 32, 32), (32, 32, 3, 3), (1, 1), 1, False),      # stride 1: conv2d's Winograd
    ((16, 32, 32, 32), (32, 1, 4, 4), (2, 2), 32, False),     # depthwise: tiles mostly padding
])
def test_subpixel_first_rule(output_shape, weight_shape, stride, groups, expected):
    assert subpixel_first(output_shape, weight_shape, stride, groups) is expected
