import numpy as np
import pytest

from fastconv import _C, ops
from fastconv.backend import DeviceError, to_device, to_host
from tests.reference import numeric_gradient, random_boxes, roi_pool_reference

CASES = [  # (N, C, H, W, K, output_size, spatial_scale)
    (1, 1, 5, 5, 3, (2, 2), 1.0),
    (2, 3, 9, 7, 12, (3, 4), 0.5),
    (3, 2, 6, 11, 16, (7, 7), 1.0),        # bins smaller than a pixel: windows overlap or are empty
    (2, 4, 12, 12, 8, (1, 5), 0.25),
    (1, 2, 1, 1, 4, (2, 3), 1.0),          # a single pixel
    (2, 11, 30, 40, 10, (3, 5), 1.0),      # 8 channels and 3 more; rows of full and partial 8-pixel blocks
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_roi_pool_matches_reference(device, rng, case, dtype):
    n, c, h, w, k, size, scale = case
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    boxes = random_boxes(rng, n, h, w, k, scale).astype(dtype)
    y, argmax = map(to_host, ops.roi_pool(to_device(x, device), to_device(boxes, device), size, scale))
    ref, ref_argmax = roi_pool_reference(x, boxes, size, scale)
    assert y.dtype == dtype and y.shape == ref.shape and argmax.dtype == np.int64
    np.testing.assert_array_equal(y, ref.astype(dtype))
    np.testing.assert_array_equal(argmax, ref_argmax)
    assert (argmax == -1).any() or k < 8  # the cases include empty bins


def test_roi_pool_backward_matches_numeric_gradient(device, rng):
    x = rng.standard_normal((2, 3, 7, 6))
    boxes = random_boxes(rng, 2, 7, 6, 10, 0.5)
    gy = rng.standard_normal((10, 3, 3, 2))
    _, argmax = ops.roi_pool(to_device(x, device), to_device(boxes, device), (3, 2), 0.5)
    dx = to_host(ops.roi_pool_backward(to_device(gy, device), argmax, x.shape))
    ref = numeric_gradient(lambda xx: roi_pool_reference(xx, boxes, (3, 2), 0.5)[0], x, gy)
    np.testing.assert_allclose(dx, ref, rtol=1e-7, atol=1e-8)


def test_roi_pool_backward_adds_overlapping_boxes_in_order(device, rng):
    x = rng.standard_normal((2, 4, 10, 10)).astype(np.float32)
    boxes = np.tile(random_boxes(rng, 2, 10, 10, 20).astype(np.float32), (3, 1))
    _, argmax_dev = ops.roi_pool(to_device(x, device), to_device(boxes, device), 4)
    argmax = to_host(argmax_dev)
    gy = rng.standard_normal(argmax.shape).astype(np.float32)
    expected = np.zeros(x.size, np.float32)
    for i in np.flatnonzero(argmax.reshape(-1) >= 0):  # box order, as the kernel's
        expected[argmax.reshape(-1)[i]] += gy.reshape(-1)[i]
    dx = ops.roi_pool_backward(to_device(gy, device), argmax_dev, x.shape)
    np.testing.assert_array_equal(to_host(dx), expected.reshape(x.shape))


def test_roi_pool_accepts_a_list_of_boxes_per_image(device, rng):
    x = rng.standard_normal((2, 2, 8, 8))
    per_image = [rng.uniform(0, 8, (3, 4)), rng.uniform(0, 8, (2, 4))]
    rois = np.concatenate([np.concatenate([np.full((len(b), 1), i), b], 1) for i, b in enumerate(per_image)])
    x = to_device(x, device)
    for ours, theirs in zip(ops.roi_pool(x, [to_device(b, device) for b in per_image], 2),
                            ops.roi_pool(x, to_device(rois, device), 2)):
        np.testing.assert_array_equal(to_host(ours), to_host(theirs))


def test_roi_pool_without_boxes():
    x = np.ones((2, 3, 5, 5))
    y, argmax = ops.roi_pool(x, np.zeros((0, 5)), (2, 3))
    assert y.shape == argmax.shape == (0, 3, 2, 3)
    np.testing.assert_array_equal(ops.roi_pool_backward(y, argmax, x.shape), 0)


def test_roi_pool_writes_every_output(rng):
    x = rng.standard_normal((2, 3, 9, 9))
    boxes = random_boxes(rng, 2, 9, 9, 12)
    out, argmax, dx = np.full((12, 3, 4, 4), np.nan), np.full((12, 3, 4, 4), -7), np.full(x.shape, np.nan)
    _C.roi_pool_forward(x, boxes, out, argmax, 1.0)
    _C.roi_pool_backward(np.ones_like(out), argmax, dx)
    assert np.isfinite(out).all() and (argmax >= -1).all() and np.isfinite(dx).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_roi_pool_against_torchvision(device, rng, dtype):
    torch = pytest.importorskip("torch")
    tv = pytest.importorskip("torchvision")
    x = rng.standard_normal((2, 4, 13, 11)).astype(dtype)
    boxes = random_boxes(rng, 2, 13, 11, 20, 0.5).astype(dtype)
    tx = torch.tensor(x, requires_grad=True)
    ty = tv.ops.roi_pool(tx, torch.tensor(boxes), (3, 4), 0.5)
    gy = rng.standard_normal(ty.shape).astype(dtype)
    ty.backward(torch.tensor(gy))
    y, argmax = ops.roi_pool(to_device(x, device), to_device(boxes, device), (3, 4), 0.5)
    np.testing.assert_array_equal(to_host(y), ty.detach().numpy())
    np.testing.assert_array_equal(to_host(ops.roi_pool_backward(to_device(gy, device), argmax, x.shape)),
                                  tx.grad.numpy())


X = np.zeros((2, 3, 8, 8))
B = np.array([[0, 1, 1, 4, 4], [1, 0, 0, 7, 7]], float)


@pytest.mark.parametrize("args,error,match", [
    ((X, B[:, :4], 2), ValueError, r"boxes: expected a \(K, 5\) array"),
    ((X, np.array([[5, 0, 0, 1, 1.0]]), 2), ValueError, "boxes: batch index 5 of box 0 is not an image"),
    ((X, B, 0), ValueError, "output_size: must be >= 1"),
    ((X, B, (-2, 2)), ValueError, "output_size: must be >= 1"),
    ((X.astype(np.float32), B, 2), TypeError, "boxes: dtype float64 does not match input's float32"),
    ((X[..., 0], B, 2), ValueError, "input: expected a 4-d array"),
])
def test_roi_pool_bad_input_raises_clearly(args, error, match):
    with pytest.raises(error, match=match):
        ops.roi_pool(*args)


def test_roi_pool_backward_refuses_a_foreign_argmax():
    gy = np.ones((2, 3, 2, 2))
    _, argmax = ops.roi_pool(X, B, 2)
    for bad, match in (((0, 0, 0, 0), 10 ** 6), ((0, 1, 0, 0), 0)):  # out of range; another channel's plane
        corrupt = argmax.copy()
        corrupt[bad] = match
        with pytest.raises(ValueError, match=r"argmax: entry .* is neither -1 nor an index into input's channel"):
            ops.roi_pool_backward(gy, corrupt, X.shape)
    with pytest.raises(TypeError, match="argmax: expected a int64 array"):
        ops.roi_pool_backward(gy, argmax.astype(np.int32), X.shape)
    with pytest.raises(ValueError, match=r"argmax: expected shape \(2, 3, 2, 2\)"):
        ops.roi_pool_backward(gy, argmax[:, :, :1], X.shape)


@pytest.mark.parametrize("op,call", [
    pytest.param("roi_pool", lambda d: ops.roi_pool(d, B, 2), id="roi_pool-input"),
    pytest.param("roi_pool", lambda d: ops.roi_pool(X, d, 2), id="roi_pool-boxes"),
    pytest.param("roi_pool", lambda d: ops.roi_pool(X, [B[:1, 1:], d], 2),
                 id="roi_pool-boxes[1]"),  # one image's boxes of a list
    pytest.param("roi_pool_backward", lambda d: ops.roi_pool_backward(d, np.zeros((2, 3, 2, 2), np.int64), X.shape),
                 id="roi_pool_backward-grad_output"),
    pytest.param("roi_pool_backward", lambda d: ops.roi_pool_backward(np.zeros((2, 3, 2, 2)), d, X.shape),
                 id="roi_pool_backward-argmax"),
])
def test_roi_pool_refuses_a_device_array_before_any_kernel_runs(cuda_array, op, call):
    with pytest.raises(DeviceError, match=f"^{op}: fastconv has no CUDA kernels"):
        call(cuda_array)
