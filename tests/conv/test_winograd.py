"""Winograd F(2x2,3x3), F(4x4,3x3), F(2x2,5x5), F(4x4,5x5) and F(2x2,7x7): transform codelets against
their matrices (Lavin & Gray 2016, eq. 8), measured error bounds against the float64 direct
convolution, gradients, strided convolutions through their stride phases. F(4x4,2x2) has its own
file, test_winograd_2x2.py, on these bounds."""
from fractions import Fraction as Fr

import numpy as np
import pytest

import fastconv
from fastconv import _C, _runtime, ops
from fastconv.backend import to_device, to_host
from fastconv.ops.conv import conv2d_arguments
from tests.conv.conv_gradients import assert_gradients_match_numeric
from tests.reference import conv2d_reference

# B^T, G, A^T as Lavin & Gray give them; F(4,3) from the points 0, 1, -1, 2, -2, infinity.
MATRICES = {
    2: dict(
        BT=[[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
        G=[[1, 0, 0], [Fr(1, 2), Fr(1, 2), Fr(1, 2)], [Fr(1, 2), Fr(-1, 2), Fr(1, 2)], [0, 0, 1]],
        AT=[[1, 1, 1, 0], [0, 1, -1, -1]],
    ),
    4: dict(
        BT=[[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
            [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]],
        G=[[Fr(1, 4), 0, 0], [Fr(-1, 6), Fr(-1, 6), Fr(-1, 6)], [Fr(-1, 6), Fr(1, 6), Fr(-1, 6)],
           [Fr(1, 24), Fr(1, 12), Fr(1, 6)], [Fr(1, 24), Fr(-1, 12), Fr(1, 6)], [0, 0, 1]],
        AT=[[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
    ),
}

# Measured max|y - y_direct| / max|y| on standard-normal data (C = 64..128, 3x3), and the bound
# asserted here (about 5x the measurement). F(4x4) is ~20x less accurate than F(2x2): its
# transforms carry the factors 4, 5, 8 and 1/24 of the larger interpolation points.
#   winograd_2x3: float32 3.6e-7, float64 2.1e-15   -> bounds 2e-6, 1e-14
#   winograd_4x3: float32 7.6e-6, float64 1.6e-14   -> bounds 5e-5, 1e-13
# The weight gradient (the same transforms, transposed, summed over every tile) measured
# max|dw - dw_direct| / max|dw| inside the same bounds: 2x3 3.7e-7 / 1.1e-15, 4x3 6.6e-6 /
# 1.4e-14, at most, over (2, 64, 16, 16, 32), (1, 96, 11, 13, 20) and (8, 64, 28, 28, 64).
# Strided convolutions through their stride phases (STRIDED_CASES below and AlexNet's conv1 at
# 99x99) measured, forward / input gradient / weight gradient: 2x3 2.8e-7 / 4.9e-7 / 5.3e-7 and
# 1.4e-15 / 8.2e-16 / 1.2e-15, 4x3 4.6e-6 / 7.4e-6 / 3.5e-6 and 8.5e-15 / 1.5e-14 / 5.5e-15:
# inside the same bounds.
# F(2x2, 5x5) (same points as F(4x4)) measured, over every direction and the three shapes of
# the weight-gradient test plus (8, 64, 28, 28, 64): forward 3.9e-6 / 9.2e-15, input gradient
# 4.7e-6 / 1.1e-14, weight gradient 2.4e-5 / 2.5e-14  -> bounds 1e-4, 1e-13.
# F(2x2, 7x7) (eight points: F(4x4)'s and +-1/2), the same shapes: forward 6.3e-6 / 1.3e-14,
# input gradient 5.5e-6 / 1.2e-14, weight gradient 1.4e-5 / 2.3e-14  -> the same bounds.
# F(4x4, 5x5) (F(2x2, 7x7)'s eight points), the same shapes: forward 1.0e-5 / 1.1e-14, input
# gradient 7.6e-6 / 1.4e-14, weight gradient 8.3e-6 / 1.3e-14  -> the same bounds.
# F(4x4, 2x2) (five points: 0, 1, -1, 2, infinity), the four shapes above at 2x2 / stride 1 (padding
# 0 and 1) and 4x4 / stride 2 (padding 1 and 2): forward 5.8e-6 / 1.5e-14, input gradient 3.9e-6 /
# 7.9e-15, weight gradient 2.5e-6 / 4.9e-15  -> F(4x4, 3x3)'s bounds (tests/conv/test_winograd_2x2.py).
ERROR_BOUND = {("winograd_2x3", np.float32): 2e-6, ("winograd_2x3", np.float64): 1e-14,
               ("winograd_4x3", np.float32): 5e-5, ("winograd_4x3", np.float64): 1e-13,
               ("winograd_2x5", np.float32): 1e-4, ("winograd_2x5", np.float64): 1e-13,
               ("winograd_4x5", np.float32): 1e-4, ("winograd_4x5", np.float64): 1e-13,
               ("winograd_2x7", np.float32): 1e-4, ("winograd_2x7", np.float64): 1e-13,
               ("winograd_4x2", np.float32): 5e-5, ("winograd_4x2", np.float64): 1e-13}
ALGOS = ["winograd_2x3", "winograd_4x3"]  # the 3x3 ones; LARGE have their own tests below
LARGE = ["winograd_2x5", "winograd_4x5", "winograd_2x7"]
KERNEL = {"winograd_2x3": 3, "winograd_4x3": 3, "winograd_2x5": 5, "winograd_4x5": 5, "winograd_2x7": 7}
ALL_ALGOS = ALGOS + LARGE


def _matrix(rows):
    return np.array([[float(v) for v in row] for row in rows])


@pytest.mark.parametrize("tile", [2, 4])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_codelets_match_their_matrices(rng, tile, dtype):
    m = {name: _matrix(rows) for name, rows in MATRICES[tile].items()}
    alpha = tile + 2
    tol = 1e-6 if dtype == np.float32 else 1e-14
    d = rng.standard_normal((5, alpha, alpha)).astype(dtype)
    g = rng.standard_normal((5, 3, 3)).astype(dtype)
    expected = {"input": m["BT"] @ d @ m["BT"].T, "filter": m["G"] @ g @ m["G"].T, "output": m["AT"] @ d @ m["AT"].T}
    for which, tiles in (("input", d), ("filter", g), ("output", d)):
        out = _C.winograd_codelet(which, tile, tiles)
        assert out.dtype == dtype
        np.testing.assert_allclose(out, expected[which], rtol=0, atol=tol * 50)


@pytest.mark.parametrize("tile", [2, 4])
def test_transforms_compute_a_3x3_correlation(rng, tile):
    """A^T [(G g G^T) . (B^T d B)] A is the valid correlation of the tile d with g (eq. 8)."""
    d = rng.standard_normal((3, tile + 2, tile + 2))
    g = rng.standard_normal((3, 3, 3))
    product = _C.winograd_codelet("filter", tile, g) * _C.winograd_codelet("input", tile, d)
    y = _C.winograd_codelet("output", tile, product)
    direct = np.array([[[np.sum(d[i, p:p + 3, q:q + 3] * g[i]) for q in range(tile)] for p in range(tile)]
                       for i in range(3)])
    np.testing.assert_allclose(y, direct, rtol=1e-12, atol=1e-12)


def test_codelet_rejects_bad_arguments():
    with pytest.raises(ValueError, match="which: expected"):
        _C.winograd_codelet("middle", 2, np.zeros((1, 4, 4)))
    with pytest.raises(ValueError, match="tile: expected 2 or 4"):
        _C.winograd_codelet("input", 3, np.zeros((1, 5, 5)))
    with pytest.raises(ValueError, match=r"tiles: expected shape \(count, 6, 6\)"):
        _C.winograd_codelet("input", 4, np.zeros((1, 4, 4)))


@pytest.mark.parametrize("algo", ALL_ALGOS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(2, 64, 16, 16, 32), (1, 96, 11, 13, 20)])
def test_error_stays_inside_the_documented_bound(device, rng, algo, dtype, shape):
    n, c, h, w_, k = shape
    r = KERNEL[algo]
    x = rng.standard_normal((n, c, h, w_))
    w = rng.standard_normal((k, c, r, r))
    ref = conv2d_reference(x, w, None, (1, 1), (r // 2, r // 2), (r // 2, r // 2))
    y = to_host(ops.conv2d(to_device(x.astype(dtype), device), to_device(w.astype(dtype), device), padding=r // 2,
                           algo=algo))
    assert np.abs(y - ref).max() / np.abs(ref).max() <= ERROR_BOUND[algo, dtype]


@pytest.mark.parametrize("algo", ALL_ALGOS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(2, 64, 16, 16, 32), (1, 96, 11, 13, 20), (4, 32, 28, 27, 24)])
def test_weight_gradient_error_stays_inside_the_documented_bound(device, rng, algo, dtype, shape):
    n, c, h, w_, k = shape
    r = KERNEL[algo]
    x = rng.standard_normal((n, c, h, w_))
    gy = rng.standard_normal((n, k, h, w_))
    ref = ops.conv2d_weight(x, (k, c, r, r), gy, padding=r // 2, algo="im2col")
    x_dev, gy_dev = to_device(x.astype(dtype), device), to_device(gy.astype(dtype), device)
    dw = to_host(ops.conv2d_weight(x_dev, (k, c, r, r), gy_dev, padding=r // 2, algo=algo))
    assert dw.dtype == dtype
    assert np.abs(dw - ref).max() / np.abs(ref).max() <= ERROR_BOUND[algo, dtype]


# (N, C, H, W, K, padding, groups): odd sizes, padding wider than the kernel's half-width,
# groups, batch 1, channels off the vector width.
GRADIENT_CASES = [
    (1, 3, 7, 9, 5, 1, 1),
    (2, 4, 6, 5, 6, 2, 2),
    (1, 2, 5, 5, 3, (3, 0), 1),
    (1, 17, 4, 5, 3, 0, 1),
    (1, 6, 4, 4, 6, 1, 6),
]


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("case", GRADIENT_CASES)
def test_gradients_match_numeric(device, rng, algo, case):
    n, c, h, w_, k, padding, groups = case
    x = rng.standard_normal((n, c, h, w_))
    w = rng.standard_normal((k, c // groups, 3, 3))
    y = ops.conv2d(x, w, None, 1, padding, 1, groups, algo=algo)
    assert_gradients_match_numeric(algo, x, w, rng.standard_normal(y.shape), padding=padding, groups=groups,
                                   device=device)


# (N, C, H, W, K, padding, groups) for the 5x5 tilings, and with one more padding for F(2x2, 7x7)
# (the same output sizes): the same variety with their kernels.
GRADIENT_CASES_LARGE = [
    (1, 3, 7, 9, 5, 2, 1),
    (2, 4, 6, 5, 6, 3, 2),
    (1, 2, 5, 5, 3, (4, 0), 1),
    (1, 17, 6, 7, 3, 0, 1),
]


@pytest.mark.parametrize("algo", LARGE)
@pytest.mark.parametrize("case", GRADIENT_CASES_LARGE)
def test_large_kernel_gradients_match_numeric(device, rng, algo, case):
    n, c, h, w_, k, padding, groups = case
    r = KERNEL[algo]
    grow = (r - 5) // 2  # keeps the output of the 5x5 case's size
    padding = tuple(p + grow for p in padding) if isinstance(padding, tuple) else padding + grow
    x = rng.standard_normal((n, c, h, w_))
    w = rng.standard_normal((k, c // groups, r, r))
    y = to_host(ops.conv2d(to_device(x, device), to_device(w, device), None, 1, padding, 1, groups, algo=algo))
    ref = conv2d_reference(x, w, None, *conv2d_arguments(w.shape, 1, padding, 1, groups))
    np.testing.assert_allclose(y, ref, rtol=1e-10, atol=1e-10)
    assert_gradients_match_numeric(algo, x, w, rng.standard_normal(y.shape), padding=padding, groups=groups,
                                   device=device)


# (N, C, H, W, K, kernel, stride, padding): 9x9 and 13x13 at stride 2 have 5x5 and 7x7 phases.
STRIDED_LARGE = {"winograd_2x5": (2, 4, 19, 17, 5, 9, 2, 2), "winograd_4x5": (2, 4, 27, 25, 5, 9, 2, 2),
                 "winograd_2x7": (2, 4, 23, 21, 5, 13, 2, 3)}


@pytest.mark.parametrize("algo", LARGE)
def test_large_kernels_run_strided_ones_by_their_phases(rng, algo):
    n, c, h, w_, k, kernel, stride, padding = STRIDED_LARGE[algo]
    x, w = rng.standard_normal((n, c, h, w_)), rng.standard_normal((k, c, kernel, kernel))
    y = ops.conv2d(x.astype(np.float32), w.astype(np.float32), stride=stride, padding=padding, algo=algo)
    gy = rng.standard_normal(y.shape)
    got = (y,) + ops.conv2d_backward(x.astype(np.float32), w.astype(np.float32), gy.astype(np.float32), stride,
                                     padding, algo=algo)[:2]
    want = (ops.conv2d(x, w, stride=stride, padding=padding, algo="im2col"),) + \
        ops.conv2d_backward(x, w, gy, stride, padding, algo="im2col")[:2]
    for g, r in zip(got, want):
        assert g.dtype == np.float32 and g.shape == r.shape
        assert np.abs(g - r).max() / np.abs(r).max() <= ERROR_BOUND[algo, np.float32]


def test_fixed_rule_runs_7x7_layers_by_f2x7_but_their_weight_gradient():
    """F(2x2, 7x7) for the forward and the input gradient of a 7x7 layer with 32 channels; its
    weight gradient (slower than direct's there) goes on to the other rules."""
    x_shape, w_shape = (8, 32, 64, 64), (32, 32, 7, 7)
    args = conv2d_arguments(w_shape, 1, 3, 1, 1)
    candidates = ops.conv_algo.supported(x_shape, w_shape, args)
    pick = lambda direction: ops.conv_algo.heuristic(x_shape, w_shape, args, candidates, direction)
    assert pick("forward") == pick("input") == "winograd_2x7"
    assert pick("weight") != "winograd_2x7"


@pytest.mark.parametrize("r,size,algo", [(5, 9, "winograd_4x5"), (5, 2, "winograd_2x5"), (7, 9, "winograd_2x7")])
def test_winograd_picks_the_large_kernels_tiling(rng, r, size, algo):
    """'winograd' on a 5x5 kernel: F(4x4) where its tiles need fewer points for the output (a 9x9
    output: 9 tiles of 64 against 25 of 36), F(2x2) on a 2x2 output (one tile of 64 against 36)."""
    x = rng.standard_normal((1, 4, size, size)).astype(np.float32)
    w = rng.standard_normal((6, 4, r, r)).astype(np.float32)
    np.testing.assert_array_equal(ops.conv2d(x, w, padding=r // 2, algo="winograd"),
                                  ops.conv2d(x, w, padding=r // 2, algo=algo))


def test_fixed_rule_runs_5x5_layers_by_f4x5():
    """Every direction of conv5x5 (32 -> 64 channels, 32x32) by F(4x4, 5x5)."""
    x_shape, w_shape = (32, 32, 32, 32), (64, 32, 5, 5)
    args = conv2d_arguments(w_shape, 1, 2, 1, 1)
    candidates = ops.conv_algo.supported(x_shape, w_shape, args)
    for direction in ("forward", "input", "weight"):
        assert ops.conv_algo.heuristic(x_shape, w_shape, args, candidates, direction) == "winograd_4x5"


@pytest.mark.parametrize("algo", ALGOS)
def test_input_gradient_float32(device, rng, algo):
    x = rng.standard_normal((2, 24, 10, 9)).astype(np.float32)
    w = rng.standard_normal((20, 24, 3, 3)).astype(np.float32)
    gy = rng.standard_normal((2, 20, 10, 9)).astype(np.float32)
    dx = to_host(ops.conv2d_input(x.shape, to_device(w, device), to_device(gy, device), padding=1, algo=algo))
    ref = ops.conv2d_input(x.shape, w.astype(np.float64), gy.astype(np.float64), padding=1, algo="im2col")
    assert dx.dtype == np.float32
    assert np.abs(dx - ref).max() / np.abs(ref).max() <= ERROR_BOUND[algo, np.float32]


# float32 runs the transforms vectorised for the ISA (winograd_rows.h: 16 tiles a vector on
# AVX-512, 8 on AVX2 and in the weight gradient on both; the codelets on generic).
# (N, C, H, W, K): edge tiles clipped on both axes, tile counts that fill no whole vector (6
# tiles of F(4x4) in a 7x9 image; 2 images of 4x5 tiles of F(2x2)), and blocks of whole tiles only.
ISA_SHAPES = [(1, 5, 7, 9, 6), (2, 16, 13, 11, 20), (2, 8, 16, 16, 8)]


@pytest.mark.parametrize("algo", ALL_ALGOS)
@pytest.mark.parametrize("shape", ISA_SHAPES)
def test_float32_transforms_of_every_isa(isa, rng, algo, shape):
    n, c, h, w_, k = shape
    r = KERNEL[algo]
    x, w, b = rng.standard_normal((n, c, h, w_)), rng.standard_normal((k, c, r, r)), rng.standard_normal(k)
    gy = rng.standard_normal((n, k, h, w_))
    args = conv2d_arguments(w.shape, 1, r // 2, 1, 1)
    x32, w32, gy32 = x.astype(np.float32), w.astype(np.float32), gy.astype(np.float32)
    bound = ERROR_BOUND[algo, np.float32]

    def assert_near(got, ref):
        assert got.dtype == np.float32 and got.shape == ref.shape
        assert np.abs(got - ref).max() / np.abs(ref).max() <= bound

    ref = conv2d_reference(x, w, b, *args)
    assert_near(ops.conv2d(x32, w32, b.astype(np.float32), padding=r // 2, algo=algo), ref)
    relu = ops.conv2d(x32, w32, b.astype(np.float32), padding=r // 2, algo=algo, relu=True)
    assert_near(relu, np.maximum(ref, 0))
    assert (relu >= 0).all()
    assert_near(ops.conv2d_input(x.shape, w32, gy32, padding=r // 2, algo=algo),
                ops.conv2d_input(x.shape, w, gy, padding=r // 2, algo="im2col"))
    assert_near(ops.conv2d_weight(x32, w.shape, gy32, padding=r // 2, algo=algo),
                ops.conv2d_weight(x, w.shape, gy, padding=r // 2, algo="im2col"))


def assert_same_bits_on_avx2_and_avx512(run):
    """run() (a tuple of arrays) gives the same bits with either ISA's kernels; the ISA is restored."""
    results = {}
    previous = _runtime.get_isa()
    try:
        for isa in ("avx2", "avx512"):
            fastconv.set_isa(isa)
            results[isa] = run()
    finally:
        fastconv.set_isa(previous)
    for avx2, avx512 in zip(results["avx2"], results["avx512"]):
        np.testing.assert_array_equal(avx2, avx512)


@pytest.mark.skipif(not {"avx2", "avx512"} <= set(_runtime.supported_isas()), reason="needs AVX2 and AVX-512")
@pytest.mark.parametrize("algo", ALL_ALGOS)
def test_float32_forward_is_the_same_bits_on_avx2_and_avx512(rng, algo):
    """The vector transforms do the same operations in the same order on both ISAs, and the per-point
    products are bare micro-kernel calls over the whole channel depth, summed in order on both: the
    forward and the input gradient give the same bits. (The weight gradient's GEMM blocks its
    depth, the tiles, per ISA: it rounds differently past a block.)"""
    r = KERNEL[algo]
    x = rng.standard_normal((3, 24, 13, 11)).astype(np.float32)
    w = rng.standard_normal((20, 24, r, r)).astype(np.float32)
    b = rng.standard_normal(20).astype(np.float32)
    gy = rng.standard_normal((3, 20, 13, 11)).astype(np.float32)
    assert_same_bits_on_avx2_and_avx512(lambda: (ops.conv2d(x, w, b, padding=r // 2, algo=algo, relu=True),
                                                 ops.conv2d_input(x.shape, w, gy, padding=r // 2, algo=algo)))


# Strided convolutions run as the stride-1 convolution of their stride phases, with filters of
# ceil(kernel / stride) taps (csrc/conv/cpu/tiled_conv.h): (N, C, H, W, K, kernel, stride, padding,
# groups). AlexNet's conv1 in small (11x11 at stride 4), 5x5 and 6x6 at stride 2 (a phase filter
# with padded taps, and none), a stride along one axis only, groups, padding past the kernel's
# half-width, channels off the vector width.
STRIDED_CASES = [
    (2, 3, 39, 43, 16, (11, 11), (4, 4), (2, 1), 1),
    (1, 8, 17, 15, 12, (5, 5), (2, 2), 1, 1),
    (2, 6, 16, 13, 9, (5, 3), (2, 1), (3, 1), 3),
    (1, 5, 14, 14, 7, (6, 6), (2, 2), 4, 1),
    (1, 2, 21, 27, 5, (6, 6), (2, 2), 0, 1),  # the last row and column lie past every window
]


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", STRIDED_CASES)
def test_strided_error_stays_inside_the_documented_bound(device, rng, algo, dtype, case):
    n, c, h, w_, k, kernel, stride, padding, groups = case
    x = rng.standard_normal((n, c, h, w_))
    w = rng.standard_normal((k, c // groups) + kernel)
    args = conv2d_arguments(w.shape, stride, padding, 1, groups)
    ref = conv2d_reference(x, w, None, *args)
    x_dev, w_dev = to_device(x.astype(dtype), device), to_device(w.astype(dtype), device)
    y = to_host(ops.conv2d(x_dev, w_dev, None, stride, padding, 1, groups, algo=algo))
    assert y.dtype == dtype and y.shape == ref.shape
    assert np.abs(y - ref).max() / np.abs(ref).max() <= ERROR_BOUND[algo, dtype]
    gy = rng.standard_normal(ref.shape)
    dx_ref, dw_ref, _ = ops.conv2d_backward(x, w, gy, stride, padding, 1, groups, algo="im2col")
    grads = ops.conv2d_backward(x_dev, w_dev, to_device(gy.astype(dtype), device), stride, padding, 1, groups,
                                algo=algo)
    dx, dw = to_host(grads[0]), to_host(grads[1])
    assert dx.dtype == dw.dtype == dtype
    assert np.abs(dx - dx_ref).max() / np.abs(dx_ref).max() <= ERROR_BOUND[algo, dtype]
    assert np.abs(dw - dw_ref).max() / np.abs(dw_ref).max() <= ERROR_BOUND[algo, dtype]


@pytest.mark.parametrize("case", STRIDED_CASES)
def test_strided_gradients_match_numeric(device, rng, case):
    n, c, h, w_, k, kernel, stride, padding, groups = case
    x = rng.standard_normal((min(n, 1), c, min(h, 19), min(w_, 19)))
    w = rng.standard_normal((k, c // groups) + kernel)
    y = ops.conv2d(x, w, None, stride, padding, 1, groups, algo="winograd_4x3")
    assert_gradients_match_numeric("winograd_4x3", x, w, rng.standard_normal(y.shape), stride, padding, 1, groups,
                                   device=device)


def test_strided_choices():
    """Both gradients of a strided Winograd run its phases; 'winograd' and the deterministic rule
    take AlexNet's conv1 as the 3x3 convolution of its 48 phase channels."""
    args = conv2d_arguments((96, 3, 11, 11), 4, 0, 1, 1)
    x_shape, w_shape = (2, 3, 227, 227), (96, 3, 11, 11)
    kernel = lambda direction: _C.conv2d_gradient_kernel("winograd_4x3", direction, x_shape, w_shape, *args)
    assert kernel("input") == kernel("weight") == "winograd_4x3"
    assert ops.conv_algo.winograd_variant(x_shape, w_shape, args) == "winograd_4x3"
    candidates = ops.conv_algo.supported(x_shape, w_shape, args)
    assert ops.conv_algo.heuristic(x_shape, w_shape, args, candidates) == "winograd_4x3"


def test_strided_transform_is_not_cached_on_the_weight_alone(rng):
    """The cache keys a transform on the weight and groups: a strided call's phase filters would
    be taken for a 3x3's. The kernel makes them itself, and a second call matches the first."""
    x = rng.standard_normal((1, 3, 23, 23)).astype(np.float32)
    w = rng.standard_normal((4, 3, 11, 11)).astype(np.float32)
    ref = conv2d_reference(x.astype(np.float64), w.astype(np.float64), None, *conv2d_arguments(w.shape, 4, 0, 1, 1))
    for _ in range(2):
        y = ops.conv2d(x, w, stride=4, algo="winograd_4x3")
        assert np.abs(y - ref).max() / np.abs(ref).max() <= ERROR_BOUND["winograd_4x3", np.float32]


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("kwargs,why", [
    (dict(weight=(4, 3, 5, 5)), "needs a 3x3 kernel"),
    (dict(weight=(4, 3, 3, 1)), "needs a 3x3 kernel"),
    (dict(stride=2), "needs a 3x3 kernel, or a strided one whose stride phases are 3x3"),
    (dict(weight=(4, 3, 7, 7), stride=2), "needs a 3x3 kernel, or a strided one"),
    (dict(dilation=2), "and dilation 1"),
])
def test_unsupported_shapes_are_refused(algo, kwargs, why):
    kwargs = dict(kwargs)  # parametrised dicts are shared between cases
    w = np.zeros(kwargs.pop("weight", (4, 3, 3, 3)))
    with pytest.raises(ValueError, match=f"algo='{algo}' cannot run this convolution: .*{why}"):
        ops.conv2d(np.zeros((1, 3, 9, 9)), w, padding=1, algo=algo, **kwargs)


@pytest.mark.parametrize("algo", LARGE)
@pytest.mark.parametrize("kwargs,why", [
    (dict(weight=3), "needs a {r}x{r} kernel"),
    (dict(weight=(5, 3)), "needs a {r}x{r} kernel"),
    (dict(stride=2), "needs a {r}x{r} kernel, or a strided one whose stride phases are {r}x{r}"),
    (dict(dilation=2), "and dilation 1"),
])
def test_large_kernels_refuse_unsupported_shapes(algo, kwargs, why):
    kwargs, r = dict(kwargs), KERNEL[algo]
    kernel = kwargs.pop("weight", r)
    w = np.zeros((4, 3) + (kernel if isinstance(kernel, tuple) else (kernel, kernel)))
    with pytest.raises(ValueError, match=f"algo='{algo}' cannot run this convolution: .*{why.format(r=r)}"):
        ops.conv2d(np.zeros((1, 3, 16, 16)), w, padding=r // 2, algo=algo, **kwargs)
