"""sampling.cu launched on a GPU, against fastconv._C's CPU kernels on the same data and torch's
CUDA kernels when torch has CUDA (the bodies' whole-grid CPU runs are test_sampling_host.py).
Skipped, with the reason, where CuPy sees no GPU.

The GPU agrees with the CPU within rounding, not to the bit: nvcc contracts multiply-adds into
FMAs (NVRTC's default). The deterministic input gradient gives the same bits on every run."""
import itertools

import numpy as np
import pytest

from fastconv import _C
from fastconv.cuda import sampling as cuda_sampling
from tests.cuda.gpu import cupy_or_skip
from tests.cuda.test_sampling_host import MODES, RESIZES, C, H, N, OH, OW, W, grid_points

TOLERANCE = {np.float32: 1e-5, np.float64: 1e-12}
DTYPES = [np.float32, np.float64]


@pytest.fixture(scope="module")
def cupy():
    return cupy_or_skip()


def close(device_array, expected, dtype):
    np.testing.assert_allclose(device_array.get(), expected, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])


@pytest.mark.parametrize("mode, padding, align", list(itertools.product((0, 1), (0, 1, 2), (False, True))))
@pytest.mark.parametrize("dtype", DTYPES)
def test_grid_sample_on_the_gpu_matches_the_cpu(cupy, rng, dtype, mode, padding, align):
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    grid = grid_points(rng, dtype)
    dy = rng.standard_normal((N, C, OH, OW)).astype(dtype)
    expected = np.empty(dy.shape, dtype)
    _C.grid_sample_forward(x, grid, expected, mode, padding, align)
    out = cupy.full(dy.shape, np.nan, dtype)
    cuda_sampling.grid_sample_forward(cupy.asarray(x), cupy.asarray(grid), out, mode, padding, align)
    close(out, expected, dtype)

    expected_dx, expected_dgrid = np.empty_like(x), np.empty_like(grid)
    _C.grid_sample_backward(x, grid, dy, expected_dx, expected_dgrid, mode, padding, align)
    runs = []
    for deterministic in (True, True, False):
        dx, dgrid = cupy.full(x.shape, np.nan, dtype), cupy.full(grid.shape, np.nan, dtype)
        cuda_sampling.grid_sample_backward(cupy.asarray(x), cupy.asarray(grid), cupy.asarray(dy), dx, dgrid, mode,
                                           padding, align, deterministic=deterministic)
        close(dx, expected_dx, dtype)
        close(dgrid, expected_dgrid, dtype)
        runs.append(dx.get())
    np.testing.assert_array_equal(runs[0], runs[1])


@pytest.mark.parametrize("align", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_affine_grid_on_the_gpu_matches_the_cpu(cupy, rng, dtype, align):
    theta = rng.standard_normal((N, 2, 3)).astype(dtype)
    expected = np.empty((N, 4, 5, 2), dtype)
    _C.affine_grid_forward(theta, expected, align)
    grid = cupy.full(expected.shape, np.nan, dtype)
    cuda_sampling.affine_grid_forward(cupy.asarray(theta), grid, align)
    close(grid, expected, dtype)
    dgrid = rng.standard_normal(expected.shape).astype(dtype)
    expected_dtheta = np.empty_like(theta)
    _C.affine_grid_backward(dgrid, expected_dtheta, align)
    dtheta = cupy.full(theta.shape, np.nan, dtype)
    cuda_sampling.affine_grid_backward(cupy.asarray(dgrid), dtheta, align)
    close(dtheta, expected_dtheta, dtype)


@pytest.mark.parametrize("resize", RESIZES)
@pytest.mark.parametrize("mode, align", MODES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_interpolate_on_the_gpu_matches_the_cpu(cupy, rng, dtype, mode, align, resize):
    (h, w), (oh, ow), (sh, sw) = resize
    x = rng.standard_normal((N, C, h, w)).astype(dtype)
    expected = np.empty((N, C, oh, ow), dtype)
    _C.interpolate_forward(x, expected, mode, align, sh, sw)
    out = cupy.full(expected.shape, np.nan, dtype)
    cuda_sampling.interpolate_forward(cupy.asarray(x), out, mode, align, sh, sw)
    close(out, expected, dtype)
    dy = rng.standard_normal(expected.shape).astype(dtype)
    expected_dx = np.empty_like(x)
    _C.interpolate_backward(dy, expected_dx, mode, align, sh, sw)
    dx = cupy.full(x.shape, np.nan, dtype)
    cuda_sampling.interpolate_backward(cupy.asarray(dy), dx, mode, align, sh, sw)
    close(dx, expected_dx, dtype)


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize("padding", ["zeros", "border", "reflection"])
def test_grid_sample_matches_torch_on_cuda(cupy, torch, rng, mode, padding):
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA here")
    x = rng.standard_normal((N, C, H, W))
    grid = grid_points(rng, np.float64)
    out = cupy.empty((N, C, OH, OW))
    cuda_sampling.grid_sample_forward(cupy.asarray(x), cupy.asarray(grid), out, ("bilinear", "nearest").index(mode),
                                      ("zeros", "border", "reflection").index(padding), False)
    expected = torch.nn.functional.grid_sample(torch.as_tensor(x, device="cuda"), torch.as_tensor(grid, device="cuda"),
                                               mode=mode, padding_mode=padding, align_corners=False)
    np.testing.assert_allclose(out.get(), expected.cpu().numpy(), rtol=1e-12, atol=1e-12)
