"""Hostile input to the box utilities: empty lists, zero-area boxes, boxes outside any image and
non-finite values get torchvision's answer or a ValueError/TypeError naming the argument, never
a crash."""
import numpy as np
import pytest

from fastconv import ops

def test_empty_inputs():
    empty = np.zeros((0, 4), np.float32)
    assert ops.box_iou(empty, np.ones((3, 4), np.float32)).shape == (0, 3)
    assert ops.nms(empty, np.zeros(0, np.float32), 0.5).shape == (0,)
    assert ops.batched_nms(empty, np.zeros(0, np.float32), np.zeros(0, np.int64), 0.5).shape == (0,)
    assert ops.encode_boxes(empty, empty).shape == (0, 4)
    assert ops.grid_anchors((0, 4), (8, 8), (16,), (1.0,)).shape == (0, 4)
    # No ground truth: every prediction is background.
    assert ops.match_boxes(np.zeros((0, 5)), 0.7, 0.3, True).tolist() == [-1] * 5
    assert ops.match_boxes(np.zeros((2, 0)), 0.7, 0.3, True).shape == (0,)


def test_zero_area_and_outside_boxes():
    degenerate = np.array([[5, 5, 5, 5], [5, 5, 5, 5], [-100, -100, -90, -90]], np.float32)
    assert ops.box_iou(degenerate, degenerate).tolist() == [[0, 0, 0], [0, 0, 0], [0, 0, 1]]
    # Zero-area boxes overlap nothing, so none is suppressed.
    assert ops.nms(degenerate, np.array([0.3, 0.2, 0.1], np.float32), 0.5).tolist() == [0, 1, 2]


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nms_refuses_non_finite_scores_and_boxes(bad):
    boxes = np.array([[0, 0, 1, 1], [0, 0, 2, 2]], np.float32)
    with pytest.raises(ValueError, match="scores: expected finite values.*index 1"):
        ops.nms(boxes, np.array([0.5, bad], np.float32), 0.5)
    boxes[0, 2] = bad
    with pytest.raises(ValueError, match="boxes: expected finite values"):
        ops.nms(boxes, np.array([0.5, 0.4], np.float32), 0.5)


@pytest.mark.parametrize("call, message", [
    (lambda: ops.box_iou(np.zeros((3, 5), np.float32), np.zeros((1, 4), np.float32)), "boxes1: expected an \\(N, 4\\)"),
    (lambda: ops.box_iou(np.zeros((3, 4), np.float32), np.zeros((1, 4))), "boxes2: dtype float64"),
    (lambda: ops.box_iou(np.zeros((3, 4), np.int64), np.zeros((1, 4))), "boxes1: expected a float32 or float64"),
    (lambda: ops.nms(np.zeros((3, 4)), np.zeros(2), 0.5), "scores: expected shape \\(3,\\)"),
    (lambda: ops.nms(np.zeros((3, 4)), np.zeros(3), float("nan")), "iou_threshold: expected a number"),
    (lambda: ops.batched_nms(np.zeros((3, 4)), np.zeros(3), np.zeros(3), 0.5), "idxs: expected an integer array"),
    (lambda: ops.batched_nms(np.zeros((3, 4)), np.zeros(3), np.zeros(2, np.int64), 0.5), "idxs: expected shape"),
    (lambda: ops.decode_boxes(np.zeros((3, 5)), np.zeros((3, 4))), "rel_codes: expected an \\(3, 4k\\)"),
    (lambda: ops.encode_boxes(np.zeros((3, 4)), np.zeros((2, 4))), "proposals: expected shape"),
    (lambda: ops.encode_boxes(np.zeros((3, 4)), np.zeros((3, 4)), weights=(1, 1, 0, 1)), "weights: expected four"),
    (lambda: ops.grid_anchors((2, 2), (8, 8), (-16,), (1.0,)), "sizes: expected positive"),
    (lambda: ops.grid_anchors((2, 2), (8, 8), (16,), (0.0,)), "aspect_ratios: expected positive"),
    (lambda: ops.match_boxes(np.zeros(4), 0.7, 0.3), "match_quality_matrix: expected a \\(G, N\\)"),
    (lambda: ops.match_boxes(np.zeros((2, 4)), 0.3, 0.7), "low_threshold: expected at most"),
    (lambda: ops.match_boxes(np.full((2, 4), np.nan), 0.7, 0.3), "match_quality_matrix: expected finite"),
])
def test_bad_input_is_refused_with_a_message(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()
