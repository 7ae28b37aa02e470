"""roi.cu launched on a GPU, against fastconv._C's CPU kernels on the same data (the bodies'
whole-grid CPU runs are test_roi_host.py). Skipped, with the reason, where CuPy sees no GPU.

The GPU agrees with the CPU within rounding, not to the bit: nvcc contracts the sample
coordinates' multiply-adds into FMAs (NVRTC's default), so weights differ in the last bits. The
deterministic backwards give the same bits on every run; the atomic ones need not."""
import numpy as np
import pytest

from fastconv import _C
from fastconv.cuda import roi as cuda_roi
from tests.cuda.gpu import cupy_or_skip
from tests.cuda.test_roi_host import BOXES, C, H, N, PH, PW, SCALE, W

TOLERANCE = {np.float32: 2e-5, np.float64: 1e-12}
DTYPES = [np.float32, np.float64]


@pytest.fixture(scope="module")
def cupy():
    return cupy_or_skip()


def problem(rng, dtype):
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    boxes = np.array(BOXES, dtype=dtype)
    dy = rng.standard_normal((len(BOXES), C, PH, PW)).astype(dtype)
    return x, boxes, dy


@pytest.mark.parametrize("ratio, aligned", [(-1, False), (2, True)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_roi_align_on_the_gpu_matches_the_cpu(cupy, rng, dtype, ratio, aligned):
    x, boxes, dy = problem(rng, dtype)
    tol = TOLERANCE[dtype]
    expected = np.empty(dy.shape, dtype)
    _C.roi_align_forward(x, boxes, expected, SCALE, ratio, aligned)
    out = cupy.full(dy.shape, np.nan, dtype)
    cuda_roi.roi_align_forward(cupy.asarray(x), cupy.asarray(boxes), out, SCALE, ratio, aligned)
    np.testing.assert_allclose(out.get(), expected, rtol=tol, atol=tol)

    expected_dx = np.empty_like(x)
    _C.roi_align_backward(dy, boxes, expected_dx, SCALE, ratio, aligned)
    runs = []
    for deterministic in (True, True, False):
        dx = cupy.full(x.shape, np.nan, dtype)
        cuda_roi.roi_align_backward(cupy.asarray(dy), cupy.asarray(boxes), dx, SCALE, ratio, aligned,
                                    deterministic=deterministic)
        np.testing.assert_allclose(dx.get(), expected_dx, rtol=tol, atol=tol)
        runs.append(dx.get())
    np.testing.assert_array_equal(runs[0], runs[1])


@pytest.mark.parametrize("dtype", DTYPES)
def test_roi_pool_on_the_gpu_matches_the_cpu(cupy, rng, dtype):
    x, boxes, dy = problem(rng, dtype)
    expected, expected_argmax = np.empty(dy.shape, dtype), np.empty(dy.shape, np.int64)
    _C.roi_pool_forward(x, boxes, expected, expected_argmax, SCALE)
    out, argmax = cupy.full(dy.shape, np.nan, dtype), cupy.full(dy.shape, -7, np.int64)
    cuda_roi.roi_pool_forward(cupy.asarray(x), cupy.asarray(boxes), out, argmax, SCALE)
    np.testing.assert_array_equal(out.get(), expected)  # a maximum is exact
    np.testing.assert_array_equal(argmax.get(), expected_argmax)

    expected_dx = np.empty_like(x)
    _C.roi_pool_backward(dy, expected_argmax, expected_dx)
    for deterministic in (True, False):
        dx = cupy.full(x.shape, np.nan, dtype)
        cuda_roi.roi_pool_backward(cupy.asarray(dy), argmax, dx, deterministic=deterministic)
        if deterministic:
            np.testing.assert_array_equal(dx.get(), expected_dx)  # the CPU's adds, in its order
        else:
            np.testing.assert_allclose(dx.get(), expected_dx, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])


def test_bad_argmax_is_refused_before_any_launch(cupy):
    argmax = cupy.full((1, 2, 1, 1), -1, np.int64)
    argmax[0, 1, 0, 0] = 0  # channel 0's pixel, for channel 1
    with pytest.raises(ValueError, match=r"argmax: entry 0 at \(0, 1, 0, 0\) is neither -1"):
        cuda_roi.roi_pool_backward(cupy.zeros((1, 2, 1, 1)), argmax, cupy.zeros((1, 2, 3, 3)))

