"""Spatial transformer networks (Jaderberg, Simonyan, Zisserman & Kavukcuoglu 2015, "Spatial
transformer networks") and the distorted MNIST they are shown on.

A spatial transformer is three pieces, each differentiable (section 3):
  localisation net   image -> theta, the 2x3 affine map of each sample (eq. 1),
  grid generator     theta -> the sampling grid, fastconv.functional.affine_grid,
  sampler            image sampled bilinearly at the grid, fastconv.functional.grid_sample (eq. 5),
so the classifier behind it learns, from the class labels alone, where to look and how to undo
the rotation, scale and translation of its input.

distort_digits() builds the paper's distorted MNIST (section 4.1: "RTS", rotated by up to 45
degrees, scaled and translated in a larger canvas, plus clutter: 6x6 pieces of other digits, as
in its cluttered MNIST) from real 28x28 digits, deterministically from a seed, by warping each
digit with the same affine_grid and grid_sample.
"""
from dataclasses import dataclass
from typing import Tuple

import numpy as np

import fastconv
from fastconv import functional as F
from fastconv import nn, ops
from fastconv.autograd import Tensor
from fastconv.models.datasets import Split
from fastconv.models.deep import he_init
from fastconv.models.runlog import RunResult, Stopwatch
from fastconv.models.trainer import Trainer, TrainConfig, accuracy, make_optimizer, make_scheduler
from fastconv.models.visualization import frozen, save_image_grid

DIGIT_SIDE = 28


@dataclass(frozen=True)
class DistortionOptions:
    """How distort_digits() moves each digit: a random rotation, scale and translation in a
    canvas x canvas image, then `clutter` random clutter_side x clutter_side pieces of other
    digits. The defaults are the paper's RTS MNIST (42x42, +-45 degrees, scale 0.7-1.2) with a
    little of its clutter."""
    canvas: int = 42
    max_rotation: float = 45.0                  # degrees, either way
    scale: Tuple[float, float] = (0.7, 1.2)     # the digit's size relative to its 28x28 original
    clutter: int = 4
    clutter_side: int = 6

    def __post_init__(self):
        if self.canvas < DIGIT_SIDE // 2:
            raise ValueError(f"canvas: expected at least {DIGIT_SIDE // 2} pixels, got {self.canvas}")
        if not 0 < self.scale[0] <= self.scale[1]:
            raise ValueError(f"scale: expected 0 < low <= high, got {self.scale}")
        if self.clutter < 0 or not 0 < self.clutter_side <= DIGIT_SIDE:
            raise ValueError(f"clutter, clutter_side: expected clutter >= 0 and 0 < clutter_side <= {DIGIT_SIDE}, "
                             f"got {self.clutter} and {self.clutter_side}")


def random_placements(n, options: DistortionOptions, rng):
    """theta (n, 2, 3) for affine_grid: canvas coordinates -> coordinates in the 28x28 digit, both
    in [-1, 1]. A digit scaled by s, rotated by r and centred at t (canvas units) is sampled at
    q = (canvas / 28) / s * R(-r) (p - t): the inverse of the placement, as grid_sample reads."""
    angle = np.radians(rng.uniform(-options.max_rotation, options.max_rotation, n))
    scale = rng.uniform(*options.scale, n)
    # the digit's ink fills about 20 of its 28 pixels: keep that inside the canvas
    reach = np.clip(1 - 20 * scale / options.canvas, 0, None)
    centre = rng.uniform(-1, 1, (n, 2)) * reach[:, None]
    zoom = options.canvas / DIGIT_SIDE / scale
    cos, sin = np.cos(angle) * zoom, np.sin(angle) * zoom
    linear = np.stack([np.stack([cos, sin], -1), np.stack([-sin, cos], -1)], 1)  # (n, 2, 2): zoom * R(-r)
    shift = -np.einsum("nij,nj->ni", linear, centre)
    return np.concatenate([linear, shift[..., None]], axis=2).astype(np.float32)


def add_clutter(canvases, digits, options: DistortionOptions, rng):
    """Pastes (pixelwise max) options.clutter random pieces of random digits at random places."""
    n, side, piece = len(canvases), options.canvas, options.clutter_side
    for _ in range(options.clutter):
        source = rng.integers(0, len(digits), n)
        top, left = rng.integers(0, DIGIT_SIDE - piece + 1, (2, n))
        row, col = rng.integers(0, side - piece + 1, (2, n))
        for i in range(n):
            patch = digits[source[i], 0, top[i]:top[i] + piece, left[i]:left[i] + piece]
            window = canvases[i, 0, row[i]:row[i] + piece, col[i]:col[i] + piece]
            np.maximum(window, patch, out=window)
    return canvases


