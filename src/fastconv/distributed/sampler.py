"""Each rank's share of an epoch: the epoch's permutation is drawn from (seed, epoch) alone, so
every rank draws the same one without talking to the others, and a resumed run redraws it."""
import numpy as np


def global_batch_split(batch_size: int, world_size: int) -> int:
    """The per-rank batch of a global batch. Every rank steps on equally many samples, so that the
    average of their gradients is the gradient of the global batch's mean loss."""
    if batch_size % world_size:
        raise ValueError(f"batch_size {batch_size} is the global batch and must be a multiple of the "
                         f"world size {world_size} (each rank takes an equal share)")
    return batch_size // world_size


class DistributedSampler:
    """Indices of one rank's samples per step: step s of an epoch is the global batch
    order[s*B:(s+1)*B] of that epoch's permutation, and rank r takes its r-th slice of B/W.
    Incomplete global batches are dropped, so every rank takes the same number of steps."""

    def __init__(self, num_samples, batch_size, rank, world_size, seed=0, shuffle=True):
        self.local_batch = global_batch_split(batch_size, world_size)
        if num_samples < batch_size:
            raise ValueError(f"{num_samples} samples hold no global batch of {batch_size}")
        self.num_samples, self.batch_size = num_samples, batch_size
        self.rank, self.world_size, self.seed, self.shuffle = rank, world_size, seed, shuffle

    def __len__(self):
        return self.num_samples // self.batch_size

    def batches(self, epoch):
        """This rank's index arrays for `epoch`, one per step."""
        order = (np.random.default_rng([self.seed, epoch]).permutation(self.num_samples) if self.shuffle
                 else np.arange(self.num_samples))
        for step in range(len(self)):
            start = step * self.batch_size + self.rank * self.local_batch
            yield order[start:start + self.local_batch]


class ShardedLoader:
    """A DataLoader over one rank's share: (x, y) batches of dataset[indices], transformed with a
    generator seeded by (seed, epoch, rank) so a resumed epoch replays its augmentation."""

    def __init__(self, dataset, sampler: DistributedSampler, transform=None):
        self.dataset, self.sampler, self.transform = dataset, sampler, transform
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return len(self.sampler)

    def __iter__(self):
        rng = np.random.default_rng([self.sampler.seed, self.epoch, self.sampler.rank])
        for indices in self.sampler.batches(self.epoch):
            x, y = self.dataset[indices]
            yield (self.transform(x, rng) if self.transform is not None else x), y
