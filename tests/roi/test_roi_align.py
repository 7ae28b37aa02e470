import numpy as np
import pytest

import fastconv
from fastconv import _C, ops
from fastconv.backend import DeviceError, to_device, to_host
from tests.reference import numeric_gradient, random_boxes, roi_align_reference


CASES = [  # (N, C, H, W, K, output_size, spatial_scale, sampling_ratio)
    (1, 1, 5, 5, 3, (2, 2), 1.0, -1),
    (2, 3, 9, 7, 10, (3, 4), 0.5, 2),
    (3, 2, 6, 11, 16, (7, 7), 1.0, 0),
    (2, 4, 12, 12, 8, (1, 5), 0.25, 3),
    (1, 2, 1, 1, 4, (2, 3), 1.0, -1),            # a single pixel
    (2, 11, 40, 60, 6, (2, 3), 1.0, 1),          # 8 channels and 3 more; sparse sample columns
    (1, 17, 20, 20, 9, (7, 7), 1.0, 2),          # boxes wider than 8 columns: full and partial blocks
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_roi_align_matches_reference(device, rng, case, aligned, dtype):
    n, c, h, w, k, size, scale, ratio = case
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    boxes = random_boxes(rng, n, h, w, k, scale).astype(dtype)
    y = to_host(ops.roi_align(to_device(x, device), to_device(boxes, device), size, scale, ratio, aligned))
    ref = roi_align_reference(x, boxes, size, scale, ratio, aligned)
    assert y.dtype == dtype and y.shape == ref.shape
    tol = 2e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, ref, rtol=tol, atol=tol)


@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("ratio", [-1, 2])
def test_roi_align_backward_matches_numeric_gradient(device, rng, aligned, ratio):
    x = rng.standard_normal((2, 2, 6, 5))
    boxes = random_boxes(rng, 2, 6, 5, 6, 0.5)
    gy = rng.standard_normal((6, 2, 3, 2))
    dx = to_host(ops.roi_align_backward(to_device(gy, device), to_device(boxes, device), x.shape, 0.5, ratio, aligned))
    ref = numeric_gradient(lambda xx: roi_align_reference(xx, boxes, (3, 2), 0.5, ratio, aligned), x, gy)
    np.testing.assert_allclose(dx, ref, rtol=1e-7, atol=1e-8)


def test_roi_align_backward_is_deterministic_with_overlapping_boxes(rng):
    x_shape = (2, 8, 16, 16)
    boxes = np.tile(random_boxes(rng, 2, 16, 16, 40).astype(np.float32), (4, 1))  # every box 4 times
    gy = rng.standard_normal((160, 8, 7, 7)).astype(np.float32)
    first = ops.roi_align_backward(gy, boxes, x_shape, 1.0, -1, True)
    assert np.array_equal(first, ops.roi_align_backward(gy, boxes, x_shape, 1.0, -1, True))
    threads = fastconv.get_num_threads()
    try:
        fastconv.set_num_threads(1)
        single = ops.roi_align_backward(gy, boxes, x_shape, 1.0, -1, True)
    finally:
        fastconv.set_num_threads(threads)
    assert np.array_equal(first, single)


def test_roi_align_accepts_a_list_of_boxes_per_image(device, rng):
    x = rng.standard_normal((3, 2, 8, 8))
    per_image = [rng.uniform(0, 8, (2, 4)), np.zeros((0, 4)), rng.uniform(0, 8, (3, 4))]
    rois = np.concatenate([np.concatenate([np.full((len(b), 1), i), b], 1) for i, b in enumerate(per_image)])
    x = to_device(x, device)
    np.testing.assert_array_equal(to_host(ops.roi_align(x, [to_device(b, device) for b in per_image], 2)),
                                  to_host(ops.roi_align(x, to_device(rois, device), 2)))


def test_roi_align_without_boxes():
    x = np.ones((2, 3, 5, 5), np.float32)
    assert ops.roi_align(x, np.zeros((0, 5), np.float32), (2, 3)).shape == (0, 3, 2, 3)
    assert ops.roi_align(x, [], 2).shape == (0, 3, 2, 2)
    dx = ops.roi_align_backward(np.zeros((0, 3, 2, 3), np.float32), np.zeros((0, 5), np.float32), x.shape)
    np.testing.assert_array_equal(dx, 0)


def test_roi_align_writes_every_output(rng):
    x = rng.standard_normal((2, 3, 9, 9))
    boxes = random_boxes(rng, 2, 9, 9, 12)
    out, dx = np.full((12, 3, 4, 4), np.nan), np.full(x.shape, np.nan)
    _C.roi_align_forward(x, boxes, out, 1.0, -1, False)
    _C.roi_align_backward(np.ones_like(out), boxes, dx, 1.0, -1, False)
    assert np.isfinite(out).all() and np.isfinite(dx).all()


