"""gemm.cu's tiled GEMM (csrc/gemm/cuda/tiled_gemm.h), compiled for the host with real blocks of
256 threads sharing their tiles (tests/cuda/host_blocks.py) and run through its wrapper
(fastconv/cuda/gemm.py, algo="tiled"), against numpy's product in float64: sizes that are not
multiples of the tiles (128 x 128 for float32, 64 x 64 for float64), 1 and 0, transposed and
strided views, alpha and beta, broadcast batches, and a grid capped below the tile count."""
import numpy as np
import pytest

from fastconv.cuda import gemm, loader
from tests.cuda import host_blocks

# Every kernel of gemm.cu, so that this file and test_conv_algorithms_host.py share one host build.
KERNELS = [f"{op}_{suffix}" for op in ("gemm", "implicit_conv2d_forward")
           for suffix in ("f32", "f64", "tf32", "f16", "bf16")]
TOLERANCE = {np.float32: dict(rtol=1e-5, atol=1e-5), np.float64: dict(rtol=1e-13, atol=1e-13)}


@pytest.fixture
def host(monkeypatch):
    return host_blocks.install(monkeypatch, "gemm", KERNELS)


def _operand(rng, shape, dtype, transposed):
    """A (rows, cols) array of `dtype`; a transposed view of a C-contiguous one when asked."""
    if transposed:
        return rng.standard_normal(shape[::-1]).astype(dtype).T
    return rng.standard_normal(shape).astype(dtype)


def _reference(a, b, c, alpha, beta):
    product = a.astype(np.float64) @ b.astype(np.float64)
    return alpha * product + (beta * c.astype(np.float64) if beta != 0 else 0)


# (M, N, K): ragged in every dimension for both tiles, one row / column, K of one and of zero.
SHAPES = [(130, 67, 19), (1, 129, 9), (65, 1, 8), (3, 5, 1), (4, 6, 0)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_tiled_gemm_is_alpha_ab_plus_beta_c(host, rng, dtype, shape):
    m, n, k = shape
    for a_t, b_t in ((False, False), (True, True)) if m * n > 1000 else ((False, True), (True, False)):
        a, b = _operand(rng, (m, k), dtype, a_t), _operand(rng, (k, n), dtype, b_t)
        c0 = rng.standard_normal((m, n)).astype(dtype)
        c = c0.copy()
        gemm.gemm(a, b, c, 0.5, -2.0, algo="tiled")
        np.testing.assert_allclose(c, _reference(a, b, c0, 0.5, -2.0), **TOLERANCE[dtype])


def test_beta_zero_does_not_read_c(host, rng):
    """BLAS's rule: with beta == 0, C's old values (NaN here) do not reach the result."""
    a, b = rng.standard_normal((7, 5)), rng.standard_normal((5, 9))
    c = np.full((7, 9), np.nan)
    gemm.gemm(a, b, c, algo="tiled")
    np.testing.assert_allclose(c, a @ b, rtol=1e-13)


def test_an_empty_product_launches_nothing(host):
    c = np.empty((0, 4), np.float32)
    gemm.gemm(np.empty((0, 3), np.float32), np.empty((3, 4), np.float32), c, algo="tiled")
    assert host["gemm_f32"].launches == []


@pytest.mark.parametrize("a_shape, b_shape", [((3, 2, 66, 9), (2, 9, 5)), ((66, 9), (2, 3, 9, 5)),
                                              ((2, 1, 5, 4), (3, 4, 7))])
def test_matmul_broadcasts_its_batch_axes_as_numpy(host, rng, a_shape, b_shape):
    a, b = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
    got = gemm.matmul(a, b, algo="tiled")
    assert got.flags.c_contiguous
    np.testing.assert_allclose(got, np.matmul(a, b), rtol=1e-13, atol=1e-13)


def test_a_capped_grid_loops_over_the_tiles(host, rng, monkeypatch):
    """Fewer blocks than tiles (a grid capped at 2 blocks for 6 tiles): each block takes every
    second tile."""
    monkeypatch.setattr(loader, "MAX_BLOCKS", 2)
    a, b = rng.standard_normal((3, 130, 4)).astype(np.float32), rng.standard_normal((4, 10)).astype(np.float32)
    np.testing.assert_allclose(gemm.matmul(a, b, algo="tiled"), a @ b, **TOLERANCE[np.float32])
    assert host["gemm_f32"].launches == [((2, 1, 1), (256, 1, 1))]


def test_the_algorithm_switch(host, rng, monkeypatch):
    a, b = rng.standard_normal((4, 3)), rng.standard_normal((3, 5))
    monkeypatch.setattr(gemm, "_algorithm", "cublas")  # restored after the test
    gemm.set_algorithm("tiled")
    assert gemm.get_algorithm() == "tiled"
    np.testing.assert_allclose(gemm.matmul(a, b), a @ b, rtol=1e-13)
    assert len(host["gemm_f64"].launches) == 1
    gemm.matmul(a, b, algo="cublas")  # numpy's matmul on host arrays: no launch
    assert len(host["gemm_f64"].launches) == 1
    with pytest.raises(ValueError, match=r"algorithm: expected one of \('cublas', 'tiled'\), got 'cudnn'"):
        gemm.set_algorithm("cudnn")


@pytest.mark.parametrize("call, error, message", [
    (lambda: gemm.gemm(np.ones((2, 3)), np.ones((4, 2)), np.empty((2, 2)), algo="tiled"), ValueError,
     r"a \(2, 3\) and b \(4, 2\) are not \(M, K\) and \(K, N\)"),
    (lambda: gemm.gemm(np.ones((2, 3)), np.ones((3, 2), np.float32), np.empty((2, 2)), algo="tiled"), TypeError,
     "b: dtype float32 does not match float64"),
    (lambda: gemm.gemm(np.ones((2, 3)), np.ones((3, 2)), np.empty((2, 3)), algo="tiled"), ValueError,
     r"c: expected shape \(2, 2\)"),
    (lambda: gemm.matmul(np.ones((2, 2, 2, 2, 3)), np.ones((3, 2)), algo="tiled"), ValueError,
     "at most two batch axes"),
    (lambda: gemm.matmul(np.ones((2, 4, 3)), np.ones((3, 3, 5)), algo="tiled"), ValueError,
     r"batch axes of a \(2, 4, 3\) and b \(3, 3, 5\) do not broadcast"),
    (lambda: gemm.matmul(np.ones((2, 3)), np.ones((2, 3)), algo="magic"), ValueError,
     r"algo: expected one of \('cublas', 'tiled'\)"),
])
def test_bad_arguments_are_refused_before_any_launch(host, call, error, message):
    with pytest.raises(error, match=message):
        call()
    assert all(kernel.launches == [] for kernel in host.values())
