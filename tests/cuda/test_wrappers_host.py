"""The CUDA library's batch norm, pooling, conv2d and gemm wrappers (fastconv/cuda/{norm,pool,conv,
gemm}.py) run end to end on the CPU: norm.cu, pool.cu and conv.cu compiled for the host, one block
of one thread (tests/cuda/host_kernels.py), called with numpy arrays exactly as the ops call
fastconv._C, and compared with fastconv._C. This checks each wrapper's checks, its argument
lists against the kernels' parameters, its launches and its GEMMs; the block reductions run as
one thread's sums (their tree over 256 threads runs only on a GPU)."""
import numpy as np
import pytest

from fastconv import _C
from fastconv.cuda import conv as cuda_conv
from fastconv.cuda import gemm as cuda_gemm
from fastconv.cuda import norm as cuda_norm
from fastconv.cuda import pool as cuda_pool
from tests.cuda import host_kernels

RTOL = {np.float32: 1e-5, np.float64: 1e-12}


@pytest.fixture
def host(monkeypatch):
    for family in ("norm", "pool", "conv"):
        host_kernels.install(monkeypatch, family, prelude=host_kernels.SHARED_MEMORY_SHIM)


def _both(function_name, module, make_arrays, outputs, *scalars):
    """Runs _C's and the CUDA library's `function_name` on fresh copies of the same arrays; returns
    the (CPU, CUDA-library) values of the arrays at positions `outputs`."""
    results = []
    for library in (_C, module):
        arrays = make_arrays()
        getattr(library, function_name)(*arrays, *scalars)
        results.append([arrays[i] for i in outputs])
    return results


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("residual, affine, relu, min_range", [(True, True, True, 4096), (False, False, False, 7)])
def test_batch_norm_wrappers_match_the_cpu(host, monkeypatch, rng, dtype, residual, affine, relu, min_range):
    monkeypatch.setattr(cuda_norm, "MIN_RANGE", min_range)  # 7: 12 uneven ranges per channel of 90 values
    shape, c = (3, 4, 5, 6), 4
    x = (rng.standard_normal(shape) * 2 + 4).astype(dtype)
    z = rng.standard_normal(shape).astype(dtype) if residual else None
    gamma = rng.uniform(0.5, 2, c).astype(dtype) if affine else None
    beta = rng.standard_normal(c).astype(dtype) if affine else None
    rm, rv = rng.standard_normal(c).astype(dtype), rng.uniform(0.5, 2, c).astype(dtype)

    def train_arrays():
        return [x, z, gamma, beta, rm.copy(), rv.copy(), np.empty_like(x), np.empty(c, dtype), np.empty(c, dtype)]

    cpu, ours = _both("batch_norm_train_forward", cuda_norm, train_arrays, (4, 5, 6, 7, 8), 0.1, 1e-5, relu)
    for got, want in zip(ours, cpu):
        np.testing.assert_allclose(got, want, rtol=RTOL[dtype] * 10, atol=RTOL[dtype] * 10)

    def eval_arrays():
        return [x, z, gamma, beta, rm, rv, np.empty_like(x)]

    cpu, ours = _both("batch_norm_eval_forward", cuda_norm, eval_arrays, (6,), 1e-5, relu)
    np.testing.assert_array_equal(ours[0], cpu[0])

    dy, y = rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape).astype(dtype)
    mean, invstd = rm + 4, rv

    def backward_arrays():
        return [dy, x, y if relu else None, gamma, mean, invstd, True, np.empty_like(x),
                np.empty_like(x) if residual else None, np.empty(c, dtype), np.empty(c, dtype)]

    cpu, ours = _both("batch_norm_backward", cuda_norm, backward_arrays, (7, 8, 9, 10))
    for got, want in zip(ours, cpu):
        if want is not None:
            np.testing.assert_allclose(got, want, rtol=RTOL[dtype] * 10, atol=RTOL[dtype] * 10)


def test_batch_norm_wrapper_refuses_one_value_per_channel_when_training(host):
    x = np.ones((1, 2, 1, 1))
    with pytest.raises(ValueError, match="input: expected more than 1 value per channel when training"):
        cuda_norm.batch_norm_train_forward(x, None, None, None, None, None, np.empty_like(x), np.empty(2),
                                           np.empty(2), 0.1, 1e-5, False)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("window", [((3, 3), (2, 2), (1, 1), (1, 1), True), ((2, 3), (1, 2), (0, 1), (2, 1), False)])
