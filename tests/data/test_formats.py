"""CIFAR-10 and MNIST readers on small files written here in exactly the published formats."""
import gzip
import pickle
import tracemalloc

import numpy as np
import pytest

from fastconv.data import load_cifar10, load_mnist
from fastconv.data.formats import CIFAR10_TEST_BATCHES, CIFAR10_TRAIN_BATCHES, IDX_IMAGES_MAGIC, read_idx


def write_cifar_batch(path, rng, n):
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, size=n)]
    with open(path, "wb") as f:
        pickle.dump({b"batch_label": b"test", b"data": data, b"labels": labels}, f, protocol=2)
    return data, labels


@pytest.fixture
def cifar_dir(tmp_path, rng):
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    written = {name: write_cifar_batch(root / name, rng, 4) for name in CIFAR10_TRAIN_BATCHES + CIFAR10_TEST_BATCHES}
    return tmp_path, written


def test_cifar10_train_concatenates_the_five_batches_as_nchw(cifar_dir):
    root, written = cifar_dir
    x, y = load_cifar10(root, dtype=np.uint8)
    assert x.shape == (20, 3, 32, 32) and y.dtype == np.int64
    data, labels = written["data_batch_2"]
    # Row layout: 1024 red values, then green, then blue, each row-major 32x32.
    np.testing.assert_array_equal(x[4:8], data.reshape(4, 3, 32, 32))
    np.testing.assert_array_equal(y[4:8], labels)


def test_cifar10_test_split_as_float_in_unit_range(cifar_dir):
    root, written = cifar_dir
    x, y = load_cifar10(root / "cifar-10-batches-py", train=False)
    assert x.dtype == np.float32 and x.shape == (4, 3, 32, 32)
    np.testing.assert_allclose(x * 255, written["test_batch"][0].reshape(4, 3, 32, 32), atol=1e-4)


def test_cifar10_reads_batches_pickled_by_numpy_1(tmp_path, rng):
    # The published batches name numpy.core.multiarray (numpy 2 writes numpy._core); in
    # protocol 2 a global is newline-terminated text, so renaming it keeps the pickle valid.
    data = rng.integers(0, 256, size=(2, 3072), dtype=np.uint8)
    raw = pickle.dumps({b"data": data, b"labels": [1, 2]}, protocol=2)
    (tmp_path / "test_batch").write_bytes(raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    x, y = load_cifar10(tmp_path, train=False, dtype=np.uint8)
    np.testing.assert_array_equal(x.reshape(2, -1), data)
    np.testing.assert_array_equal(y, [1, 2])


def test_cifar10_missing_batch_names_the_file(cifar_dir):
    root, _ = cifar_dir
    (root / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_3"):
        load_cifar10(root)


def test_cifar10_refuses_pickles_that_would_run_code(tmp_path):
    for name in CIFAR10_TEST_BATCHES:
        with open(tmp_path / name, "wb") as f:
            pickle.dump({b"data": print, b"labels": []}, f, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="print, which is not array data"):
        load_cifar10(tmp_path, train=False)


def write_idx(path, magic, array, compress):
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with (gzip.open if compress else open)(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_reads_idx_files(tmp_path, rng, compress):
    images = rng.integers(0, 256, size=(5, 28, 28))
    labels = rng.integers(0, 10, size=5)
    suffix = ".gz" if compress else ""
    write_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}", 2051, images, compress)
    write_idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", 2049, labels, compress)
    x, y = load_mnist(tmp_path, train=False)
    assert x.shape == (5, 1, 28, 28) and x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_allclose(x[:, 0] * 255, images, atol=1e-4)
    np.testing.assert_array_equal(y, labels)


def test_mnist_bad_magic_is_reported(tmp_path, rng):
    write_idx(tmp_path / "train-images-idx3-ubyte", 2049, rng.integers(0, 256, size=(2, 28, 28)), False)
    with pytest.raises(ValueError, match="magic number 2049, expected 2051"):
        load_mnist(tmp_path)


def test_mnist_truncated_file_is_reported(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    write_idx(path, 2051, np.zeros((3, 28, 28)), False)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match="declares shape"):
        load_mnist(tmp_path)


def _gzip_idx(path, header_shape, data_bytes):
    """A gzip IDX images file whose header declares header_shape and whose data is data_bytes zeros."""
    header = IDX_IMAGES_MAGIC.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in header_shape)
    with gzip.open(path, "wb") as f:
        f.write(header)
        for _ in range(data_bytes // 2**20):
            f.write(bytes(2**20))


@pytest.mark.parametrize("declared,limit,message", [
    ((2**20, 28, 28), None, r"more than the file can hold"),   # 822 MB claimed by an 8 kB file
    ((50_000, 28, 28), 2**20, r"more than max_bytes=1048576"),  # true to its data, over the caller's bound
    ((2**31, 2**31, 28), None, r"more than max_bytes"),
])
def test_mnist_gzip_bomb_is_refused_from_its_header(tmp_path, declared, limit, message):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    _gzip_idx(path, declared, 8 * 2**20)
    tracemalloc.start()
    with pytest.raises(ValueError, match=r"declares shape .*" + message):
        read_idx(tmp_path / "train-images-idx3-ubyte", IDX_IMAGES_MAGIC, **({"max_bytes": limit} if limit else {}))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 2**20  # nothing was decompressed


def test_mnist_gzip_with_more_data_than_declared_reads_one_byte_past_it(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    _gzip_idx(path, (2, 28, 28), 8 * 2**20)
    tracemalloc.start()
    with pytest.raises(ValueError, match=r"declares shape \(2, 28, 28\) but holds 1569 values"):
        read_idx(tmp_path / "train-images-idx3-ubyte", IDX_IMAGES_MAGIC)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 2**20


def test_mnist_label_outside_the_ten_classes_is_reported(tmp_path, rng):
    write_idx(tmp_path / "t10k-images-idx3-ubyte", 2051, rng.integers(0, 256, size=(3, 28, 28)), False)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", 2049, np.array([3, 10, 1]), False)
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte holds label 10, expected 0\.\.9"):
        load_mnist(tmp_path, train=False)


def test_mnist_truncated_gzip_is_a_value_error(tmp_path, rng):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    write_idx(path, 2051, rng.integers(0, 256, size=(3, 28, 28)), True)
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(ValueError, match=r"not a complete gzip file"):
        read_idx(tmp_path / "train-images-idx3-ubyte", IDX_IMAGES_MAGIC)


def test_mnist_missing_file_names_both_candidates(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"train-images-idx3-ubyte nor .*\.gz"):
        load_mnist(tmp_path)


def test_mnist_and_cifar10_expand_a_home_folder(tmp_path, monkeypatch, rng):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "mnist").mkdir()
    write_idx(tmp_path / "mnist" / "t10k-images-idx3-ubyte", 2051, rng.integers(0, 256, size=(2, 28, 28)), False)
    write_idx(tmp_path / "mnist" / "t10k-labels-idx1-ubyte", 2049, np.array([3, 7]), False)
    x, y = load_mnist("~/mnist", train=False)
    assert x.shape == (2, 1, 28, 28) and y.tolist() == [3, 7]
    (tmp_path / "cifar").mkdir()
    write_cifar_batch(tmp_path / "cifar" / "test_batch", rng, 3)
    assert load_cifar10("~/cifar", train=False)[0].shape == (3, 3, 32, 32)


def test_cifar10_in_a_folder_without_batches_says_what_it_looked_for(tmp_path):
    with pytest.raises(FileNotFoundError, match="holds no CIFAR-10 batches .* no cifar-10-batches-py folder"):
        load_cifar10(tmp_path)
