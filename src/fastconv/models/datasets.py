"""The data a model of the suite trains on: the bundled real digits, CIFAR-10 files the user
downloaded, and XOR (the problem no linear classifier solves).

load_split(name) returns a seeded train/test Split that knows its printed name; the networks
then bring images to the 32x32 their convolutions expect with fit_to_side().
"""
import dataclasses
from typing import Optional

import numpy as np

from fastconv.data import BUNDLED_DATASETS, load_cifar10, train_test_split

DATASETS = sorted(BUNDLED_DATASETS) + ["cifar10", "xor"]
IMAGE_DATASETS = sorted(BUNDLED_DATASETS) + ["cifar10"]


@dataclasses.dataclass
class Split:
    x_train: np.ndarray
    x_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    name: str      # what printed results call it: "digits 8x8 (sklearn, 1,797), 300 training samples"
    dataset: str   # the DATASETS key it came from

    @property
    def num_classes(self):
        return int(self.y_train.max()) + 1

    @property
    def sample_shape(self):
        return self.x_train.shape[1:]

    def summary(self):
        return f"{self.name}: {len(self.x_train)} training and {len(self.x_test)} test samples"


def make_xor(n=400, noise=0.15, seed=0):
    """n 2-D points in four Gaussian clusters at the corners of the unit square, labelled by
    XOR of the corner's coordinates: (0,0) and (1,1) are class 0, (0,1) and (1,0) class 1."""
    rng = np.random.default_rng(seed)
    corners = rng.integers(0, 2, size=(n, 2))
    x = (corners + noise * rng.standard_normal((n, 2))).astype(np.float32)
    return x, (corners[:, 0] ^ corners[:, 1]).astype(np.int64)


def load_split(name: str, data_dir: Optional[str] = None, seed: int = 0, limit: Optional[int] = None) -> Split:
    """A seeded train/test split of dataset `name` (one of DATASETS). CIFAR-10 keeps its own
    test batch, read from data_dir; the others are split 80/20 (XOR 75/25) by `seed`.
    limit: keep at most this many training samples (a random subset, for quick runs); the test
    set is never cut."""
    if name == "cifar10":
        if data_dir is None:
            raise ValueError("cifar10 needs data_dir, the folder of the CIFAR-10 python batches "
                             "(cifar-10-batches-py from https://www.cs.toronto.edu/~kriz/cifar.html)")
        x_train, y_train = load_cifar10(data_dir, train=True)
        x_test, y_test = load_cifar10(data_dir, train=False)
        arrays, data = (x_train, x_test, y_train, y_test), "CIFAR-10 (32x32 RGB)"
    elif name == "xor":
        x, y = make_xor(seed=seed)
        arrays, data = train_test_split(x, y, test_fraction=0.25, seed=seed), "XOR (400 noisy 2-D points)"
    elif name in BUNDLED_DATASETS:
        x, y, data = BUNDLED_DATASETS[name]()
        arrays = train_test_split(x, y, test_fraction=0.2, seed=seed)
    else:
        raise ValueError(f"unknown data {name!r}; expected one of {DATASETS}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit: expected a positive number of training samples, got {limit}")
    split = Split(*arrays, name=data, dataset=name)
    if limit is not None and limit < len(split.x_train):
        keep = np.random.default_rng(seed).permutation(len(split.x_train))[:limit]
        split = dataclasses.replace(split, x_train=split.x_train[keep], y_train=split.y_train[keep],
                                    name=f"{data}, {limit} training samples")
    return split


def fit_to_side(x, side):
    """NCHW images brought to side x side: smaller ones are upsampled by an integer factor
    (nearest, e.g. 8 -> 32) and then zero-padded evenly (e.g. 28 -> 32, as LeNet-5's MNIST)."""
    h, w = x.shape[2:]
    if h > side or w > side:
        raise ValueError(f"images of {h}x{w} are larger than the {side}x{side} the model takes")
    factor = side // max(h, w)
    if factor > 1:
        x = x.repeat(factor, axis=2).repeat(factor, axis=3)
    top, left = (side - x.shape[2]) // 2, (side - x.shape[3]) // 2
    return np.pad(x, ((0, 0), (0, 0), (top, side - x.shape[2] - top), (left, side - x.shape[3] - left)))