def distort_digits(digits, options: DistortionOptions = DistortionOptions(), seed=0):
    """digits (N, 1, 28, 28) in [0, 1] -> (N, 1, canvas, canvas): each digit rotated, scaled and
    moved at random in the canvas, with clutter from the other digits. seed: an int (same seed,
    same images) or a numpy Generator, which the draws advance."""
    digits = np.asarray(digits, dtype=np.float32)
    if digits.ndim != 4 or digits.shape[1:] != (1, DIGIT_SIDE, DIGIT_SIDE):
        raise ValueError(f"digits: expected shape (N, 1, {DIGIT_SIDE}, {DIGIT_SIDE}), got {digits.shape}")
    rng = np.random.default_rng(seed)
    theta = random_placements(len(digits), options, rng)
    grid = ops.affine_grid(theta, (len(digits), 1, options.canvas, options.canvas), align_corners=False)
    canvases = np.array(ops.grid_sample(digits, grid, align_corners=False))
    return add_clutter(canvases, digits, options, rng)


@dataclass(frozen=True)
class RandomDistortion:
    """A training transform (the Trainer's train_transform(x, rng)): every batch of 28x28 digits
    distorted afresh, so each epoch sees new placements of the same digits."""
    options: DistortionOptions = DistortionOptions()

    def __call__(self, digits, rng):
        return distort_digits(digits, self.options, rng)


def describe_distortion(options: DistortionOptions) -> str:
    return (f"rotated +-{options.max_rotation:g} deg, scaled {options.scale[0]:g}-{options.scale[1]:g}, moved in "
            f"{options.canvas}x{options.canvas} with {options.clutter} clutter pieces")


class LocalisationNet(nn.Module):
    """image (N, 1, H, W) -> theta (N, 2, 3). Downsampled by 2 first (where the digit is needs no
    fine detail), two conv+pool stages, a hidden layer, and a regression layer whose weights start
    at zero and bias at the identity, so training starts from the untransformed image (section 4.1)."""

    def __init__(self, in_channels=1, width=8, hidden=32):
        super().__init__()
        self.features = nn.Sequential(
            nn.MaxPool2d(2),
            nn.Conv2d(in_channels, width, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4),
            nn.Flatten(), nn.Linear(2 * width * 16, hidden), nn.ReLU())
        # He init: the canvases are mostly zero, and PyTorch's default would leave the hidden
        # features (all that tells one sample's theta from another's) near zero
        he_init(self.features)
        self.regressor = nn.Linear(hidden, 6)
        nn.init.zeros_(self.regressor.weight)
        self.regressor.bias.data[:] = np.array([1, 0, 0, 0, 1, 0], dtype=self.regressor.bias.dtype)

    def forward(self, x):
        return self.regressor(self.features(x)).reshape(-1, 2, 3)


class SpatialTransformer(nn.Module):
    """Samples an out_size x out_size view of each image where its localisation net points
    (grid generator and sampler of section 3.2-3.3). localisation=None fixes theta at the
    identity: the whole image, resampled to out_size (the plain network's view)."""

    def __init__(self, out_size, localisation=None):
        super().__init__()
        self.out_size = out_size
        self.localisation = localisation

    def theta(self, x):
        if self.localisation is not None:
            return self.localisation(x)
        identity = np.tile(np.array([[1, 0, 0], [0, 1, 0]], dtype=x.dtype), (x.shape[0], 1, 1))
        return Tensor(identity)

    def forward(self, x):
        size = (x.shape[0], x.shape[1], self.out_size, self.out_size)
        grid = F.affine_grid(self.theta(x), size, align_corners=False)
        return F.grid_sample(x, grid, align_corners=False)


