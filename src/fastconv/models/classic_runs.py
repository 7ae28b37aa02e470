"""Training runs of the classic models (models/classic.py) on a Split, one per model of the suite.

Each model's options are a frozen dataclass whose defaults are the model's; a run takes the
split and the options and returns a RunResult. train_linear and train_perceptron take a model
built by the caller, so that a script can show its construction.
"""
from dataclasses import dataclass
from typing import Tuple

import numpy as np

from fastconv.models import classic
from fastconv.models.datasets import Split
from fastconv.models.runlog import RunResult, Stopwatch, progress_bar


@dataclass(frozen=True)
class KnnOptions:
    candidates: Tuple[int, ...] = (1, 3, 5, 7, 10, 15)  # the values of k that cross-validation compares
    folds: int = 5
    seed: int = 0                                        # which samples fall in which fold


@dataclass(frozen=True)
class LinearOptions:
    """Minibatch SGD on a linear classifier's loss; the defaults are linear_svm's."""
    epochs: int = 20
    lr: float = 0.01
    reg: float = 1e-4          # L2 regularisation strength
    batch_size: int = 200
    seed: int = 0              # the initial weights and the order of the batches


@dataclass(frozen=True)
class SoftmaxOptions(LinearOptions):
    lr: float = 0.5            # cross-entropy's gradients are smaller than the hinge's


@dataclass(frozen=True)
class PerceptronOptions:
    epochs: int = 20           # at most; training stops at the first epoch without a mistake
    seed: int = 0              # the order of the samples


def n_features(split: Split) -> int:
    return int(np.prod(split.sample_shape))


def run_knn(split: Split, options: KnnOptions = KnnOptions()) -> RunResult:
    """Chooses k by k-fold cross-validation on the training split, then scores that k."""
    clock = Stopwatch()
    with progress_bar(options.folds, "knn cross-validation", unit="fold") as bar:
        mean_accuracy, k = classic.cross_validate_k(split.x_train, split.y_train, options.candidates, options.folds,
                                                    options.seed, progress=bar.update)
    model = classic.KNearestNeighbors(k).fit(split.x_train, split.y_train)
    # A training sample is its own nearest neighbour, so train accuracy is the
    # cross-validated one: the honest number for a model that memorises.
    return RunResult(f"knn (k={k}, {options.folds}-fold CV)", split.name, 0, mean_accuracy[k],
                     classic.accuracy(model, split.x_test, split.y_test), clock.seconds(),
                     history={"cv accuracy by k": [mean_accuracy[c] for c in options.candidates]},
                     x_axis={"cv accuracy by k": ("k (neighbours that vote)", list(options.candidates))})


def train_linear(name: str, model: classic.LinearClassifier, split: Split, options: LinearOptions) -> RunResult:
    """options.epochs of minibatch SGD on `model`, scored on both sets after each epoch."""
    clock = Stopwatch()
    loader = model.loader(split.x_train, split.y_train, options.batch_size)
    history = {"loss": [], "train accuracy": [], "test accuracy": []}
    with progress_bar(options.epochs, name) as bar:
        for _ in range(options.epochs):
            history["loss"].append(model.train_epoch(loader, options.lr, options.reg))
            history["train accuracy"].append(classic.accuracy(model, split.x_train, split.y_train))
            history["test accuracy"].append(classic.accuracy(model, split.x_test, split.y_test))
            bar.set_postfix(loss=f"{history['loss'][-1]:.3f}", test=f"{history['test accuracy'][-1]:.3f}")
            bar.update()
    return RunResult(name, split.name, options.epochs, history["train accuracy"][-1], history["test accuracy"][-1],
                     clock.seconds(), history)


def run_linear_svm(split: Split, options: LinearOptions = LinearOptions()) -> RunResult:
    model = classic.LinearSVM(n_features(split), split.num_classes, seed=options.seed)
    return train_linear("linear_svm", model, split, options)


def run_softmax(split: Split, options: LinearOptions = SoftmaxOptions()) -> RunResult:
    model = classic.SoftmaxClassifier(n_features(split), split.num_classes, seed=options.seed)
    return train_linear("softmax", model, split, options)


def train_perceptron(model: classic.Perceptron, split: Split, options: PerceptronOptions) -> RunResult:
    """Online perceptron epochs until an epoch makes no mistake (separated) or the epoch budget ends."""
    clock = Stopwatch()
    history = {"mistakes per epoch": [], "test accuracy": []}
    with progress_bar(options.epochs, "perceptron") as bar:
        for _ in range(options.epochs):
            history["mistakes per epoch"].append(model.train_epoch(split.x_train, split.y_train))
            history["test accuracy"].append(classic.accuracy(model, split.x_test, split.y_test))
            bar.set_postfix(mistakes=history["mistakes per epoch"][-1])
            bar.update()
            if history["mistakes per epoch"][-1] == 0:
                break
    return RunResult("perceptron", split.name, len(history["test accuracy"]),
                     classic.accuracy(model, split.x_train, split.y_train), history["test accuracy"][-1],
                     clock.seconds(), history)


def run_perceptron(split: Split, options: PerceptronOptions = PerceptronOptions()) -> RunResult:
    model = classic.Perceptron(n_features(split), split.num_classes, seed=options.seed)
    return train_perceptron(model, split, options)
