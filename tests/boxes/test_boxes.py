"""box_iou, nms, batched_nms, box encoding, anchors and matching: cases worked by hand, a float64
loop reference (reference.py) on random boxes, and torchvision as oracle where installed. Bad
input: test_hostile_input.py."""
import math

import numpy as np
import pytest

from fastconv import ops
from fastconv.ops.boxes import BBOX_XFORM_CLIP, clip_boxes_to_image, remove_small_boxes
from tests.boxes import reference

DTYPES = [np.float32, np.float64]
TOLERANCE = {np.float32: 1e-5, np.float64: 1e-12}


def random_boxes(rng, n, dtype, size=50.0):
    corner = rng.uniform(0, size, (n, 2))
    extent = rng.uniform(1, size / 2, (n, 2))
    return np.concatenate([corner, corner + extent], axis=1).astype(dtype)


# ---- cases worked by hand -----------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_box_iou_by_hand(dtype):
    boxes1 = np.array([[0, 0, 10, 10], [0, 0, 4, 4]], dtype)
    boxes2 = np.array([[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10]], dtype)
    # [0,0,10,10] vs [5,0,15,10]: intersection 50, union 150; the small box lies inside the big one.
    expected = [[1 / 3, 0, 1], [0, 0, 16 / 100]]
    np.testing.assert_allclose(ops.box_iou(boxes1, boxes2), expected, rtol=TOLERANCE[dtype])
    assert ops.box_iou(boxes1, boxes2).dtype == dtype


def test_nms_by_hand():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [0, 0, 10, 10]], np.float32)
    scores = np.array([0.9, 0.95, 0.5, 0.9], np.float32)
    # Box 1 (0.95) suppresses 0 and 3 (IoU 9/11 > 0.5); 2 is far away. Box 0 ties with 3 on score.
    assert ops.nms(boxes, scores, 0.5).tolist() == [1, 2]
    # At a threshold above 9/11 nothing but the identical pair is suppressed; the tie keeps index order.
    assert ops.nms(boxes, scores, 0.85).tolist() == [1, 0, 2]
    assert ops.nms(boxes, scores, 0.85).dtype == np.int64


def test_batched_nms_suppresses_within_a_category_only():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [0, 0, 10, 10]], np.float64)
    scores = np.array([0.9, 0.8, 0.7])
    assert ops.batched_nms(boxes, scores, np.array([0, 1, 0]), 0.5).tolist() == [0, 1]
    assert ops.batched_nms(boxes, scores, np.array([0, 1, 2]), 0.5).tolist() == [0, 1, 2]
    assert ops.nms(boxes, scores, 0.5).tolist() == [0]


@pytest.mark.parametrize("dtype", DTYPES)
def test_encode_decode_by_hand(dtype):
    proposals = np.array([[0, 0, 10, 20]], dtype)  # centre (5, 10), size 10 x 20
    reference_box = np.array([[2, 4, 22, 24]], dtype)  # centre (12, 14), size 20 x 20
    deltas = ops.encode_boxes(reference_box, proposals, weights=(10, 10, 5, 5))
    np.testing.assert_allclose(deltas, [[10 * 7 / 10, 10 * 4 / 20, 5 * math.log(2), 0]], rtol=TOLERANCE[dtype])
    np.testing.assert_allclose(ops.decode_boxes(deltas, proposals, weights=(10, 10, 5, 5)), reference_box,
                               rtol=TOLERANCE[dtype], atol=1e-4)


def test_decode_clamps_the_growth_at_log_1000_over_16():
    boxes = np.array([[0, 0, 16, 16]], np.float64)
    decoded = ops.decode_boxes(np.array([[0, 0, 50, 50]], np.float64), boxes)
    np.testing.assert_allclose(decoded, [[8 - 500, 8 - 500, 8 + 500, 8 + 500]])
    assert BBOX_XFORM_CLIP == pytest.approx(math.log(1000 / 16))


def test_grid_anchors_by_hand():
    # Size 32, ratio 0.5 (h/w): w = 32 sqrt(2) = 45.25, h = 22.63; halves rounded to 23 and 11.
    anchors = ops.grid_anchors((1, 2), (8, 16), sizes=(32,), aspect_ratios=(0.5, 1.0))
    assert anchors.tolist() == [[-23, -11, 23, 11], [-16, -16, 16, 16], [-7, -11, 39, 11], [0, -16, 32, 16]]


def test_match_boxes_by_hand():
    quality = np.array([[0.9, 0.5, 0.1, 0.2],
                        [0.1, 0.6, 0.2, 0.25]])
    # Best per prediction: 0.9 (gt 0), 0.6 (gt 1), 0.2 (gt 1), 0.25 (gt 1).
    assert ops.match_boxes(quality, 0.7, 0.3).tolist() == [0, -2, -1, -1]
    # gt 1's best prediction is 1 (0.6): kept. gt 0's is 0, already matched.
    assert ops.match_boxes(quality, 0.7, 0.3, allow_low_quality_matches=True).tolist() == [0, 1, -1, -1]


# ---- float64 reference on random boxes ----------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_box_iou_matches_reference(rng, dtype):
    boxes1, boxes2 = random_boxes(rng, 30, dtype), random_boxes(rng, 20, dtype)
    np.testing.assert_allclose(ops.box_iou(boxes1, boxes2), reference.box_iou(boxes1.astype(float), boxes2),
                               rtol=TOLERANCE[dtype] * 10, atol=TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.7])
