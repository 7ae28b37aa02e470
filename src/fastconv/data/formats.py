"""Readers for the standard dataset files users download themselves: CIFAR-10 and MNIST.

Both return images as NCHW arrays: float32 scaled to [0, 1] by default, or the stored uint8
with dtype=np.uint8 (4x less memory for all of CIFAR-10), and labels as int64.
"""
import gzip
import pickle
from pathlib import Path

import numpy as np

CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_BATCHES = ("test_batch",)
IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC = 2051, 2049


def _scaled(images_uint8, dtype):
    if np.dtype(dtype) == np.uint8:
        return images_uint8
    return images_uint8.astype(dtype) / np.asarray(255, dtype=dtype)


def _require_file(path, what):
    if not path.is_file():
        raise FileNotFoundError(f"{what}: {path} not found")
    return path


class ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only: a downloaded pickle cannot run code."""

    ALLOWED = {
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
        # numpy 1.x pickles name numpy.core, numpy 2 numpy._core; numpy 2 still resolves both.
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    }

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"the pickle refers to {module}.{name}, which is not array data")
        return super().find_class(module, name)


def _read_cifar10_batch(path):
    with open(_require_file(path, "load_cifar10"), "rb") as f:
        # The batches were pickled by Python 2; encoding="bytes" keeps their str keys as bytes.
        batch = ArrayUnpickler(f, encoding="bytes").load()
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise ValueError(f"load_cifar10: {path} is not a CIFAR-10 batch (no b'data' and b'labels')")
    data = np.asarray(batch[b"data"], dtype=np.uint8)
    labels = np.asarray(batch[b"labels"], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise ValueError(f"load_cifar10: {path} holds data {data.shape} and {len(labels)} labels; "
                         "expected (N, 3072) uint8 and N labels")
    return data.reshape(-1, 3, 32, 32), labels


def load_cifar10(root, train=True, dtype=np.float32):
    """CIFAR-10 from its python batches in `root` (or `root`/cifar-10-batches-py; "~" is expanded).

    Returns images (N, 3, 32, 32) and labels (N,) int64: the 50,000 training images from
    data_batch_1..5, or the 10,000 of test_batch with train=False.
    """
    root = Path(root).expanduser()
    if (root / "cifar-10-batches-py").is_dir():
        root = root / "cifar-10-batches-py"
    if not any((root / name).is_file() for name in CIFAR10_TRAIN_BATCHES + CIFAR10_TEST_BATCHES):
        raise FileNotFoundError(f"load_cifar10: {root} holds no CIFAR-10 batches (data_batch_1..5, test_batch) "
                                "and no cifar-10-batches-py folder; the python version of "
                                "https://www.cs.toronto.edu/~kriz/cifar.html unpacks to one")
    names = CIFAR10_TRAIN_BATCHES if train else CIFAR10_TEST_BATCHES
    batches = [_read_cifar10_batch(root / name) for name in names]
    images = np.concatenate([images for images, _ in batches])
    labels = np.concatenate([labels for _, labels in batches])
    return _scaled(images, dtype), labels


def _open_maybe_gzip(stem):
    """stem or stem.gz, whichever exists, opened for binary reading."""
    if stem.is_file():
        return open(stem, "rb")
    gz = stem.with_name(stem.name + ".gz")
    if gz.is_file():
        return gzip.open(gz, "rb")
    raise FileNotFoundError(f"load_mnist: neither {stem} nor {gz} found")


def read_idx(path_stem, expected_magic):
    """An IDX file (big-endian int32 magic, one int32 per dimension, then uint8 data)."""
    with _open_maybe_gzip(Path(path_stem)) as f:
        raw = f.read()
    magic = int.from_bytes(raw[:4], "big")
    if magic != expected_magic:
        raise ValueError(f"load_mnist: {path_stem} has magic number {magic}, expected {expected_magic}")
    ndim = magic & 0xFF  # the low byte of the magic number counts the dimensions
    shape = tuple(np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != np.prod(shape):
        raise ValueError(f"load_mnist: {path_stem} declares shape {shape} but holds {data.size} values")
    return data.reshape(shape)


def load_mnist(root, train=True, dtype=np.float32):
    """MNIST from its IDX files in `root` (train-* or t10k-*, each optionally .gz; "~" is expanded).

    Returns images (N, 1, 28, 28) and labels (N,) int64.
    """
    prefix = Path(root).expanduser() / ("train" if train else "t10k")
    images = read_idx(f"{prefix}-images-idx3-ubyte", IDX_IMAGES_MAGIC)
    labels = read_idx(f"{prefix}-labels-idx1-ubyte", IDX_LABELS_MAGIC).astype(np.int64)
    if len(images) != len(labels):
        raise ValueError(f"load_mnist: {len(images)} images but {len(labels)} labels under {root}")
    return _scaled(images[:, None], dtype), labels
