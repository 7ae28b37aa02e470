import numpy as np
import pytest

from fastconv import ops
from fastconv.backend import DeviceError, to_device, to_host

# (1030, 520, 1060) is larger than one cache block in every dimension (rows of A past an A block,
# columns past a B block that fills half of L2, depth past a K slice), so that each A micro-panel
# sweeps several B blocks and the blocks' edges meet inside the product; (701, 300, 130) has more
# rows than columns and work for two threads, which then split its rows, not its columns.
SHAPES = [(1, 1, 1), (5, 3, 7), (13, 33, 31), (64, 64, 64), (97, 129, 65), (12, 400, 32), (300, 17, 513),
          (1030, 520, 1060), (701, 300, 130)]


@pytest.mark.parametrize("m,k,n", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, False), (False, True), (True, True)])
def test_matmul_matches_float64_reference(isa, device, rng, m, k, n, dtype, trans_a, trans_b):
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    a_op, b_op = (a.T if trans_a else a), (b.T if trans_b else b)
    out = to_device(np.full((m, n), np.nan, dtype=dtype), device)  # NaN poison: every element must be written
    a_dev, b_dev = to_device(a, device), to_device(b, device)
    ops.matmul(a_dev.T if trans_a else a_dev, b_dev.T if trans_b else b_dev, out=out)
    ref = a_op.astype(np.float64) @ b_op.astype(np.float64)
    tol = (1e-5 if dtype == np.float32 else 1e-13) * np.sqrt(k) * max(1.0, np.abs(ref).max())
    np.testing.assert_allclose(to_host(out), ref, rtol=0, atol=tol)


# Products whose operands both lie along the depth (A's rows and B's columns contiguous: a @ b.T of
# two row-major arrays) with a depth long for their output, a Winograd weight gradient's per-point
# product, run without packing, lanes along the depth: ragged tiles in both dimensions, depths that
# end in part of a vector, a wide output, and beside them products just past the rule (depth 127;
# 64 x 64 over 200), which are packed.
DOT_SHAPES = [(16, 256, 16), (13, 300, 7), (1, 512, 1), (3, 259, 4), (32, 1000, 32), (33, 260, 32), (5, 257, 34),
              (48, 1200, 300), (16, 128, 16), (16, 127, 16), (64, 200, 64)]


@pytest.mark.parametrize("m,k,n", DOT_SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_of_operands_along_a_long_depth(isa, rng, m, k, n, dtype):
    a = rng.standard_normal((m, k)).astype(dtype)
    b_rows = rng.standard_normal((n, k)).astype(dtype)
    out = np.full((m, n), np.nan, dtype=dtype)
    ops.matmul(a, b_rows.T, out=out)
    ref = a.astype(np.float64) @ b_rows.T.astype(np.float64)
    tol = (1e-5 if dtype == np.float32 else 1e-13) * np.sqrt(k) * max(1.0, np.abs(ref).max())
    np.testing.assert_allclose(out, ref, rtol=0, atol=tol)


@pytest.mark.parametrize("beta", [0.0, 0.5])
@pytest.mark.parametrize("c_order", ["C", "F"])
def test_gemm_scales_and_adds_along_a_long_depth(isa, rng, beta, c_order):
    # c = alpha * a @ b + beta * c; with beta 0 c's old values (NaN here) are not read. C's rows
    # contiguous or its columns: the dot tiles store either.
    from fastconv import _C
    a, b_rows = rng.standard_normal((7, 300)), rng.standard_normal((10, 300))
    c0 = rng.standard_normal((7, 10)) if beta else np.full((7, 10), np.nan)
    c = c0.copy(order=c_order)
    _C.gemm(a, b_rows.T, c, -2.0, beta)
    expected = -2.0 * (a @ b_rows.T) + (beta * c0 if beta else 0.0)
    np.testing.assert_allclose(c, expected, rtol=1e-12, atol=1e-12)


def test_matmul_strided_and_negative_stride_views(device, rng):
    a = rng.standard_normal((40, 90))
    b = rng.standard_normal((90, 50))
    a_view, b_view = a[::2, ::-3], b[1::3, ::2]
    ours = ops.matmul(to_device(a, device)[::2, ::-3], to_device(b, device)[1::3, ::2])  # views taken on the device
    np.testing.assert_allclose(to_host(ours), a_view @ b_view, rtol=1e-12, atol=1e-12)


def test_matmul_empty_and_zero_depth(device):
    zeros = lambda *shape: to_device(np.zeros(shape), device)
    assert ops.matmul(zeros(0, 3), zeros(3, 4)).shape == (0, 4)
    np.testing.assert_array_equal(to_host(ops.matmul(zeros(2, 0), zeros(0, 3))), np.zeros((2, 3)))


def test_matmul_large_uses_every_block(device, rng):
    # Larger than one cache block in every dimension, with ragged edges.
    a = rng.standard_normal((3100, 530)).astype(np.float32)
    b = rng.standard_normal((530, 1000)).astype(np.float32)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    np.testing.assert_allclose(to_host(ops.matmul(to_device(a, device), to_device(b, device))), ref, rtol=0, atol=1e-3)


@pytest.mark.parametrize("a,b,error,match", [
    (np.ones((2, 3)), np.ones((4, 2)), ValueError, "a.shape\\[1\\] must equal b.shape\\[0\\]"),
    (np.ones((2, 3)), np.ones(3), ValueError, "b: expected a 2-d array"),
    (np.ones((2, 3), np.float32), np.ones((3, 2)), TypeError, "does not match"),
    (np.ones((2, 3), np.int64), np.ones((3, 2)), TypeError, "a: expected a float32 or float64"),
])
def test_matmul_bad_input(a, b, error, match):
    with pytest.raises(error, match=match):
        ops.matmul(a, b)


@pytest.mark.parametrize("position", ["a", "b", "out"])
def test_matmul_refuses_a_device_array_before_any_kernel_runs(cuda_array, position):
    arrays = dict(a=np.ones((2, 3)), b=np.ones((3, 2)), out=np.zeros((2, 2)))
    arrays[position] = cuda_array
    with pytest.raises(DeviceError, match="^matmul: fastconv has no CUDA kernels"):
        ops.matmul(**arrays)