def test_pooling_wrappers_match_the_cpu_exactly(host, rng, dtype, window):
    kernel, stride, padding, dilation, ceil = window
    shape = (2, 3, 7, 8)
    x = rng.integers(-3, 4, shape).astype(dtype)
    out_shape = _C.pool2d_output_shape(shape, kernel, stride, padding, dilation, ceil)
    cpu, ours = _both("max_pool2d_forward", cuda_pool,
                      lambda: [x, np.empty(out_shape, dtype), np.empty(out_shape, np.int64)], (1, 2),
                      kernel, stride, padding, dilation, ceil)
    for got, want in zip(ours, cpu):
        np.testing.assert_array_equal(got, want)
    dy = rng.standard_normal(out_shape).astype(dtype)
    cpu, ours = _both("max_pool2d_backward", cuda_pool, lambda: [dy, cpu[1], np.full(shape, np.nan, dtype)], (2,))
    np.testing.assert_array_equal(ours[0], cpu[0])

    avg_shape = _C.pool2d_output_shape(shape, kernel, stride, padding, (1, 1), ceil)
    avg_args = (kernel, stride, padding, ceil, False, 0)
    cpu, ours = _both("avg_pool2d_forward", cuda_pool, lambda: [x, np.empty(avg_shape, dtype)], (1,), *avg_args)
    np.testing.assert_array_equal(ours[0], cpu[0])
    dy = rng.standard_normal(avg_shape).astype(dtype)
    cpu, ours = _both("avg_pool2d_backward", cuda_pool, lambda: [dy, np.empty(shape, dtype)], (1,), *avg_args)
    np.testing.assert_array_equal(ours[0], cpu[0])

    cpu, ours = _both("adaptive_avg_pool2d_forward", cuda_pool, lambda: [x, np.empty((2, 3, 3, 5), dtype)], (1,))
    np.testing.assert_array_equal(ours[0], cpu[0])
    dy = rng.standard_normal((2, 3, 3, 5)).astype(dtype)
    cpu, ours = _both("adaptive_avg_pool2d_backward", cuda_pool, lambda: [dy, np.empty(shape, dtype)], (1,))
    np.testing.assert_array_equal(ours[0], cpu[0])


def test_pooling_wrappers_check_the_window_before_any_launch(host):
    x = np.zeros((1, 1, 4, 4))
    with pytest.raises(ValueError, match="padding: must be >= 0 and at most half the kernel size"):
        cuda_pool.max_pool2d_forward(x, np.empty((1, 1, 4, 4)), None, (2, 2), (1, 1), (2, 2), (1, 1), False)
    with pytest.raises(ValueError, match=r"out: expected shape \(1, 1, 2, 2\)"):
        cuda_pool.avg_pool2d_forward(x, np.empty((1, 1, 3, 3)), (2, 2), (2, 2), (0, 0), False, True, 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("stride, pad_begin, pad_end, dilation, groups", [
    ((1, 1), (1, 1), (1, 1), (1, 1), 1), ((2, 1), (0, 1), (1, 0), (1, 2), 2), ((1, 2), (2, 2), (2, 2), (2, 1), 4)])
def test_conv2d_wrappers_match_the_cpu(host, rng, dtype, stride, pad_begin, pad_end, dilation, groups):
    x = rng.standard_normal((2, 8, 9, 10)).astype(dtype)
    w = rng.standard_normal((12, 8 // groups, 3, 2)).astype(dtype)
    b = rng.standard_normal(12).astype(dtype)
    args = (stride, pad_begin, pad_end, dilation, groups)
    out_shape = _C.conv2d_output_shape(x.shape, w.shape, *args)
    tolerance = dict(rtol=RTOL[dtype] * 100, atol=RTOL[dtype] * 100)  # GEMMs summing in another order
    cpu, ours = _both("conv2d_forward", cuda_conv, lambda: [x, w, b, np.empty(out_shape, dtype)], (3,), *args,
                      "im2col", True)
    np.testing.assert_allclose(ours[0], cpu[0], **tolerance)
    dy = rng.standard_normal(out_shape).astype(dtype)
    cpu, ours = _both("conv2d_backward_input", cuda_conv, lambda: [dy, w, np.empty_like(x)], (2,), *args, "im2col")
    np.testing.assert_allclose(ours[0], cpu[0], **tolerance)
    cpu, ours = _both("conv2d_backward_weight", cuda_conv,
                      lambda: [x, dy, np.empty_like(w), np.empty(12, dtype)], (2, 3), *args, "im2col")
    for got, want in zip(ours, cpu):
        np.testing.assert_allclose(got, want, **tolerance)


def test_conv2d_wrapper_refuses_a_cpu_only_algorithm_by_name(host):
    x, w = np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 3, 3))
    with pytest.raises(ValueError, match="algo: winograd_2x5 runs on the CPU only"):
        cuda_conv.conv2d_forward(x, w, None, np.empty((1, 1, 2, 2)), (1, 1), (0, 0), (0, 0), (1, 1), 1, "winograd_2x5")


def test_gemm_wrapper_matches_the_cpu(rng):
    a, b = rng.standard_normal((5, 7)), rng.standard_normal((9, 7)).T  # b a transposed view
    c0 = rng.standard_normal((5, 9))
    cpu, ours = _both("gemm", cuda_gemm, lambda: [a, b, c0.copy()], (2,), 0.5, 2.0)
    np.testing.assert_allclose(ours[0], cpu[0], rtol=1e-12)
