"""One training loop for every network of the suite: minibatch SGD (or Adam) on cross-entropy,
an LR schedule stepped per epoch, evaluation under no_grad, and crash-safe checkpoints that a
resumed run continues from exactly.

Exact resume: a checkpoint, written after every epoch, holds the parameters and BN buffers,
the optimiser's state (momentum buffers, Adam moments, current lr), the scheduler's epoch, the
engine's random state (dropout) and the DataLoader's generator (shuffling, augmentation), and
the history so far. A run resumed from epoch k therefore replays epochs k+1.. with the same
batches, masks and steps as one that never stopped, given the same options (the schedule's
length is config.epochs).

Data-parallel (config.distributed, under `mpiexec -n W`): every rank starts from rank 0's model
and optimiser, steps on its 1/W of each global batch of config.batch_size (fastconv.distributed's
DistributedSampler), and averages its gradients with the other ranks' before each step, so W
ranks take the steps one process would take on the same global batches (batch norm aside: its
batch statistics are each rank's share's). Only rank 0 shows progress and writes checkpoints;
the shards and their augmentation are seeded by (seed, epoch), so a resume needs only the epoch,
and a checkpoint written by N processes resumes on M: a distributed run on any number of ranks,
one included, takes the same global batches.
"""
import math
import os
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from fastconv import checkpoint, distributed, optim
from fastconv import functional as F
from fastconv.autograd import Tensor, no_grad
from fastconv.data import ArrayDataset, DataLoader
from fastconv.models.runlog import progress_bar
from fastconv.optim import lr_scheduler


@dataclass
class TrainConfig:
    epochs: int
    lr: float
    batch_size: int = 64
    optimizer: str = "sgd"            # "sgd" (momentum, optional Nesterov) or "adam"
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    schedule: str = "cosine"          # "cosine", "step" (lr / 10 at 50% and 75% of the epochs) or "none"
    seed: int = 0                     # the DataLoader's shuffling and augmentation
    eval_batch_size: int = 500
    checkpoint: Optional[str] = None  # written (atomically) after every epoch
    resume: bool = False              # continue from `checkpoint` when the file exists
    # data-parallel over the ranks of mpiexec; None: when fastconv.distributed.init() found several
    distributed: Optional[bool] = None


def make_optimizer(params, config):
    if config.optimizer == "sgd":
        return optim.SGD(params, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov,
                         weight_decay=config.weight_decay)
    if config.optimizer == "adam":
        return optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    raise ValueError(f"optimizer: expected 'sgd' or 'adam', got {config.optimizer!r}")


def make_scheduler(optimizer, config):
    if config.schedule == "cosine":
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    if config.schedule == "step":
        # He et al. 2016 divide by 10 at 32k and 48k of 64k iterations: half and three quarters.
        milestones = [math.ceil(config.epochs / 2), math.ceil(3 * config.epochs / 4)]
        return lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)
    if config.schedule == "none":
        return lr_scheduler.StepLR(optimizer, step_size=1, gamma=1.0)
    raise ValueError(f"schedule: expected 'cosine', 'step' or 'none', got {config.schedule!r}")


@no_grad()
def predict(model, x, batch_size=500, transform=None):
    """Class predictions of model in eval mode; restores the mode it found."""
    was_training = model.training
    model.eval()
    predictions = []
    for start in range(0, len(x), batch_size):
        batch = x[start:start + batch_size]
        logits = model(Tensor(transform(batch) if transform is not None else batch))
        predictions.append(logits.data.argmax(axis=1))
    model.train(was_training)
    return np.concatenate(predictions)


def accuracy(model, x, y, batch_size=500, transform=None):
    return float(np.mean(predict(model, x, batch_size, transform) == y))


