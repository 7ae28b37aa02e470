"""The tensor-core GEMM (TF32 allowed, float16, bfloat16) and conv2d's 16-bit forward launched on
a GPU, against float64 products within the bounds the host runs test (test_tf32_host.py), and
against PyTorch's CUDA results with TF32 allowed or not. Skipped, with the reason, where CuPy sees
no GPU."""
import numpy as np
import pytest

from fastconv import _C
from fastconv.cuda import conv as cuda_conv
from fastconv.cuda import gemm
from tests.cuda.gpu import cupy_or_skip
from tests.cuda.test_tf32_host import BF16, CONV_CASES, HALF_ULP, _assert_within, _bound
from tests.reference import conv2d_reference


@pytest.fixture(scope="module")
def cupy():
    return cupy_or_skip()


def _dtype(name):
    return BF16 if name == "bfloat16" else np.dtype(name)


@pytest.mark.parametrize("gemm_algorithm", gemm.ALGORITHMS)
@pytest.mark.parametrize("shape", [(1000, 513, 257), (1, 4096, 3), (129, 1, 1000)])
def test_tf32_gemms_are_within_tf32_s_bound(cupy, rng, gemm_algorithm, shape):
    m, n, k = shape
    a, b = rng.standard_normal((m, k)).astype(np.float32), rng.standard_normal((k, n)).astype(np.float32)
    with gemm.allow_tf32():
        got = gemm.matmul(cupy.asarray(a), cupy.asarray(b), algo=gemm_algorithm).get()
    want = a.astype(np.float64) @ b
    _assert_within(got, want, _bound(a, b, np.float32) + 2.0 ** -23 * np.abs(want), np.float32)


def test_the_tf32_kernel_rounds_its_operands_to_nearest_ties_away(cupy):
    a = cupy.asarray(np.array([[1 + 2 ** -12, 1 + 2 ** -11]], np.float32))
    b = cupy.ones((2, 1), np.float32)
    with gemm.allow_tf32():
        assert float(gemm.matmul(a, b, algo="tiled")[0, 0]) == 2 + 2 ** -10
    assert float(gemm.matmul(a, b, algo="tiled")[0, 0]) == np.float32(2 + 2 ** -12 + 2 ** -11)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("gemm_algorithm", gemm.ALGORITHMS)
def test_16bit_gemms_accumulate_in_float32(cupy, rng, dtype, gemm_algorithm):
    dtype = _dtype(dtype)
    a, b = rng.standard_normal((300, 1000)).astype(dtype), rng.standard_normal((1000, 200)).astype(dtype)
    got = gemm.matmul(cupy.asarray(a), cupy.asarray(b), algo=gemm_algorithm).get()
    _assert_within(got, a.astype(np.float64) @ b.astype(np.float64), _bound(a, b, dtype), dtype)


def _torch_conv(torch, x, w, b, geometry, dtype, tf32):
    stride, pad_begin, pad_end, dilation, groups = geometry
    torch_dtype = {np.dtype(np.float32): torch.float32, np.dtype(np.float16): torch.float16, BF16: torch.bfloat16}
    tensors = [torch.from_numpy(v.astype(np.float32)).cuda().to(torch_dtype[np.dtype(dtype)]) for v in (x, w, b)]
    padded = torch.nn.functional.pad(tensors[0], (pad_begin[1], pad_end[1], pad_begin[0], pad_end[0]))
    previous = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = tf32
    try:
        y = torch.nn.functional.conv2d(padded, tensors[1], tensors[2], stride, 0, dilation, groups).relu()
    finally:
        torch.backends.cudnn.allow_tf32 = previous
    return y.float().cpu().numpy().astype(np.float64)


@pytest.mark.parametrize("tf32", [False, True])
@pytest.mark.parametrize("gemm_algorithm", gemm.ALGORITHMS)
@pytest.mark.parametrize("algo", ["im2col", "implicit"])
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("case", CONV_CASES + [((2, 64, 19, 17), (40, 64, 3, 3), CONV_CASES[0][2])])
def test_conv2d_matches_float64_and_torch(cupy, torch, rng, monkeypatch, tf32, gemm_algorithm, algo, dtype, case):
    monkeypatch.setattr(gemm, "_algorithm", gemm_algorithm)
    dtype = _dtype(dtype)
    x_shape, w_shape, geometry = case
    x, w = rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    out = cupy.full(_C.conv2d_output_shape(x.shape, w.shape, *geometry), np.nan, dtype)
    with gemm.allow_tf32(tf32):
        cuda_conv.conv2d_forward(cupy.asarray(x), cupy.asarray(w), cupy.asarray(b), out, *geometry, algo, True)
    got = out.get()
    want = np.maximum(conv2d_reference(x, w, b.astype(np.float64), *geometry), 0)
    scale = conv2d_reference(np.abs(x), np.abs(w), None, *geometry)
    depth = w_shape[1] * w_shape[2] * w_shape[3]
    rounds_operands = np.dtype(dtype) == np.float32 and tf32
    bound = (2.0 ** -10 if rounds_operands else 0.0) * scale + depth * 2.0 ** -23 * scale
    u = HALF_ULP.get(np.dtype(dtype), 0.0)
    bound = bound + 2 * u * (np.abs(want) + np.abs(b.astype(np.float64))[:, None, None])
    _assert_within(got, want, bound, dtype)
    theirs = _torch_conv(torch, x, w, b, geometry, dtype, tf32)
    # torch's result obeys the same kind of bound (its own order of sums): the two differ by <= 2x it.
    _assert_within(got, theirs, 2 * bound + u * np.abs(theirs), dtype)
