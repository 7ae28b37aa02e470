"""Training runs of the neural networks (models/deep.py) on a Split, one per model of the suite.

Each network's options are a frozen dataclass whose defaults are that network's; a run builds
the network for the split's images and trains it with models/trainer.py's Trainer. The steps
are public (network_inputs, train_convnet, ...) so that a script can show each one.
"""
import dataclasses
from dataclasses import dataclass
from typing import Optional

import numpy as np

import fastconv
from fastconv.data import Compose, Normalize, RandomCrop, RandomHorizontalFlip
from fastconv.models import deep
from fastconv.models.datasets import Split, fit_to_side
from fastconv.models.runlog import RunResult, Stopwatch
from fastconv.models.trainer import Trainer, TrainConfig, accuracy


@dataclass(frozen=True)
class NetOptions:
    """How a network is trained (models/trainer.py's TrainConfig) and seeded."""
    epochs: int = 10
    lr: float = 0.05
    batch_size: int = 64
    optimizer: str = "sgd"           # "sgd" (momentum 0.9) or "adam"
    nesterov: bool = False           # Nesterov momentum for sgd
    weight_decay: float = 5e-4
    schedule: str = "cosine"         # "cosine", "step" (lr / 10 at 50% and 75% of the epochs) or "none"
    seed: int = 0                    # initial weights, dropout masks, shuffling and augmentation
    checkpoint: Optional[str] = None  # saved after every epoch
    resume: bool = False             # continue from `checkpoint` when it exists

    def train_config(self) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, lr=self.lr, batch_size=self.batch_size, optimizer=self.optimizer,
                           nesterov=self.nesterov, weight_decay=self.weight_decay, schedule=self.schedule,
                           seed=self.seed, checkpoint=self.checkpoint, resume=self.resume)


# Defaults chosen so each run of `fastconv train` on the bundled MNIST digits (4,000 training
# images) takes a few minutes on 2 cores.

@dataclass(frozen=True)
class MLPOptions(NetOptions):
    width: int = 256                 # hidden units
    activation: str = "relu"         # or "tanh"


# XOR's four clusters need only a few tanh units; plain SGD on small batches, many epochs.
XOR_MLP_OPTIONS = MLPOptions(epochs=50, lr=0.1, batch_size=32, width=8, weight_decay=0.0, schedule="none",
                             activation="tanh")


@dataclass(frozen=True)
class ConvNetOptions(NetOptions):
    augment: bool = True             # random crops, and flips on natural images


@dataclass(frozen=True)
class LeNet5Options(ConvNetOptions):
    epochs: int = 6


@dataclass(frozen=True)
class AlexNetOptions(ConvNetOptions):
    epochs: int = 15
    lr: float = 0.02
    width: int = 32                  # channels of the first convolution


@dataclass(frozen=True)
class VGGOptions(ConvNetOptions):
    epochs: int = 4
    width: int = 16                  # channels of the first stage


@dataclass(frozen=True)
class ResNet20Options(ConvNetOptions):
    # He et al. 2016: lr 0.1, weight decay 1e-4, momentum 0.9, lr / 10 twice (batch 128 on 50k
    # images; 64 here gives the few thousand bundled digits more steps per epoch)
    epochs: int = 2
    lr: float = 0.1
    weight_decay: float = 1e-4
    schedule: str = "step"
    width: int = 16                  # channels of the first stage
    shortcut: str = "A"              # "A": zero-padded identity, "B": 1x1 conv, where the shape changes


def network_inputs(split: Split) -> Split:
    """The split with its images brought to the 32x32 NCHW the convolutional nets take."""
    if split.x_train.ndim != 4:
        raise ValueError(f"{split.name} holds no images; the convolutional nets need mnist, digits or cifar10")
    side = split.x_train.shape[2]
    if side == deep.INPUT_SIZE:
        return split
    upsampled = "upsampled and " if 2 * side <= deep.INPUT_SIZE else ""
    return dataclasses.replace(split, x_train=fit_to_side(split.x_train, deep.INPUT_SIZE),
                               x_test=fit_to_side(split.x_test, deep.INPUT_SIZE),
                               name=f"{split.name}, {upsampled}padded to {deep.INPUT_SIZE}x{deep.INPUT_SIZE}")


