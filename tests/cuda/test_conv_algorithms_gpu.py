"""conv2d's CUDA algorithms (im2col, implicit, winograd_2x3, winograd_4x3, auto) and the tiled GEMM
launched on a GPU, against fastconv._C on the host (the same cases the host runs check,
test_conv_algorithms_host.py), cupy.matmul (cuBLAS) and torch's CUDA conv2d. Skipped, with the
reason, where CuPy sees no GPU."""
import numpy as np
import pytest

from fastconv import _C, ops
from fastconv.cuda import conv as cuda_conv
from fastconv.cuda import gemm
from tests.cuda.gpu import cupy_or_skip
from tests.conv.test_winograd import ERROR_BOUND
from tests.cuda.test_conv_algorithms_host import IMPLICIT_CASES, TOLERANCE, WINOGRAD_4X3_CASES, WINOGRAD_CASES


@pytest.fixture(scope="module")
def cupy():
    return cupy_or_skip()


CASES = [(algo, c) for algo in ("im2col", "implicit") for c in IMPLICIT_CASES] + [("winograd_2x3", c)
                                                                                   for c in WINOGRAD_CASES]


@pytest.mark.parametrize("gemm_algorithm", gemm.ALGORITHMS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("algo, case", CASES)
def test_each_algorithm_on_the_gpu_matches_the_cpu(cupy, rng, monkeypatch, gemm_algorithm, dtype, algo, case):
    monkeypatch.setattr(gemm, "_algorithm", gemm_algorithm)
    x_shape, w_shape, geometry = case
    x, w = rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    shape = _C.conv2d_output_shape(x.shape, w.shape, *geometry)
    want = np.empty(shape, dtype)
    _C.conv2d_forward(x, w, b, want, *geometry, "im2col", True)
    got = cupy.full(shape, np.nan, dtype)
    cuda_conv.conv2d_forward(cupy.asarray(x), cupy.asarray(w), cupy.asarray(b), got, *geometry, algo, True)
    np.testing.assert_allclose(got.get(), want, **TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1000, 513, 257), (1, 4096, 3), (129, 1, 1000), (300, 200, 0)])
def test_the_tiled_gemm_matches_cublas(cupy, rng, dtype, shape):
    m, n, k = shape
    a = cupy.asarray(rng.standard_normal((m, k)).astype(dtype))
    b = cupy.asarray(rng.standard_normal((n, k)).astype(dtype)).T  # a transposed view
    c0 = cupy.asarray(rng.standard_normal((m, n)).astype(dtype))
    c = c0.copy()
    gemm.gemm(a, b, c, 0.5, -1.0, algo="tiled")
    want = 0.5 * cupy.matmul(a.astype(np.float64), b.astype(np.float64)) - c0
    scale = max(k, 1) ** 0.5
    np.testing.assert_allclose(c.get(), want.get(), rtol=TOLERANCE[dtype]["rtol"] * scale,
                               atol=TOLERANCE[dtype]["atol"] * scale)


@pytest.mark.parametrize("gemm_algorithm", gemm.ALGORITHMS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", WINOGRAD_4X3_CASES + [((2, 64, 19, 17), (40, 64, 3, 3), WINOGRAD_4X3_CASES[0][2])])
def test_winograd_4x3_on_the_gpu_matches_torch_and_the_cpu(cupy, torch, rng, monkeypatch, gemm_algorithm, dtype, case):
    """Within the CPU's F(4x4) error bound (tests/conv/test_winograd.py) of torch's CUDA conv2d
    (TF32 off) and of the CPU's winograd_4x3."""
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA here")
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(gemm, "_algorithm", gemm_algorithm)
    x_shape, w_shape, (stride, pad_begin, pad_end, dilation, groups) = case
    x, w = rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    geometry = (stride, pad_begin, pad_end, dilation, groups)
    shape = _C.conv2d_output_shape(x.shape, w.shape, *geometry)
    got = cupy.full(shape, np.nan, dtype)
    cuda_conv.conv2d_forward(cupy.asarray(x), cupy.asarray(w), cupy.asarray(b), got, *geometry, "winograd_4x3", False)
    got = got.get()
    # torch's conv2d pads symmetrically: F.pad gives each side its own padding (a negative one crops).
    padded = torch.nn.functional.pad(torch.from_numpy(x).cuda(), (pad_begin[1], pad_end[1], pad_begin[0], pad_end[0]))
    want = torch.nn.functional.conv2d(padded, torch.from_numpy(w).cuda(), torch.from_numpy(b).cuda(),
                                      groups=groups).cpu().numpy()
    cpu = np.empty(shape, dtype)
    _C.conv2d_forward(x, w, b, cpu, *geometry, "winograd_4x3", False)
    bound = ERROR_BOUND["winograd_4x3", dtype]
    for reference in (want, cpu):
        assert np.abs(got - reference).max() / np.abs(reference).max() <= bound


def test_auto_on_cuda_arrays_matches_torch(cupy, torch, rng, monkeypatch):
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA here")
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    for x_shape, w_shape, groups in (((2, 32, 12, 12), (32, 32, 3, 3), 1), ((2, 8, 9, 9), (8, 2, 3, 3), 4),
                                     ((2, 4, 9, 9), (6, 4, 3, 3), 1)):
        x = rng.standard_normal(x_shape).astype(np.float32)
        w = rng.standard_normal(w_shape).astype(np.float32)
        y = ops.conv2d(cupy.asarray(x), cupy.asarray(w), padding=1, groups=groups, relu=True)
        want = torch.relu(torch.nn.functional.conv2d(torch.from_numpy(x).cuda(), torch.from_numpy(w).cuda(),
                                                     padding=1, groups=groups))
        np.testing.assert_allclose(y.get(), want.cpu().numpy(), rtol=2e-4, atol=2e-4)
