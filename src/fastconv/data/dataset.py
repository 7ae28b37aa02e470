"""Datasets indexed by whole index arrays, and a loader that yields numpy batches.

A batch is fetched with one fancy-indexing call (`dataset[indices]`), not one call per sample,
so a loader over in-memory arrays costs a gather per batch and nothing per image.
"""
from typing import Callable, Optional, Protocol, Tuple

import numpy as np


class Dataset(Protocol):
    """Anything with a length whose `__getitem__` takes an int64 index array and returns (x, y)."""

    def __len__(self) -> int: ...

    def __getitem__(self, indices: np.ndarray) -> Tuple[np.ndarray, np.ndarray]: ...


class ArrayDataset:
    """Images and labels held in memory; sample i is (images[i], labels[i])."""

    def __init__(self, images, labels):
        images, labels = np.asarray(images), np.asarray(labels)
        if len(images) != len(labels):
            raise ValueError(f"ArrayDataset: {len(images)} images but {len(labels)} labels")
        self.images, self.labels = images, labels

    def __len__(self):
        return len(self.images)

    def __getitem__(self, indices):
        return self.images[indices], self.labels[indices]


Transform = Callable[[np.ndarray, np.random.Generator], np.ndarray]


class DataLoader:
    """Yields (x, y) batches of `dataset`; `transform(x, rng)` is applied to each whole batch.

    One generator, seeded once, draws every epoch's permutation and every transform's random
    numbers: the sequence of epochs is reproducible from `seed`, and successive epochs differ.
    """

    def __init__(self, dataset: Dataset, batch_size: int, shuffle: bool = False,
                 drop_last: bool = False, transform: Optional[Transform] = None, seed=None):
        if batch_size < 1:
            raise ValueError(f"batch_size: expected a positive int, got {batch_size}")
        self.dataset, self.batch_size = dataset, batch_size
        self.shuffle, self.drop_last, self.transform = shuffle, drop_last, transform
        self.rng = np.random.default_rng(seed)

    def __len__(self):
        full, rest = divmod(len(self.dataset), self.batch_size)
        return full if self.drop_last or rest == 0 else full + 1

    def __iter__(self):
        n = len(self.dataset)
        order = self.rng.permutation(n) if self.shuffle else np.arange(n)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            x, y = self.dataset[order[start:start + self.batch_size]]
            if self.transform is not None:
                x = self.transform(x, self.rng)
            yield x, y