class DigitClassifier(nn.Module):
    """Two 5x5 conv(+batch norm)+ReLU+pool stages and two linear layers (the paper's CNN
    baseline, narrowed), for side x side single-channel images."""

    def __init__(self, side, num_classes=10, width=16, hidden=64, batch_norm=False):
        super().__init__()
        flat = 2 * width * (side // 4) ** 2

        def stage(c_in, c_out):
            norm = [nn.BatchNorm2d(c_out)] if batch_norm else []
            return [nn.Conv2d(c_in, c_out, 5, padding=2), *norm, nn.ReLU(), nn.MaxPool2d(2)]

        self.layers = nn.Sequential(*stage(1, width), *stage(width, 2 * width),
                                    nn.Flatten(), nn.Linear(flat, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))

    def forward(self, x):
        return self.layers(x)


class TransformedClassifier(nn.Module):
    """A SpatialTransformer then a DigitClassifier on its out_size view: the ST-CNN of the paper
    with a localisation net, the plain CNN (on the same view size of the whole canvas) without."""

    def __init__(self, out_size, num_classes=10, width=16, localisation=None, batch_norm=True):
        super().__init__()
        self.transformer = SpatialTransformer(out_size, localisation)
        self.classifier = DigitClassifier(out_size, num_classes, width, batch_norm=batch_norm)

    def forward(self, x):
        return self.classifier(self.transformer(x))


@dataclass(frozen=True)
class STNOptions:
    """How train_classifier() trains build_models()'s two networks: the same data, epochs,
    batches and optimiser; they differ only in the localisation net."""
    epochs: int = 30                 # about 3 CPU minutes for both nets; at 12 the STN led by 9 points, at 30 by 13
    lr: float = 2e-3
    batch_size: int = 32
    optimizer: str = "adam"
    weight_decay: float = 0.0
    schedule: str = "cosine"
    width: int = 16                  # channels of the classifier's first stage
    out_size: int = 28               # side of the view the classifier sees
    # the localisation net's lr relative to lr: slower, so that the view changes no faster than
    # the classifier can follow. At the full rate its theta collapsed to nearly one map for all
    # images and the STN trailed the plain net (0.36 vs 0.65 test accuracy at the defaults)
    localisation_lr: float = 0.1
    seed: int = 0
    distortion: DistortionOptions = DistortionOptions()

    def train_config(self) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, lr=self.lr, batch_size=self.batch_size, optimizer=self.optimizer,
                           weight_decay=self.weight_decay, schedule=self.schedule, seed=self.seed)


def build_models(options: STNOptions, num_classes=10):
    """{"plain": ..., "stn": ...}, each seeded the same way, so their classifiers start equal."""
    models = {}
    for name in ("plain", "stn"):
        fastconv.manual_seed(options.seed)
        model = TransformedClassifier(options.out_size, num_classes, options.width)
        if name == "stn":
            model.transformer.localisation = LocalisationNet()
        models[name] = model
    return models


def train_classifier(name, model, split: Split, options: STNOptions) -> RunResult:
    """Trains one of build_models()'s networks on the split's 28x28 digits, distorted afresh for
    every batch (RandomDistortion); tests on the test digits distorted once, from seed + 1 (the
    same images for every network). The train accuracy is measured on one distortion (seed)."""
    clock = Stopwatch()
    config = options.train_config()
    trainer = Trainer(model, config, train_transform=RandomDistortion(options.distortion))
    localisation = model.transformer.localisation
    if localisation is not None:
        located = {id(p) for p in localisation.parameters()}
        groups = [{"params": [p for p in model.parameters() if id(p) not in located]},
                  {"params": list(localisation.parameters()), "lr": options.lr * options.localisation_lr}]
        trainer.optimizer = make_optimizer(groups, config)
        trainer.scheduler = make_scheduler(trainer.optimizer, config)
    x_test = distort_digits(split.x_test, options.distortion, options.seed + 1)
    history = trainer.fit(split.x_train, split.y_train, x_test, split.y_test, desc=name)
    x_train = distort_digits(split.x_train, options.distortion, options.seed)
    return RunResult(name, f"{split.name}, {describe_distortion(options.distortion)}", trainer.epoch,
                     accuracy(model, x_train, split.y_train), history["test accuracy"][-1], clock.seconds(), history)


def transformed_views(model: TransformedClassifier, images):
    """What the classifier sees of `images` (N, 1, H, W): (N, 1, out_size, out_size) numpy."""
    with fastconv.no_grad(), frozen(model):
        return model.transformer(Tensor(np.asarray(images, dtype=np.float32))).numpy().copy()


def plot_views(path, images, views, labels, predictions):
    """A PNG: each distorted input above the view its transformer sampled, titled label->prediction."""
    save_image_grid(path, [images[:, 0], views[:, 0]], ["input", "transformed"],
                    titles=[f"{label}->{prediction}" for label, prediction in zip(labels, predictions)])


def mean_zoom(model: TransformedClassifier, images):
    """The mean of sqrt|det A| over `images` for theta = [A | t]: below 1 the transformer zooms in."""
    with fastconv.no_grad(), frozen(model):
        theta = model.transformer.theta(Tensor(np.asarray(images, dtype=np.float32))).numpy()
    return float(np.mean(np.sqrt(np.abs(np.linalg.det(theta[:, :, :2])))))