class Trainer:
    """fit() trains `model` on (x_train, y_train) for config.epochs and returns the per-epoch
    history. train_transform(x, rng) augments (and normalises) each training batch;
    eval_transform(x) prepares evaluation batches (e.g. the same normalisation)."""

    def __init__(self, model, config: TrainConfig, train_transform=None, eval_transform=None):
        self.model, self.config = model, config
        self.train_transform, self.eval_transform = train_transform, eval_transform
        self.optimizer = make_optimizer(list(model.parameters()), config)
        self.scheduler = make_scheduler(self.optimizer, config)
        self.history = {"loss": [], "train accuracy (running)": [], "test accuracy": []}
        self.epoch = 0
        wanted = distributed.is_initialized() if config.distributed is None else config.distributed
        self.ctx = distributed.init() if wanted else distributed.Context(rank=0, world_size=1)
        self.sharded = bool(wanted)  # the distributed sampler's global batches, on any world size
        self.parallel = self.ctx.world_size > 1
        if self.parallel:
            distributed.check_parameter_shapes(model, self.ctx)
            distributed.broadcast_parameters(model, self.optimizer, self.ctx)
            self.reducer = distributed.GradientReducer(list(model.parameters()), self.ctx)

    def make_loader(self, x_train, y_train):
        config, dataset = self.config, ArrayDataset(x_train, y_train)
        if self.sharded:
            sampler = distributed.DistributedSampler(len(dataset), config.batch_size, self.ctx.rank,
                                                     self.ctx.world_size, seed=config.seed)
            return distributed.ShardedLoader(dataset, sampler, self.train_transform)
        # drop_last: every step sees a full batch (batch norm on a handful of samples is noise)
        return DataLoader(dataset, min(config.batch_size, len(x_train)), shuffle=True,
                          drop_last=True, transform=self.train_transform, seed=config.seed)

    def save(self, loader):
        if not self.ctx.is_main:
            return
        # a sharded loader's random state is its (seed, epoch): nothing to save
        loader_rng = {} if self.sharded else {"loader_rng": loader.rng.bit_generator.state}
        checkpoint.save(self.config.checkpoint, self.model, self.optimizer, self.epoch,
                        scheduler=self.scheduler.state_dict(), history=self.history, **loader_rng)

    def restore(self, loader):
        """Loads config.checkpoint into the model, optimiser, scheduler, loader and history."""
        saved = checkpoint.load(self.config.checkpoint, self.model, self.optimizer)
        self.scheduler.load_state_dict(saved["scheduler"])
        if not self.sharded and "loader_rng" in saved:  # (a distributed run's checkpoint has none)
            loader.rng.bit_generator.state = saved["loader_rng"]
        self.history = {name: list(values) for name, values in saved["history"].items()}
        self.epoch = saved["epoch"]

    def train_epoch(self, loader, bar):
        """One pass over loader; returns mean loss and the accuracy on the (augmented) batches."""
        self.model.train()
        total_loss, correct, seen = 0.0, 0, 0
        for xb, yb in loader:
            logits = self.model(Tensor(xb))
            loss = F.cross_entropy(logits, yb)
            self.optimizer.zero_grad()
            loss.backward()
            if self.parallel:
                self.reducer.synchronize()
            self.optimizer.step()
            total_loss += loss.item() * len(yb)
            correct += int(np.sum(logits.data.argmax(axis=1) == yb))
            seen += len(yb)
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
        if self.parallel:  # the epoch's figures over every rank's shares
            total_loss, correct, seen = distributed.allreduce_sum([total_loss, correct, seen], self.ctx)
            distributed.broadcast_buffers(self.model, self.ctx)
        return total_loss / seen, correct / seen

    def fit(self, x_train, y_train, x_test, y_test, desc="train",
            on_epoch_end: Optional[Callable[[int], None]] = None):
        """on_epoch_end(epoch) runs after each epoch's checkpoint (tests use it to stop a run)."""
        config = self.config
        loader = self.make_loader(x_train, y_train)
        if config.resume and config.checkpoint and os.path.exists(config.checkpoint):
            self.restore(loader)
        with progress_bar(config.epochs * len(loader), desc, unit="batch", show=self.ctx.is_main) as bar:
            bar.update(self.epoch * len(loader))
            while self.epoch < config.epochs:
                if self.sharded:
                    loader.set_epoch(self.epoch)
                loss, running_accuracy = self.train_epoch(loader, bar)
                self.scheduler.step()
                self.epoch += 1
                test_accuracy = accuracy(self.model, x_test, y_test, config.eval_batch_size, self.eval_transform)
                for name, value in zip(self.history, (loss, running_accuracy, test_accuracy)):
                    self.history[name].append(value)
                bar.set_postfix(epoch=self.epoch, loss=f"{loss:.3f}", test=f"{test_accuracy:.3f}")
                if config.checkpoint:
                    self.save(loader)
                if on_epoch_end is not None:
                    on_epoch_end(self.epoch)
        return self.history
