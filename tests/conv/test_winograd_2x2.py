"""Winograd F(4x4, 2x2) ("winograd_4x2"): 2x2 kernels, and the 4x4 and 3x3 kernels at stride 2 whose
stride phases are 2x2, against the float64 direct convolution in every direction, on every ISA's
vector transforms; numeric gradients; which shapes it refuses and when auto times it."""
import numpy as np
import pytest

from fastconv import _runtime, ops
from fastconv.ops import conv_algo
from fastconv.ops.conv import conv2d_arguments
from tests.conv.conv_gradients import assert_gradients_match_numeric
from tests.conv.test_winograd import ERROR_BOUND, assert_same_bits_on_avx2_and_avx512
from tests.reference import conv2d_reference

ALGO = "winograd_4x2"

# (kernel, stride, padding): a 2x2 kernel with and without padding, 4x4 at stride 2 (a transposed
# convolution's 4x4/2 upsampling, as its gradients see it; padding 1 and 2), 3x3 at stride 2 (phases
# with zero taps), a stride along one axis only.
GEOMETRIES = [(2, 1, 0), (2, 1, 1), (4, 2, 1), (4, 2, 2), (3, 2, 1), ((4, 2), (2, 1), (1, 0))]
# (N, C, H, W, K): tiles clipped by the output's edge on both axes, channels off the vector width.
SHAPES = [(2, 16, 16, 16, 12), (1, 24, 11, 13, 20), (3, 5, 9, 7, 6)]


def _pair(v):
    return v if isinstance(v, tuple) else (v, v)


def _relative_error(got, ref):
    return np.abs(got - ref).max() / np.abs(ref).max()


def _directions(x, w, gy, stride, padding, algo):
    """(y, dx, dw) of conv2d with `algo`."""
    y = ops.conv2d(x, w, stride=stride, padding=padding, algo=algo)
    dx, dw, _ = ops.conv2d_backward(x, w, gy, stride, padding, algo=algo)
    return y, dx, dw


def _case(rng, shape, geometry):
    n, c, h, w_, k = shape
    kernel, stride, padding = geometry
    x = rng.standard_normal((n, c, h, w_))
    w = rng.standard_normal((k, c) + _pair(kernel))
    args = conv2d_arguments(w.shape, stride, padding, 1, 1)
    gy = rng.standard_normal(conv2d_reference(x, w, None, *args).shape)
    return x, w, gy, stride, padding


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("geometry", GEOMETRIES)
@pytest.mark.parametrize("shape", SHAPES)
def test_every_direction_stays_inside_the_documented_bound(rng, dtype, geometry, shape):
    x, w, gy, stride, padding = _case(rng, shape, geometry)
    args = conv2d_arguments(w.shape, stride, padding, 1, 1)
    ref = (conv2d_reference(x, w, None, *args),) + ops.conv2d_backward(x, w, gy, stride, padding, algo="im2col")[:2]
    got = _directions(*(a.astype(dtype) for a in (x, w, gy)), stride, padding, ALGO)
    for g, r in zip(got, ref):
        assert g.dtype == dtype and g.shape == r.shape
        assert _relative_error(g, r) <= ERROR_BOUND[ALGO, dtype]


@pytest.mark.parametrize("geometry", GEOMETRIES)
@pytest.mark.parametrize("shape", SHAPES)
def test_float32_transforms_of_every_isa(isa, rng, geometry, shape):
    """The vector transforms of each ISA (winograd_rows.h: AVX-512's 16 lanes, AVX2's 8, the
    weight gradient's 8 on both; the codelets on generic) and the stride-2 phase copies."""
    x, w, gy, stride, padding = _case(rng, shape, geometry)
    ref = _directions(x, w, gy, stride, padding, "im2col")
    got = _directions(*(a.astype(np.float32) for a in (x, w, gy)), stride, padding, ALGO)
    for g, r in zip(got, ref):
        assert g.dtype == np.float32 and _relative_error(g, r) <= ERROR_BOUND[ALGO, np.float32]


def test_bias_and_relu_fused(rng):
    x = rng.standard_normal((2, 8, 12, 10))
    w = rng.standard_normal((6, 8, 4, 4))
    b = rng.standard_normal(6)
    args = conv2d_arguments(w.shape, 2, 1, 1, 1)
    y = ops.conv2d(x, w, b, stride=2, padding=1, algo=ALGO, relu=True)
    np.testing.assert_allclose(y, np.maximum(conv2d_reference(x, w, b, *args), 0), rtol=1e-10, atol=1e-10)


