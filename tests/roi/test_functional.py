"""functional.roi_pool and roi_align: gradcheck in float64 (torchvision is not a test dependency:
the naive references define the forward); then the argument rules."""
import numpy as np
import pytest

import fastconv.functional as F
from fastconv import Tensor
from tests.functional_cases import gradcheck_test
from tests.reference import random_boxes, roi_align_reference, roi_pool_reference

# (K, 5) boxes on a (2, C, 6, 7) input at spatial_scale 0.5: inside, clipped, empty and inverted
ROIS = random_boxes(np.random.default_rng(5), 2, 6, 7, 8, scale=0.5)

# name: (ours, torch's (none here), input shapes)
CASES = {
    "roi_align": (lambda x: F.roi_align(x, ROIS, (2, 3), 0.5, 2), None, [(2, 3, 6, 7)]),
    "roi_align_aligned_adaptive": (lambda x: F.roi_align(x, ROIS, 2, 0.5, -1, aligned=True), None, [(2, 3, 6, 7)]),
    "roi_align_box_list": (lambda x: F.roi_align(x, [ROIS[:3, 1:], ROIS[3:4, 1:]], (3, 2), 0.5), None,
                           [(2, 1, 6, 7)]),
    "roi_pool": (lambda x: F.roi_pool(x, ROIS, (2, 3), 0.5), None, [(2, 3, 6, 7)]),
}

test_gradcheck = gradcheck_test(CASES)


@pytest.mark.parametrize("aligned", [False, True])
def test_roi_align_matches_reference(rng, aligned):
    # torchvision is not a test dependency: the naive reference defines the forward, the
    # gradchecks above the backward
    x = rng.standard_normal((2, 3, 6, 7))
    out = F.roi_align(Tensor(x), ROIS, (3, 2), 0.5, -1, aligned).numpy()
    np.testing.assert_allclose(out, roi_align_reference(x, ROIS, (3, 2), 0.5, -1, aligned), rtol=1e-12, atol=1e-12)


def test_roi_pool_matches_reference_and_boxes_get_no_gradient(rng):
    x = Tensor(rng.standard_normal((2, 3, 6, 7)), requires_grad=True)
    boxes = Tensor(ROIS.copy(), requires_grad=True)
    out = F.roi_pool(x, boxes, (2, 3), 0.5)
    expected, argmax = roi_pool_reference(x.numpy(), ROIS, (2, 3), 0.5)
    np.testing.assert_array_equal(out.numpy(), expected)
    out.sum().backward()
    assert boxes.grad is None
    hits = np.bincount(argmax[argmax >= 0], minlength=x.data.size).reshape(x.shape)  # each bin's max gets 1
    np.testing.assert_array_equal(x.grad.numpy(), hits)


def test_roi_argument_errors():
    x = Tensor(np.zeros((1, 2, 4, 4)))
    with pytest.raises(ValueError, match=r"boxes: expected a \(K, 5\) array"):
        F.roi_align(x, np.zeros((3, 4)), 2)
    with pytest.raises(TypeError, match="boxes: dtype float32 does not match input's float64"):
        F.roi_pool(x, np.zeros((1, 5), np.float32), 2)
