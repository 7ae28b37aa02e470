"""Readers for the standard dataset files users download themselves: CIFAR-10 and MNIST.

Both return images as NCHW arrays: float32 scaled to [0, 1] by default, or the stored uint8
with dtype=np.uint8 (4x less memory for all of CIFAR-10), and labels as int64.
"""
import gzip
import math
import pickle
import zlib
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


# read_idx's bound on a file's data: far above MNIST's largest file (47 MB), far below a machine's
# memory, so that a file whose header claims more (a gzip bomb, a corrupt header) is refused
# before anything is decompressed.
MAX_IDX_BYTES = 2**30
# Deflate expands at most about 1032:1 (a 258-byte match coded in as little as 2 bits), so a
# gzip file cannot hold more than this many times its own size.
_DEFLATE_MAX_RATIO = 1032


def _idx_file(stem):
    """stem or stem.gz, whichever exists, and whether it is gzip-compressed."""
    if stem.is_file():
        return stem, False
    gz = stem.with_name(stem.name + ".gz")
    if gz.is_file():
        return gz, True
    raise FileNotFoundError(f"load_mnist: neither {stem} nor {gz} found")


def _read_exactly(f, count, path, what):
    data = f.read(count)
    if len(data) != count:
        raise ValueError(f"load_mnist: {path} ends inside its {what}")
    return data


def _idx_header(f, path, expected_magic):
    """The shape an IDX header declares, after its magic number is checked."""
    magic = int.from_bytes(_read_exactly(f, 4, path, "header"), "big")
    if magic != expected_magic:
        raise ValueError(f"load_mnist: {path} has magic number {magic}, expected {expected_magic}")
    ndim = magic & 0xFF  # the low byte of the magic number counts the dimensions
    return tuple(int(d) for d in np.frombuffer(_read_exactly(f, 4 * ndim, path, "header"), dtype=">u4"))


def read_idx(path_stem, expected_magic, max_bytes=MAX_IDX_BYTES):
    """An IDX file (big-endian int32 magic, one int32 per dimension, then uint8 data), or its
    .gz. The header is checked first: a size beyond max_bytes, or beyond what the file can hold,
    is refused before the data is read or decompressed."""
    path, compressed = _idx_file(Path(path_stem))
    stored = path.stat().st_size
    try:
        with (gzip.open if compressed else open)(path, "rb") as f:
            shape = _idx_header(f, path, expected_magic)
            count = math.prod(shape)
            capacity = stored * _DEFLATE_MAX_RATIO if compressed else stored - 4 - 4 * len(shape)
            if count > min(max_bytes, capacity):
                raise ValueError(f"load_mnist: {path} declares shape {shape} ({count} bytes), more than "
                                 + (f"max_bytes={max_bytes}" if count > max_bytes else "the file can hold"))
            data = f.read(count + 1)  # one byte more than declared shows trailing data
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise ValueError(f"load_mnist: {path} is not a complete gzip file ({error})") from error
    if len(data) != count:
        raise ValueError(f"load_mnist: {path} declares shape {shape} but holds {len(data)} values")
    return np.frombuffer(data, dtype=np.uint8).reshape(shape)


MNIST_CLASSES = 10


def load_mnist(root, train=True, dtype=np.float32):
    """MNIST from its IDX files in `root` (train-* or t10k-*, each optionally .gz; "~" is expanded).

    Returns images (N, 1, 28, 28) and labels (N,) int64.
    """
    prefix = Path(root).expanduser() / ("train" if train else "t10k")
    images = read_idx(f"{prefix}-images-idx3-ubyte", IDX_IMAGES_MAGIC)
    labels = read_idx(f"{prefix}-labels-idx1-ubyte", IDX_LABELS_MAGIC).astype(np.int64)
    if len(images) != len(labels):
        raise ValueError(f"load_mnist: {len(images)} images but {len(labels)} labels under {root}")
    if labels.size and labels.max() >= MNIST_CLASSES:
        raise ValueError(f"load_mnist: {prefix}-labels-idx1-ubyte holds label {labels.max()}, expected "
                         f"0..{MNIST_CLASSES - 1}")
    return _scaled(images[:, None], dtype), labels