@pytest.mark.skipif(not {"avx2", "avx512"} <= set(_runtime.supported_isas()), reason="needs AVX2 and AVX-512")
def test_float32_forward_is_the_same_bits_on_avx2_and_avx512(rng):
    """As for the other tilings (test_winograd.py): the same operations in the same order."""
    x = rng.standard_normal((3, 24, 13, 11)).astype(np.float32)
    w = rng.standard_normal((20, 24, 2, 2)).astype(np.float32)
    gy = rng.standard_normal((3, 20, 12, 10)).astype(np.float32)
    assert_same_bits_on_avx2_and_avx512(lambda: (ops.conv2d(x, w, algo=ALGO),
                                                 ops.conv2d_input(x.shape, w, gy, algo=ALGO)))


# (N, C, H, W, K, kernel, stride, padding, groups): padding past the kernel, groups, batch 1.
GRADIENT_CASES = [
    (1, 3, 7, 9, 5, 2, 1, 1, 1),
    (2, 4, 6, 5, 6, 2, 1, (2, 0), 2),
    (1, 2, 9, 8, 3, 4, 2, 1, 1),
    (2, 3, 7, 7, 2, 3, 2, 1, 1),
]


@pytest.mark.parametrize("case", GRADIENT_CASES)
def test_gradients_match_numeric(rng, case):
    n, c, h, w_, k, kernel, stride, padding, groups = case
    x = rng.standard_normal((n, c, h, w_))
    w = rng.standard_normal((k, c // groups, kernel, kernel))
    y = ops.conv2d(x, w, None, stride, padding, 1, groups, algo=ALGO)
    assert_gradients_match_numeric(ALGO, x, w, rng.standard_normal(y.shape), stride=stride, padding=padding,
                                   groups=groups, device="cpu")


def test_conv_transpose2d_runs_it_pinned(rng):
    """A 4x4/2 transposed convolution pinned to it: its forward (the input gradient of the
    equivalent convolution, through the phases) and both gradients against float64 im2col."""
    x = rng.standard_normal((2, 8, 7, 9))
    w = rng.standard_normal((8, 6, 4, 4))
    ref = ops.conv_transpose2d(x, w, stride=2, padding=1, algo="im2col")
    gy = rng.standard_normal(ref.shape)
    ref_dx, ref_dw, _ = ops.conv_transpose2d_backward(x, w, gy, stride=2, padding=1, algo="im2col")
    x32, w32, gy32 = (a.astype(np.float32) for a in (x, w, gy))
    y = ops.conv_transpose2d(x32, w32, stride=2, padding=1, algo=ALGO)
    dx, dw, _ = ops.conv_transpose2d_backward(x32, w32, gy32, stride=2, padding=1, algo=ALGO)
    for g, r in ((y, ref), (dx, ref_dx), (dw, ref_dw)):
        assert _relative_error(g, r) <= ERROR_BOUND[ALGO, np.float32]


@pytest.mark.parametrize("kwargs,why", [
    (dict(weight=(3, 3)), "needs a 2x2 kernel"),
    (dict(weight=(2, 3)), "needs a 2x2 kernel"),
    (dict(weight=(5, 5), stride=2), "or a strided one whose stride phases are 2x2"),
    (dict(weight=(2, 2), dilation=2), "and dilation 1"),
])
def test_unsupported_shapes_are_refused(kwargs, why):
    kwargs = dict(kwargs)
    w = np.zeros((4, 3) + kwargs.pop("weight"))
    with pytest.raises(ValueError, match=f"algo='{ALGO}' cannot run this convolution: .*{why}"):
        ops.conv2d(np.zeros((1, 3, 16, 16)), w, algo=ALGO, **kwargs)


@pytest.mark.parametrize("kernel,stride", [(2, 1), (4, 2)])
def test_winograd_picks_it_for_2x2_phases(rng, kernel, stride):
    x = rng.standard_normal((1, 4, 12, 12)).astype(np.float32)
    w = rng.standard_normal((6, 4, kernel, kernel)).astype(np.float32)
    np.testing.assert_array_equal(ops.conv2d(x, w, stride=stride, algo="winograd"),
                                  ops.conv2d(x, w, stride=stride, algo=ALGO))


def test_auto_times_it_only_where_the_stride_divides_the_kernel():
    """4x4 at stride 2: every phase tap is the kernel's. 3x3 at stride 2: 7 of the phases' 16 taps
    are zero, and it is left out of auto's candidates."""
    def likely(kernel):
        x_shape, w_shape = (8, 32, 16, 16), (32, 32, kernel, kernel)
        args = conv2d_arguments(w_shape, 2, 1, 1, 1)
        return conv_algo.likely_candidates(x_shape, w_shape, args, conv_algo.supported(x_shape, w_shape, args))

    assert ALGO in likely(4)
    assert ALGO not in likely(3) and ALGO in conv_algo.supported((8, 32, 16, 16), (32, 32, 3, 3),
                                                                conv2d_arguments((32, 32, 3, 3), 2, 1, 1, 1))
