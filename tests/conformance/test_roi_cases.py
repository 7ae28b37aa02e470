"""The case kinds of torchvision's roi_align / roi_pool tests (its test/test_ops.py), checked
against the float64 references of tests/reference.py, and against torchvision where it is
installed.

Where each kind is tested:
    aligned True/False, sampling_ratio -1/0/positive,
    non-square output sizes, spatial_scale, batches     tests/roi/test_roi_align.py CASES, and here
    boxes (K, 5) and a list of per-image boxes          tests/roi/test_roi_*.py, test_functional.py;
                                                        here: non-contiguous per-image Tensors
    boxes partly/wholly outside, inverted, empty (x1=x2) tests/reference.py random_boxes in every case
    no boxes at all                                     tests/roi/test_roi_*.py (ops); here through autograd
    deterministic backward                              tests/roi/test_roi_align.py, test_roi_pool.py
    gradient checks                                     tests/roi/test_functional.py (ratio 2, -1); here:
                                                        ratio 1 and 0, contiguous and not
    wrong box shapes ((K, 4) Tensor, list of (K, 3))    tests/roi/test_roi_align.py, test_functional.py
Added here: torchvision's forward case (integer box corners, so samples fall exactly on pixel
boundaries, on 2 images of 50 channels), non-contiguous inputs (its contiguous=False runs), an
image without boxes among others (no gradient reaches it)."""
import numpy as np
import pytest

import fastconv.functional as F
from fastconv import Tensor, gradcheck, ops
from tests.reference import roi_align_reference, roi_pool_reference

# torchvision's forward boxes: (batch index, x1, y1, x2, y2) with integer corners on 10 x 10 images
GRID_BOXES = np.array([[0, 0, 0, 9, 9], [0, 0, 5, 4, 9], [0, 5, 5, 9, 9], [1, 0, 0, 9, 9]], np.float64)
# its backward boxes, on one 5 x 5 image
SMALL_BOXES = np.array([[0, 0, 0, 4, 4], [0, 0, 2, 3, 4], [0, 2, 2, 4, 4]], np.float64)


def _image(rng, shape, dtype, contiguous):
    """rng values of `shape`; not contiguous: a transposed view (H and W swapped back) as
    torchvision's contiguous=False runs use."""
    if contiguous:
        return rng.random(shape).astype(dtype)
    n, c, h, w = shape
    return rng.random((n, c, w, h)).astype(dtype).transpose(0, 1, 3, 2)


