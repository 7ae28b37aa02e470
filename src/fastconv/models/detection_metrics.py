"""How well detections and instance masks match the ground truth: PASCAL VOC's average
precision (all-point interpolated, as VOC 2010 and later compute it) at an IoU threshold, over
boxes or masks, and the mean mask IoU of matched instances.

Detections of one image and class are matched to its ground truths greedily, by decreasing
score: a detection is a true positive when its best-overlapping ground truth of that class
(IoU >= iou_threshold) has not been claimed by a higher-scoring detection (Everingham et al. 2010,
section 4.2).
"""
from typing import Callable, List, Sequence

import numpy as np

from fastconv.ops.boxes import box_iou


def mask_iou(masks1, masks2):
    """(N, H, W), (M, H, W) boolean masks -> (N, M) intersection over union (0 for two empty masks)."""
    a, b = np.asarray(masks1, bool), np.asarray(masks2, bool)
    pixels = int(np.prod(a.shape[1:]))
    a, b = a.reshape(len(a), pixels).astype(np.float64), b.reshape(len(b), pixels).astype(np.float64)
    inter = a @ b.T
    union = a.sum(1)[:, None] + b.sum(1)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def boxes_iou64(boxes1, boxes2):
    return box_iou(np.asarray(boxes1, np.float64).reshape(-1, 4), np.asarray(boxes2, np.float64).reshape(-1, 4))


def average_precision(recall, precision):
    """Area under the precision-recall curve after making precision monotone (each point takes
    the best precision at any higher recall): VOC's all-point interpolation."""
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[0.0], precision, [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]
    steps = np.flatnonzero(r[1:] != r[:-1])
    return float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))


def match_detections(overlaps, iou_threshold):
    """overlaps (D, G) of one image's detections (sorted by decreasing score) with its ground
    truths -> (D,) index of the ground truth each detection claims, -1 for a false positive."""
    claimed = np.zeros(overlaps.shape[1], bool)
    matches = np.full(overlaps.shape[0], -1, np.int64)
    for d, row in enumerate(overlaps):
        if row.size == 0:
            continue
        g = int(np.argmax(row))
        if row[g] >= iou_threshold and not claimed[g]:
            claimed[g], matches[d] = True, g
    return matches


def class_average_precision(scores: List[np.ndarray], overlaps: List[np.ndarray], num_truths: int,
                            iou_threshold: float) -> float:
    """AP of one class over images: per image, the scores (D,) of its detections and their
    overlaps (D, G) with its ground truths of that class; num_truths = sum of G."""
    hits, all_scores = [], []
    for s, o in zip(scores, overlaps):
        order = np.argsort(-s, kind="stable")
        hits.append(match_detections(o[order], iou_threshold) >= 0)
        all_scores.append(s[order])
    if num_truths == 0:
        return float("nan")
    hits, all_scores = np.concatenate(hits), np.concatenate(all_scores)
    true_positives = np.cumsum(hits[np.argsort(-all_scores, kind="stable")])
    ranks = np.arange(1, len(true_positives) + 1)
    return average_precision(true_positives / num_truths, true_positives / ranks)


def mean_average_precision(detections: Sequence, truths: Sequence, iou_threshold: float = 0.5,
                           overlap: Callable = None) -> float:
    """VOC mAP: the mean over classes present in the ground truth of each class's AP.

    detections: per image, an object with .boxes (D, 4), .scores (D,), .labels (D,) (and .masks
    when overlap compares masks); truths: per image, .boxes (G, 4), .labels (G,) (and .masks).
    overlap(detection_subset, truth_subset) -> (D, G) IoU; boxes by default."""
    overlap = overlap or (lambda det, gt: boxes_iou64(det.boxes, gt.boxes))
    classes = sorted(set(np.concatenate([np.asarray(t.labels) for t in truths]).tolist())) if truths else []
    aps = []
    for c in classes:
        scores, overlaps, count = [], [], 0
        for det, gt in zip(detections, truths):
            det_c, gt_c = _subset(det, det.labels == c), _subset(gt, np.asarray(gt.labels) == c)
            scores.append(np.asarray(det_c.scores, np.float64))
            overlaps.append(overlap(det_c, gt_c))
            count += len(gt_c.labels)
        aps.append(class_average_precision(scores, overlaps, count, iou_threshold))
    return float(np.mean(aps)) if aps else float("nan")


def mask_overlap(det, gt):
    return mask_iou(det.masks, gt.masks)


def matched_mask_iou(detections: Sequence, truths: Sequence, iou_threshold: float = 0.5):
    """(mean mask IoU of the matched instances, fraction of instances matched): each ground
    truth is matched to the highest-scoring detection of its class whose box overlaps it by
    IoU >= iou_threshold, unclaimed by a higher-scoring one."""
    ious, total = [], 0
    for det, gt in zip(detections, truths):
        total += len(gt.labels)
        for c in np.unique(gt.labels):
            det_c, gt_c = _subset(det, det.labels == c), _subset(gt, np.asarray(gt.labels) == c)
            order = np.argsort(-np.asarray(det_c.scores), kind="stable")
            det_c = _subset(det_c, order)
            matches = match_detections(boxes_iou64(det_c.boxes, gt_c.boxes), iou_threshold)
            for d, g in enumerate(matches):
                if g >= 0:
                    ious.append(mask_iou(det_c.masks[d:d + 1], gt_c.masks[g:g + 1])[0, 0])
    mean = float(np.mean(ious)) if ious else 0.0
    return mean, (len(ious) / total if total else float("nan"))


class _Subset:
    def __init__(self, **fields):
        self.__dict__.update(fields)


def _subset(item, selection):
    """The rows `selection` (a mask or indices) of every per-instance field of `item`."""
    fields = {}
    for name in ("boxes", "scores", "labels", "masks"):
        value = getattr(item, name, None)
        if value is not None:
            fields[name] = np.asarray(value)[selection]
    return _Subset(**fields)