def image_transforms(split: Split, augment: bool = True):
    """Normalise with the training set's per-channel statistics; augment by random crops
    (4 pixels of padding on CIFAR-10, 2 on digits) and, for natural images only, horizontal
    flips (a mirrored digit is another symbol). Returns (train transform, eval transform)."""
    x_train, natural = split.x_train, split.dataset == "cifar10"
    axes = (0, 2, 3)
    normalize = Normalize(x_train.mean(axis=axes), x_train.std(axis=axes) + 1e-6)
    steps = [RandomCrop(x_train.shape[2], padding=4 if natural else 2)] if augment else []
    if augment and natural:
        steps.append(RandomHorizontalFlip())
    return Compose(steps + [normalize]), normalize


def standardized(split: Split) -> Split:
    """Images centred and scaled once by the training set's pixel mean and deviation: the MLP's
    preparation (it takes no augmentation). Points (XOR) are returned as they are."""
    if split.x_train.ndim != 4:
        return split
    mean, std = split.x_train.mean(), split.x_train.std()
    return dataclasses.replace(split, x_train=(split.x_train - mean) / std, x_test=(split.x_test - mean) / std)


def describe(model, options: NetOptions) -> str:
    """One line on the network's size and how it will be trained."""
    line = (f"{sum(p.size for p in model.parameters()):,} parameters; {options.epochs} epochs of {options.optimizer}, "
            f"lr {options.lr} on a {options.schedule} schedule, batches of {options.batch_size}")
    if isinstance(options, ConvNetOptions):
        line += ", random crops" if options.augment else ", no augmentation"
    return line


def train_network(name: str, model, split: Split, options: NetOptions, train_transform=None,
                  eval_transform=None) -> RunResult:
    """Trains `model` on the split with the Trainer (progress bar, per-epoch test accuracy,
    checkpoints) and returns the RunResult."""
    clock = Stopwatch()
    trainer = Trainer(model, options.train_config(), train_transform, eval_transform)
    history = trainer.fit(split.x_train, split.y_train, split.x_test, split.y_test, desc=name)
    train_accuracy = accuracy(model, split.x_train, split.y_train, transform=eval_transform)
    return RunResult(name, split.name, trainer.epoch, train_accuracy, history["test accuracy"][-1],
                     clock.seconds(), history)


def train_convnet(name: str, model, split: Split, options: ConvNetOptions) -> RunResult:
    """train_network with image_transforms: split must come from network_inputs."""
    train_transform, eval_transform = image_transforms(split, options.augment)
    return train_network(name, model, split, options, train_transform, eval_transform)


def run_mlp(split: Split, options: MLPOptions = MLPOptions()) -> RunResult:
    split = standardized(split)
    fastconv.manual_seed(options.seed)  # the initial weights
    model = deep.MLP(int(np.prod(split.sample_shape)), split.num_classes, options.width, options.activation)
    return train_network("mlp", model, split, options)


def run_lenet5(split: Split, options: LeNet5Options = LeNet5Options()) -> RunResult:
    split = network_inputs(split)
    fastconv.manual_seed(options.seed)
    return train_convnet("lenet5", deep.LeNet5(split.sample_shape[0], split.num_classes), split, options)


def run_alexnet(split: Split, options: AlexNetOptions = AlexNetOptions()) -> RunResult:
    split = network_inputs(split)
    fastconv.manual_seed(options.seed)  # the initial weights and the dropout masks
    model = deep.AlexNetSmall(split.sample_shape[0], split.num_classes, width=options.width)
    return train_convnet("alexnet", model, split, options)


def run_vgg(split: Split, options: VGGOptions = VGGOptions()) -> RunResult:
    split = network_inputs(split)
    fastconv.manual_seed(options.seed)
    model = deep.VGGSmall(split.sample_shape[0], split.num_classes, width=options.width)
    return train_convnet("vgg", model, split, options)


def run_resnet20(split: Split, options: ResNet20Options = ResNet20Options()) -> RunResult:
    split = network_inputs(split)
    fastconv.manual_seed(options.seed)
    model = deep.ResNet20(split.sample_shape[0], split.num_classes, width=options.width, shortcut=options.shortcut)
    return train_convnet("resnet20", model, split, options)