@pytest.mark.parametrize("contiguous", [True, False])
@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_roi_align_on_integer_box_corners(rng, contiguous, aligned, dtype):
    x = _image(rng, (2, 50, 10, 10), dtype, contiguous)
    out = ops.roi_align(x, GRID_BOXES.astype(dtype), (5, 5), 1.0, -1, aligned)
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, roi_align_reference(x, GRID_BOXES, (5, 5), 1.0, -1, aligned),
                               rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("contiguous", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_roi_pool_on_integer_box_corners(rng, contiguous, dtype):
    x = _image(rng, (2, 50, 10, 10), dtype, contiguous)
    out, argmax = ops.roi_pool(x, GRID_BOXES.astype(dtype), (5, 5), 1.0)
    expected, expected_argmax = roi_pool_reference(x, GRID_BOXES, (5, 5), 1.0)
    np.testing.assert_array_equal(out, expected.astype(dtype))
    np.testing.assert_array_equal(argmax, expected_argmax)


@pytest.mark.parametrize("contiguous", [True, False])
@pytest.mark.parametrize("sampling_ratio", [1, 0])
@pytest.mark.usefixtures("one_thread")
def test_roi_align_gradcheck(rng, contiguous, sampling_ratio):
    x = Tensor(_image(rng, (1, 8, 5, 5), np.float64, contiguous), requires_grad=True)
    assert gradcheck(lambda v: F.roi_align(v, SMALL_BOXES, (2, 2), 1.0, sampling_ratio), [x])


@pytest.mark.parametrize("contiguous", [True, False])
@pytest.mark.usefixtures("one_thread")
def test_roi_pool_gradcheck(rng, contiguous):
    x = Tensor(_image(rng, (1, 8, 5, 5), np.float64, contiguous), requires_grad=True)
    assert gradcheck(lambda v: F.roi_pool(v, SMALL_BOXES, (2, 2), 1.0), [x])


@pytest.mark.parametrize("op", [F.roi_align, F.roi_pool])
def test_boxes_as_non_contiguous_per_image_tensors(rng, op):
    # torchvision's list case: each image's boxes a transposed (non-contiguous) Tensor
    x = rng.random((2, 1, 10, 10))
    per_image = [Tensor(np.ascontiguousarray(GRID_BOXES[:, 1:].T)).T for _ in range(2)]
    assert not per_image[0].numpy().flags.c_contiguous
    out = op(Tensor(x), per_image, (3, 3))
    rois = np.concatenate([np.c_[np.full(4, image), GRID_BOXES[:, 1:]] for image in range(2)])
    assert out.shape == (8, 1, 3, 3)
    np.testing.assert_array_equal(out.numpy(), op(Tensor(x), rois, (3, 3)).numpy())


@pytest.mark.parametrize("op", [F.roi_align, F.roi_pool])
def test_an_image_without_boxes_gets_no_gradient(rng, op):
    x = Tensor(rng.random((3, 2, 6, 6)), requires_grad=True)
    per_image = [np.array([[0.5, 0.5, 4.5, 3.5]]), np.zeros((0, 4)), np.array([[1.0, 0.0, 5.0, 5.0]])]
    out = op(x, per_image, (2, 3))
    assert out.shape == (2, 2, 2, 3)
    out.sum().backward()
    assert not x.grad.numpy()[1].any() and x.grad.numpy()[[0, 2]].any()


@pytest.mark.parametrize("op", [F.roi_align, F.roi_pool])
def test_no_boxes_at_all_through_autograd(rng, op):
    x = Tensor(rng.random((2, 3, 6, 6)), requires_grad=True)
    out = op(x, [np.zeros((0, 4)), np.zeros((0, 4))], (2, 2))
    assert out.shape == (0, 3, 2, 2)
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), 0)


@pytest.mark.parametrize("contiguous", [True, False])
@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling_ratio", [-1, 0, 1, 2])
def test_roi_align_against_torchvision(rng, torch, contiguous, aligned, sampling_ratio):
    torchvision = pytest.importorskip("torchvision")
    x = _image(rng, (2, 50, 10, 10), np.float64, contiguous)
    theirs_x = torch.tensor(x, requires_grad=True)
    theirs = torchvision.ops.roi_align(theirs_x, torch.tensor(GRID_BOXES), (5, 5), 1.0, sampling_ratio, aligned)
    ours_x = Tensor(x, requires_grad=True)
    ours = F.roi_align(ours_x, GRID_BOXES, (5, 5), 1.0, sampling_ratio, aligned)
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-12, atol=1e-12)
    weights = rng.standard_normal(ours.shape)
    (ours * weights).sum().backward()
    theirs.backward(torch.tensor(weights))
    np.testing.assert_allclose(ours_x.grad.numpy(), theirs_x.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("contiguous", [True, False])
def test_roi_pool_against_torchvision(rng, torch, contiguous):
    torchvision = pytest.importorskip("torchvision")
    x = _image(rng, (2, 50, 10, 10), np.float64, contiguous)
    theirs_x = torch.tensor(x, requires_grad=True)
    theirs = torchvision.ops.roi_pool(theirs_x, torch.tensor(GRID_BOXES), (5, 5), 1.0)
    ours_x = Tensor(x, requires_grad=True)
    ours = F.roi_pool(ours_x, GRID_BOXES, (5, 5), 1.0)
    np.testing.assert_array_equal(ours.numpy(), theirs.detach().numpy())
    weights = rng.standard_normal(ours.shape)
    (ours * weights).sum().backward()
    theirs.backward(torch.tensor(weights))
    np.testing.assert_allclose(ours_x.grad.numpy(), theirs_x.grad.numpy(), rtol=1e-12, atol=1e-12)
