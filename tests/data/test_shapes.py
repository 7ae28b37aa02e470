"""Generated shape scenes: seeded, consistent boxes, labels and instance masks."""
import numpy as np
import pytest

from fastconv.data import SHAPE_CLASSES, make_shapes_scene


def test_scene_is_reproducible_from_its_seed():
    a, targets_a = make_shapes_scene(3, seed=4)
    b, targets_b = make_shapes_scene(3, seed=4)
    np.testing.assert_array_equal(a, b)
    for ta, tb in zip(targets_a, targets_b):
        for key in ("boxes", "labels", "masks"):
            np.testing.assert_array_equal(ta[key], tb[key])
    assert not np.array_equal(a, make_shapes_scene(3, seed=5)[0])


def test_boxes_are_tight_around_disjoint_masks_and_labels_are_shape_classes():
    images, targets = make_shapes_scene(12, size=48, max_objects=4, min_side=8, max_side=20, seed=0)
    assert images.shape == (12, 3, 48, 48) and images.dtype == np.float32
    assert 0 <= images.min() and images.max() <= 1
    seen = set()
    for target in targets:
        boxes, labels, masks = target["boxes"], target["labels"], target["masks"]
        assert 1 <= len(labels) <= 4 and boxes.shape == (len(labels), 4) and masks.shape == (len(labels), 48, 48)
        assert masks.sum(axis=0).max() == 1  # no pixel belongs to two objects
        for (x1, y1, x2, y2), mask in zip(boxes.astype(int), masks):
            ys, xs = np.nonzero(mask)
            assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x1, y1, x2, y2)
        seen.update(labels.tolist())
    assert seen == set(range(1, len(SHAPE_CLASSES)))


def test_objects_are_painted_in_one_colour():
    images, targets = make_shapes_scene(2, seed=1, noise=0.2)
    for image, target in zip(images, targets):
        for mask in target["masks"]:
            pixels = image[:, mask]
            np.testing.assert_allclose(pixels, pixels[:, :1] * np.ones_like(pixels))


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="min_side"):
        make_shapes_scene(1, size=16, max_side=20)