@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("ratio", [-1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_roi_align_against_torchvision(device, rng, aligned, ratio, dtype):
    torch = pytest.importorskip("torch")
    tv = pytest.importorskip("torchvision")
    x = rng.standard_normal((2, 4, 13, 11)).astype(dtype)
    boxes = random_boxes(rng, 2, 13, 11, 20, 0.5).astype(dtype)
    tx = torch.tensor(x, requires_grad=True)
    ty = tv.ops.roi_align(tx, torch.tensor(boxes), (3, 4), 0.5, ratio, aligned)
    gy = rng.standard_normal(ty.shape).astype(dtype)
    ty.backward(torch.tensor(gy))
    tol = 1e-5 if dtype == np.float32 else 1e-12
    x_dev, boxes_dev = to_device(x, device), to_device(boxes, device)
    y = ops.roi_align(x_dev, boxes_dev, (3, 4), 0.5, ratio, aligned)
    np.testing.assert_allclose(to_host(y), ty.detach().numpy(), atol=tol)
    dx = ops.roi_align_backward(to_device(gy, device), boxes_dev, x.shape, 0.5, ratio, aligned)
    np.testing.assert_allclose(to_host(dx), tx.grad.numpy(), atol=tol)


X = np.zeros((2, 3, 8, 8))
B = np.array([[0, 1, 1, 4, 4], [1, 0, 0, 7, 7]], float)


@pytest.mark.parametrize("args,error,match", [
    ((X, B[:, 1:], 2), ValueError, r"boxes: expected a \(K, 5\) array"),
    ((X, [B[:, 1:], B], 2), ValueError, r"boxes\[1\]: expected a \(Ki, 4\) array"),
    ((X, np.array([[2, 0, 0, 1, 1.0]]), 2), ValueError, "boxes: batch index 2 of box 0 is not an image"),
    ((X, np.array([[-1, 0, 0, 1, 1.0]]), 2), ValueError, "boxes: batch index -1"),
    ((X, np.array([[0.5, 0, 0, 1, 1.0]]), 2), ValueError, "boxes: batch index 0.5"),
    ((X, B, -1), ValueError, "output_size: must be >= 1"),
    ((X, B, (2, 0)), ValueError, "output_size: must be >= 1"),
    ((X, B, 2.5), TypeError, "output_size: expected an int or a pair"),
    ((X, B.astype(np.float32), 2), TypeError, "boxes: dtype float32 does not match input's float64"),
    ((X[0], B, 2), ValueError, "input: expected a 4-d array"),
    ((X.astype(np.int64), B, 2), TypeError, "input: expected a float32 or float64 array"),
    ((np.zeros((2, 3, 0, 8)), B, 2), ValueError, "input: expected non-empty spatial dimensions"),
])
def test_roi_align_bad_input_raises_clearly(args, error, match):
    with pytest.raises(error, match=match):
        ops.roi_align(*args)


def test_roi_align_backward_checks_shapes():
    with pytest.raises(ValueError, match=r"input_shape: expected 4 sizes"):
        ops.roi_align_backward(np.zeros((2, 3, 2, 2)), B, (2, 3, 8))
    with pytest.raises(ValueError, match=r"grad_input: expected shape \(2, 4, 8, 8\)|grad_output: expected shape"):
        ops.roi_align_backward(np.zeros((2, 3, 2, 2)), B, (2, 4, 8, 8))
    with pytest.raises(ValueError, match=r"boxes: expected shape \(3, 5\)"):
        ops.roi_align_backward(np.zeros((3, 3, 2, 2)), B, X.shape)


@pytest.mark.parametrize("op,call", [
    pytest.param("roi_align", lambda d: ops.roi_align(d, B, 2), id="roi_align-input"),
    pytest.param("roi_align", lambda d: ops.roi_align(X, d, 2), id="roi_align-boxes"),
    pytest.param("roi_align", lambda d: ops.roi_align(X, [B[:1, 1:], d], 2),
                 id="roi_align-boxes[1]"),  # one image's boxes of a list
    pytest.param("roi_align_backward", lambda d: ops.roi_align_backward(d, B, X.shape),
                 id="roi_align_backward-grad_output"),
    pytest.param("roi_align_backward", lambda d: ops.roi_align_backward(np.zeros((2, 3, 2, 2)), d, X.shape),
                 id="roi_align_backward-boxes"),
])
def test_roi_align_refuses_a_device_array_before_any_kernel_runs(cuda_array, op, call):
    with pytest.raises(DeviceError, match=f"^{op}: fastconv has no CUDA kernels"):
        call(cuda_array)
