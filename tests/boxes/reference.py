"""Float64 references of the box utilities, written from the papers' and torchvision's
definitions as plain loops, independent of the kernels under test."""
import math

import numpy as np


def iou(a, b):
    w = max(min(a[2], b[2]) - max(a[0], b[0]), 0.0)
    h = max(min(a[3], b[3]) - max(a[1], b[1]), 0.0)
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def box_iou(boxes1, boxes2):
    return np.array([[iou(a, b) for b in boxes2] for a in boxes1], np.float64).reshape(len(boxes1), len(boxes2))


def nms(boxes, scores, iou_threshold, idxs=None):
    order = sorted(range(len(boxes)), key=lambda i: (-scores[i], i))
    keep = []
    for i in order:
        if all(iou(boxes[i], boxes[k]) <= iou_threshold or (idxs is not None and idxs[i] != idxs[k]) for k in keep):
            keep.append(i)
    return np.array(keep, np.int64)


def _centre_size(b):
    w, h = b[2] - b[0], b[3] - b[1]
    return b[0] + 0.5 * w, b[1] + 0.5 * h, w, h


def encode(reference, proposals, weights):
    wx, wy, ww, wh = weights
    out = []
    for g, p in zip(reference, proposals):
        gx, gy, gw, gh = _centre_size(g)
        px, py, pw, ph = _centre_size(p)
        out.append([wx * (gx - px) / pw, wy * (gy - py) / ph, ww * math.log(gw / pw), wh * math.log(gh / ph)])
    return np.array(out, np.float64).reshape(-1, 4)


def decode(deltas, boxes, weights, clip):
    wx, wy, ww, wh = weights
    out = np.empty(deltas.shape)
    for i, b in enumerate(boxes):
        cx, cy, w, h = _centre_size(b)
        for c in range(deltas.shape[1] // 4):
            dx, dy, dw, dh = deltas[i, 4 * c:4 * c + 4]
            x, y = dx / wx * w + cx, dy / wy * h + cy
            half_w, half_h = 0.5 * math.exp(min(dw / ww, clip)) * w, 0.5 * math.exp(min(dh / wh, clip)) * h
            out[i, 4 * c:4 * c + 4] = [x - half_w, y - half_h, x + half_w, y + half_h]
    return out


def anchors(feature_size, stride, sizes, ratios):
    base = []
    for r in ratios:
        for s in sizes:
            w, h = s / math.sqrt(r), s * math.sqrt(r)
            base.append([round(-w / 2), round(-h / 2), round(w / 2), round(h / 2)])  # half to even, as torch
    out = []
    for y in range(feature_size[0]):
        for x in range(feature_size[1]):
            for b in base:
                out.append([x * stride[1] + b[0], y * stride[0] + b[1], x * stride[1] + b[2], y * stride[0] + b[3]])
    return np.array(out, np.float64).reshape(-1, 4)


def match(quality, high, low, allow_low_quality):
    g, n = quality.shape
    if g == 0:
        return np.full(n, -1, np.int64)
    best = quality.max(axis=0)
    matches = quality.argmax(axis=0)
    result = np.where(best < low, -1, np.where(best < high, -2, matches))
    if allow_low_quality:
        for row in quality:
            for j in np.flatnonzero(row == row.max()):
                result[j] = matches[j]
    return result.astype(np.int64)
