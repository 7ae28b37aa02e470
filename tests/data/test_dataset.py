"""DataLoader batching, shuffling, drop_last, per-batch transforms and seeded determinism."""
import numpy as np
import pytest

from fastconv.data import ArrayDataset, DataLoader, RandomHorizontalFlip


def dataset(n=10):
    return ArrayDataset(np.arange(n, dtype=np.float32).reshape(n, 1, 1, 1), np.arange(n))


def labels_of(loader):
    return [y.tolist() for _, y in loader]


def test_batches_in_order_with_a_short_last_batch():
    loader = DataLoader(dataset(), batch_size=4)
    assert len(loader) == 3
    assert labels_of(loader) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_drop_last_drops_the_short_batch():
    loader = DataLoader(dataset(), batch_size=4, drop_last=True)
    assert len(loader) == 2 and labels_of(loader) == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_shuffle_is_a_permutation_new_each_epoch_and_reproducible_from_the_seed():
    loader = DataLoader(dataset(), batch_size=3, shuffle=True, seed=7)
    epoch1, epoch2 = sum(labels_of(loader), []), sum(labels_of(loader), [])
    assert sorted(epoch1) == list(range(10)) and epoch1 != epoch2
    again = DataLoader(dataset(), batch_size=3, shuffle=True, seed=7)
    assert sum(labels_of(again), []) == epoch1


def test_images_stay_paired_with_labels():
    for x, y in DataLoader(dataset(), batch_size=4, shuffle=True, seed=0):
        np.testing.assert_array_equal(x[:, 0, 0, 0], y)


def test_transform_sees_whole_batches_and_is_seeded():
    def run(seed):
        loader = DataLoader(ArrayDataset(np.random.default_rng(0).random((8, 1, 2, 3)), np.zeros(8)),
                            batch_size=8, transform=RandomHorizontalFlip(), seed=seed)
        return next(iter(loader))[0]
    np.testing.assert_array_equal(run(1), run(1))
    assert not np.array_equal(run(1), run(2))


def test_mismatched_lengths_and_bad_batch_size_are_refused():
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        ArrayDataset(np.zeros((3, 1)), np.zeros(2))
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(dataset(), batch_size=0)
