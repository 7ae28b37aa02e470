"""conv_transpose2d on a GPU (fastconv/cuda/conv_transpose.py over conv.cu and cuBLAS), through
fastconv.ops on CuPy arrays, against fastconv._C on the same data and torch's CUDA
conv_transpose2d when torch has CUDA (the host run of the same path is
test_conv_transpose_host.py). Skipped, with the reason, where CuPy sees no GPU."""
import numpy as np
import pytest

from fastconv import ops
from tests.cuda.gpu import cupy_or_skip
from tests.cuda.test_conv_transpose_host import CASES

TOLERANCE = {np.float32: dict(rtol=1e-4, atol=1e-4), np.float64: dict(rtol=1e-11, atol=1e-11)}


@pytest.fixture(scope="module")
def cupy():
    return cupy_or_skip()


def _keywords(params):
    stride, padding, output_padding, dilation, groups = params
    return dict(stride=stride, padding=padding, output_padding=output_padding, dilation=dilation, groups=groups)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
def test_conv_transpose2d_on_the_gpu_matches_the_cpu(cupy, rng, case, dtype):
    x_shape, w_shape, params = case
    x, w = rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[1] * params[-1]).astype(dtype)
    kw = _keywords(params)
    expected = ops.conv_transpose2d(x, w, b, **kw)
    got = ops.conv_transpose2d(cupy.asarray(x), cupy.asarray(w), cupy.asarray(b), **kw)
    assert isinstance(got, cupy.ndarray)
    np.testing.assert_allclose(got.get(), expected, **TOLERANCE[dtype])
    dy = rng.standard_normal(expected.shape).astype(dtype)
    want = ops.conv_transpose2d_backward(x, w, dy, **kw)
    grads = ops.conv_transpose2d_backward(cupy.asarray(x), cupy.asarray(w), cupy.asarray(dy), **kw)
    for g, e in zip(grads, want):
        np.testing.assert_allclose(g.get(), e, **TOLERANCE[dtype])


def test_conv_transpose2d_matches_torch_on_cuda(cupy, torch, rng):
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA here")
    x, w = rng.standard_normal((4, 16, 8, 8)).astype(np.float32), rng.standard_normal((16, 8, 4, 4)).astype(np.float32)
    ours = ops.conv_transpose2d(cupy.asarray(x), cupy.asarray(w), stride=2, padding=1)
    theirs = torch.nn.functional.conv_transpose2d(torch.as_tensor(x, device="cuda"),
                                                   torch.as_tensor(w, device="cuda"), stride=2, padding=1)
    np.testing.assert_allclose(ours.get(), theirs.cpu().numpy(), rtol=1e-3, atol=1e-3)  # TF32 on either side
