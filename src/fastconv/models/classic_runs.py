"""Training runs of the classic models on bundled real digits, one function per `fastconv train` model.

Each takes the parsed command-line options (None meaning the model's default, below) and
returns a RunResult.
"""
import numpy as np

from fastconv.models import classic
from fastconv.models.datasets import load_split
from fastconv.models.runlog import RunResult, Stopwatch, progress_bar

DEFAULTS = {
    "linear_svm": dict(epochs=20, lr=0.01, reg=1e-4, batch_size=200),
    "softmax": dict(epochs=20, lr=0.5, reg=1e-4, batch_size=200),
    "perceptron": dict(epochs=20),
}
KNN_CANDIDATES = (1, 3, 5, 7, 10, 15)
KNN_FOLDS = 5


def _option(args, model, name):
    value = getattr(args, name, None)
    return DEFAULTS[model][name] if value is None else value


def _split(args):
    return load_split(args.data, getattr(args, "data_dir", None), args.seed, getattr(args, "limit", None))


def run_knn(args):
    """Chooses k by k-fold cross-validation on the training split, then scores that k."""
    (x_train, x_test, y_train, y_test), data = _split(args)
    clock = Stopwatch()
    with progress_bar(KNN_FOLDS, "knn cross-validation", unit="fold") as bar:
        mean_accuracy, k = classic.cross_validate_k(x_train, y_train, KNN_CANDIDATES, KNN_FOLDS, args.seed,
                                                    progress=bar.update)
    model = classic.KNearestNeighbors(k).fit(x_train, y_train)
    # A training sample is its own nearest neighbour, so train accuracy is the
    # cross-validated one: the honest number for a model that memorises.
    return RunResult(f"knn (k={k}, {KNN_FOLDS}-fold CV)", data, 0, mean_accuracy[k],
                     classic.accuracy(model, x_test, y_test), clock.seconds(),
                     {"cv accuracy by k": [mean_accuracy[k] for k in KNN_CANDIDATES]})


def _run_linear(args, model_name, model_class):
    (x_train, x_test, y_train, y_test), data = _split(args)
    epochs, lr, reg, batch_size = (_option(args, model_name, name) for name in ("epochs", "lr", "reg", "batch_size"))
    clock = Stopwatch()
    model = model_class(n_features=x_train[0].size, n_classes=int(y_train.max()) + 1, seed=args.seed)
    loader = model.loader(x_train, y_train, batch_size)
    history = {"loss": [], "train accuracy": [], "test accuracy": []}
    with progress_bar(epochs, model_name) as bar:
        for _ in range(epochs):
            history["loss"].append(model.train_epoch(loader, lr, reg))
            history["train accuracy"].append(classic.accuracy(model, x_train, y_train))
            history["test accuracy"].append(classic.accuracy(model, x_test, y_test))
            bar.set_postfix(loss=f"{history['loss'][-1]:.3f}", test=f"{history['test accuracy'][-1]:.3f}")
            bar.update()
    return RunResult(model_name, data, epochs, history["train accuracy"][-1], history["test accuracy"][-1],
                     clock.seconds(), history)


def run_linear_svm(args):
    return _run_linear(args, "linear_svm", classic.LinearSVM)


def run_softmax(args):
    return _run_linear(args, "softmax", classic.SoftmaxClassifier)


def run_perceptron(args):
    """Online perceptron epochs until an epoch makes no mistake (separated) or the epoch budget ends."""
    (x_train, x_test, y_train, y_test), data = _split(args)
    epochs = _option(args, "perceptron", "epochs")
    clock = Stopwatch()
    model = classic.Perceptron(n_features=x_train[0].size, n_classes=int(y_train.max()) + 1, seed=args.seed)
    history = {"mistakes per epoch": [], "test accuracy": []}
    with progress_bar(epochs, "perceptron") as bar:
        for _ in range(epochs):
            history["mistakes per epoch"].append(model.train_epoch(x_train, y_train))
            history["test accuracy"].append(classic.accuracy(model, x_test, y_test))
            bar.set_postfix(mistakes=history["mistakes per epoch"][-1])
            bar.update()
            if history["mistakes per epoch"][-1] == 0:
                break
    return RunResult("perceptron", data, len(history["test accuracy"]), classic.accuracy(model, x_train, y_train),
                     history["test accuracy"][-1], clock.seconds(), history)
