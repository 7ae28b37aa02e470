"""conv2d's "depthwise" CUDA algorithm launched on a GPU, in all three directions, against
fastconv._C's CPU depthwise kernel (the cases the host runs check, test_conv_depthwise_host.py)
and torch's CUDA conv2d; its weight gradient gives the same bits on every run. Skipped, with the
reason, where CuPy sees no GPU."""
import numpy as np
import pytest

from fastconv import _C, ops
from fastconv.cuda import conv as cuda_conv
from tests.cuda.gpu import cupy_or_skip
from tests.cuda.test_conv_depthwise_host import (CASES, DTYPES, TOLERANCE, arrays, forward, input_gradient,
                                                 weight_gradient)


@pytest.fixture(scope="module")
def cupy():
    return cupy_or_skip()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES)
def test_every_direction_on_the_gpu_matches_the_cpu_kernel(cupy, rng, dtype, case):
    x, w, b, dy = arrays(rng, dtype, *case)
    geometry = case[2]
    shape = _C.conv2d_output_shape(x.shape, w.shape, *geometry)
    gx, gw, gb, gdy = (cupy.asarray(a) for a in (x, w, b, dy))

    y = cupy.full(shape, np.nan, dtype)
    cuda_conv.conv2d_forward(gx, gw, gb, y, *geometry, "depthwise", True)
    np.testing.assert_allclose(y.get(), forward(_C, x, w, b, geometry, relu=True), **TOLERANCE[dtype])

    dx = cupy.full(x.shape, np.nan, dtype)
    cuda_conv.conv2d_backward_input(gdy, gw, dx, *geometry, "depthwise")
    np.testing.assert_allclose(dx.get(), input_gradient(_C, x.shape, w, dy, geometry), **TOLERANCE[dtype])

    dw, db = cupy.full(w.shape, np.nan, dtype), cupy.full(w.shape[0], np.nan, dtype)
    cuda_conv.conv2d_backward_weight(gx, gdy, dw, db, *geometry, "depthwise")
    want_dw, want_db = weight_gradient(_C, x, w.shape, dy, geometry)
    np.testing.assert_allclose(dw.get(), want_dw, **TOLERANCE[dtype])
    np.testing.assert_allclose(db.get(), want_db, **TOLERANCE[dtype])


def test_the_weight_gradient_is_the_same_bits_every_run(cupy, rng):
    """No atomics: a fixed split into partial sums, added in a fixed order."""
    x = cupy.asarray(rng.standard_normal((8, 32, 28, 28)).astype(np.float32))
    dy = cupy.asarray(rng.standard_normal((8, 64, 14, 14)).astype(np.float32))
    geometry = ((2, 2), (1, 1), (1, 1), (1, 1), 32)
    runs = []
    for _ in range(3):
        dw = cupy.empty((64, 1, 3, 3), np.float32)
        cuda_conv.conv2d_backward_weight(x, dy, dw, None, *geometry, "depthwise")
        runs.append(dw.get())
    np.testing.assert_array_equal(runs[0], runs[1])
    np.testing.assert_array_equal(runs[0], runs[2])


@pytest.mark.parametrize("stride, multiplier", [(1, 1), (2, 2)])
def test_auto_on_cuda_arrays_matches_torch(cupy, torch, rng, stride, multiplier):
    """ops.conv2d and ops.conv2d_backward on CuPy arrays (auto: the depthwise kernels) against
    torch's CUDA conv2d and autograd, float32."""
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA here")
    c = 16
    x = rng.standard_normal((4, c, 15, 14)).astype(np.float32)
    w = rng.standard_normal((c * multiplier, 1, 3, 3)).astype(np.float32)
    options = dict(stride=stride, padding=1, groups=c)
    assert cuda_conv.conv2d_heuristic(x.shape, w.shape, (stride,) * 2, (1, 1), (1, 1), (1, 1), c) == "depthwise"
    tx, tw = (torch.tensor(a, device="cuda", requires_grad=True) for a in (x, w))
    ty = torch.nn.functional.conv2d(tx, tw, **options)
    dy = rng.standard_normal(tuple(ty.shape)).astype(np.float32)
    ty.backward(torch.from_numpy(dy).cuda())
    gx, gw, gdy = (cupy.asarray(a) for a in (x, w, dy))
    close = dict(rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ops.conv2d(gx, gw, **options).get(), ty.detach().cpu().numpy(), **close)
    dx, dw, _ = ops.conv2d_backward(gx, gw, gdy, needs_bias=False, **options)
    np.testing.assert_allclose(dx.get(), tx.grad.cpu().numpy(), **close)
    np.testing.assert_allclose(dw.get(), tw.grad.cpu().numpy(), **close)
