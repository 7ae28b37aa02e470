"""Small generated scenes of rectangles, ellipses and triangles for detection and segmentation.

Each scene is a noisy background with a few solid shapes that do not overlap, so every object's
instance mask is exactly its visible pixels and its box is the tight box around that mask.
"""
import numpy as np

SHAPE_CLASSES = ("background", "rectangle", "ellipse", "triangle")
PLACEMENT_TRIES = 50


def _rectangle_mask(yy, xx, box, rng):
    x1, y1, x2, y2 = box
    return (xx >= x1) & (xx < x2) & (yy >= y1) & (yy < y2)


def _ellipse_mask(yy, xx, box, rng):
    x1, y1, x2, y2 = box
    cx, cy, rx, ry = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 2, (y2 - y1) / 2
    return ((xx + 0.5 - cx) / rx) ** 2 + ((yy + 0.5 - cy) / ry) ** 2 <= 1


def _triangle_mask(yy, xx, box, rng):
    """A triangle with its base on the box's bottom edge and its apex at a random x on the top edge."""
    x1, y1, x2, y2 = box
    corners = [(rng.uniform(x1, x2), y1), (x2, y2), (x1, y2)]
    px, py = xx + 0.5, yy + 0.5
    # Inside when the pixel centre is on the same side of all three (clockwise) edges.
    inside = np.ones(xx.shape, dtype=bool)
    for (ax, ay), (bx, by) in zip(corners, corners[1:] + corners[:1]):
        inside &= (bx - ax) * (py - ay) - (by - ay) * (px - ax) >= 0
    return inside


SHAPE_MASKS = (_rectangle_mask, _ellipse_mask, _triangle_mask)


def _boxes_overlap(box, boxes):
    return any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in boxes)


def _place_boxes(rng, n_objects, size, min_side, max_side):
    """Up to n_objects non-overlapping integer boxes [x1, y1, x2, y2]; fewer when the image fills up."""
    boxes = []
    for _ in range(PLACEMENT_TRIES):
        if len(boxes) == n_objects:
            break
        w, h = rng.integers(min_side, max_side + 1, size=2)
        x1, y1 = rng.integers(0, size - w + 1), rng.integers(0, size - h + 1)
        box = (x1, y1, x1 + w, y1 + h)
        if not _boxes_overlap(box, boxes):
            boxes.append(box)
    return boxes


def _tight_box(mask):
    ys, xs = np.nonzero(mask)
    return [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


def make_shapes_scene(n_images, size=64, max_objects=3, min_side=12, max_side=28, noise=0.1, seed=0):
    """n_images scenes (3, size, size) with 1..max_objects shapes each, reproducible from seed.

    Returns images (N, 3, size, size) float32 in [0, 1] and a list of N targets, each a dict with
    boxes (K, 4) float32 [x1, y1, x2, y2] (pixel edges, x2/y2 exclusive), labels (K,) int64
    (indices into SHAPE_CLASSES, 0 being background) and masks (K, size, size) bool.
    """
    if not 0 < min_side <= max_side <= size:
        raise ValueError(f"make_shapes_scene: need 0 < min_side <= max_side <= size, got {min_side}, {max_side}, {size}")
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    images = np.empty((n_images, 3, size, size), dtype=np.float32)
    targets = []
    for i in range(n_images):
        background = rng.uniform(0.2, 0.8, size=(3, 1, 1))
        image = background + noise * rng.standard_normal((3, size, size))
        n_objects = rng.integers(1, max_objects + 1)
        labels, masks = [], []
        for box in _place_boxes(rng, n_objects, size, min_side, max_side):
            label = rng.integers(1, len(SHAPE_CLASSES))
            mask = SHAPE_MASKS[label - 1](yy, xx, box, rng)
            image[:, mask] = rng.uniform(0, 1, size=(3, 1))
            labels.append(label)
            masks.append(mask)
        images[i] = np.clip(image, 0, 1)
        targets.append({
            "boxes": np.array([_tight_box(m) for m in masks], dtype=np.float32).reshape(-1, 4),
            "labels": np.array(labels, dtype=np.int64),
            "masks": np.array(masks, dtype=bool).reshape(-1, size, size),
        })
    return images, targets