def test_nms_matches_reference(rng, dtype, threshold):
    boxes = random_boxes(rng, 200, dtype)
    scores = rng.choice(np.linspace(0, 1, 20), 200).astype(dtype)  # many ties
    np.testing.assert_array_equal(ops.nms(boxes, scores, threshold), reference.nms(boxes, scores, threshold))
    idxs = rng.integers(0, 4, 200)
    np.testing.assert_array_equal(ops.batched_nms(boxes, scores, idxs, threshold),
                                  reference.nms(boxes, scores, threshold, idxs))


@pytest.mark.parametrize("dtype", DTYPES)
def test_encode_decode_match_reference(rng, dtype):
    weights = (10.0, 10.0, 5.0, 5.0)
    reference_boxes, proposals = random_boxes(rng, 40, dtype), random_boxes(rng, 40, dtype)
    deltas = ops.encode_boxes(reference_boxes, proposals, weights)
    np.testing.assert_allclose(deltas, reference.encode(reference_boxes.astype(float), proposals, weights),
                               rtol=1e-4 if dtype == np.float32 else 1e-10, atol=TOLERANCE[dtype] * 100)
    many = rng.normal(0, 3, (40, 12)).astype(dtype)  # three sets of deltas per box, some clamped
    np.testing.assert_allclose(ops.decode_boxes(many, proposals, weights),
                               reference.decode(many.astype(float), proposals.astype(float), weights, BBOX_XFORM_CLIP),
                               rtol=1e-4 if dtype == np.float32 else 1e-10, atol=1e-3 if dtype == np.float32 else 1e-9)
    np.testing.assert_allclose(ops.decode_boxes(deltas, proposals, weights), reference_boxes,
                               rtol=1e-4, atol=1e-3 if dtype == np.float32 else 1e-9)


def test_grid_anchors_match_reference():
    sizes, ratios = (16.0, 24.0, 40.0), (0.5, 1.0, 2.0)
    np.testing.assert_array_equal(ops.grid_anchors((3, 5), (8, 8), sizes, ratios, np.float64),
                                  reference.anchors((3, 5), (8, 8), sizes, ratios))


@pytest.mark.parametrize("allow_low_quality", [False, True])
def test_match_boxes_matches_reference(rng, allow_low_quality):
    quality = ops.box_iou(random_boxes(rng, 6, np.float64), random_boxes(rng, 100, np.float64))
    np.testing.assert_array_equal(ops.match_boxes(quality, 0.5, 0.3, allow_low_quality),
                                  reference.match(quality, 0.5, 0.3, allow_low_quality))


def test_clip_and_remove_small_boxes():
    boxes = np.array([[-5, 2, 70, 30], [10, 10, 10.5, 20]], np.float32)
    np.testing.assert_array_equal(clip_boxes_to_image(boxes, (32, 64)), [[0, 2, 64, 30], [10, 10, 10.5, 20]])
    assert remove_small_boxes(boxes, 1.0).tolist() == [0]


# ---- torchvision as oracle ----------------------------------------------------------------------

def test_torchvision_parity(rng):
    torchvision = pytest.importorskip("torchvision")  # before torch: without torchvision, skip at once
    import torch
    from torchvision.models.detection import _utils as det_utils
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    boxes1, boxes2 = random_boxes(rng, 30, np.float32), random_boxes(rng, 40, np.float32)
    scores = rng.random(40).astype(np.float32)
    t = torch.from_numpy
    np.testing.assert_allclose(ops.box_iou(boxes1, boxes2), torchvision.ops.box_iou(t(boxes1), t(boxes2)).numpy(),
                               rtol=1e-6)
    np.testing.assert_array_equal(ops.nms(boxes2, scores, 0.4), torchvision.ops.nms(t(boxes2), t(scores), 0.4).numpy())
    idxs = rng.integers(0, 3, 40)
    np.testing.assert_array_equal(ops.batched_nms(boxes2, scores, idxs, 0.4),
                                  torchvision.ops.batched_nms(t(boxes2), t(scores), t(idxs), 0.4).numpy())
    coder = det_utils.BoxCoder((10.0, 10.0, 5.0, 5.0))
    np.testing.assert_allclose(ops.encode_boxes(boxes1, boxes1[::-1].copy(), coder.weights),
                               coder.encode_single(t(boxes1), t(boxes1[::-1].copy())).numpy(), rtol=1e-5, atol=1e-5)
    deltas = rng.normal(0, 1, (30, 4)).astype(np.float32)
    np.testing.assert_allclose(ops.decode_boxes(deltas, boxes1, coder.weights),
                               coder.decode_single(t(deltas), t(boxes1)).numpy(), rtol=1e-5, atol=1e-4)
    generator = AnchorGenerator(((16, 32),), ((0.5, 1.0, 2.0),))
    generator.set_cell_anchors(torch.float32, torch.device("cpu"))
    expected = generator.grid_anchors([(3, 4)], [[torch.tensor(8), torch.tensor(8)]])[0]
    np.testing.assert_array_equal(ops.grid_anchors((3, 4), (8, 8), (16, 32), (0.5, 1.0, 2.0)), expected.numpy())
    quality = ops.box_iou(boxes1[:5], boxes2)
    matcher = det_utils.Matcher(0.5, 0.3, allow_low_quality_matches=True)
    np.testing.assert_array_equal(ops.match_boxes(quality, 0.5, 0.3, True), matcher(t(quality)).numpy())
