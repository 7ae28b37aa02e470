"""The data a `fastconv train` run can name: the bundled real digits, CIFAR-10 files the user
downloaded, and XOR (the problem no linear classifier solves).

load_split(name) returns a seeded train/test split and a name for printed results; the deep
runs then bring images to the 32x32 their convolutional nets expect with fit_to_side().
"""
import numpy as np

from fastconv.data import BUNDLED_DATASETS, load_cifar10, train_test_split

DATASETS = sorted(BUNDLED_DATASETS) + ["cifar10", "xor"]


def make_xor(n=400, noise=0.15, seed=0):
    """n 2-D points in four Gaussian clusters at the corners of the unit square, labelled by
    XOR of the corner's coordinates: (0,0) and (1,1) are class 0, (0,1) and (1,0) class 1."""
    rng = np.random.default_rng(seed)
    corners = rng.integers(0, 2, size=(n, 2))
    x = (corners + noise * rng.standard_normal((n, 2))).astype(np.float32)
    return x, (corners[:, 0] ^ corners[:, 1]).astype(np.int64)


def load_split(name, data_dir=None, seed=0, limit=None):
    """(x_train, x_test, y_train, y_test), data name. CIFAR-10 keeps its own test batch; the
    others are split 80/20 by `seed`. limit: keep at most this many training samples (a random
    subset, for quick runs); the test set is never cut."""
    if name == "cifar10":
        if data_dir is None:
            raise ValueError("--data cifar10 needs --data-dir, the folder of the CIFAR-10 python batches "
                             "(cifar-10-batches-py from https://www.cs.toronto.edu/~kriz/cifar.html)")
        x_train, y_train = load_cifar10(data_dir, train=True)
        x_test, y_test = load_cifar10(data_dir, train=False)
        split, data = (x_train, x_test, y_train, y_test), "CIFAR-10 (32x32 RGB)"
    elif name == "xor":
        x, y = make_xor(seed=seed)
        split, data = train_test_split(x, y, test_fraction=0.25, seed=seed), "XOR (400 noisy 2-D points)"
    elif name in BUNDLED_DATASETS:
        x, y, data = BUNDLED_DATASETS[name]()
        split = train_test_split(x, y, test_fraction=0.2, seed=seed)
    else:
        raise ValueError(f"unknown data {name!r}; expected one of {DATASETS}")
    x_train, x_test, y_train, y_test = split
    if limit is not None and limit < len(x_train):
        keep = np.random.default_rng(seed).permutation(len(x_train))[:limit]
        x_train, y_train = x_train[keep], y_train[keep]
        data += f", {limit} training samples"
    return (x_train, x_test, y_train, y_test), data


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
