"""Training runs of the neural networks, one function per `fastconv train` model.

Each takes the parsed command-line options (None meaning the model's default, below) and
returns a RunResult whose data name says what it trained on (and any reshaping of the images).
"""
import numpy as np

import fastconv
from fastconv.data import Compose, Normalize, RandomCrop, RandomHorizontalFlip
from fastconv.models import deep
from fastconv.models.datasets import fit_to_side, load_split
from fastconv.models.runlog import RunResult, Stopwatch
from fastconv.models.trainer import Trainer, TrainConfig, accuracy

# Chosen so each default run on --data mnist (4,000 training digits) takes a few minutes on 2 cores.
DEFAULTS = {
    "mlp": dict(epochs=10, lr=0.05, batch_size=64, width=256, weight_decay=5e-4, schedule="cosine"),
    "lenet5": dict(epochs=6, lr=0.05, batch_size=64, weight_decay=5e-4, schedule="cosine"),
    "alexnet": dict(epochs=15, lr=0.02, batch_size=64, width=32, weight_decay=5e-4, schedule="cosine"),
    "vgg": dict(epochs=4, lr=0.05, batch_size=64, width=16, weight_decay=5e-4, schedule="cosine"),
    # He et al. 2016: lr 0.1, weight decay 1e-4, momentum 0.9, lr / 10 twice (batch 128 on 50k images;
    # 64 here gives the few thousand bundled digits more steps per epoch)
    "resnet20": dict(epochs=2, lr=0.1, batch_size=64, width=16, weight_decay=1e-4, schedule="step"),
}
XOR_DEFAULTS = dict(epochs=50, lr=0.1, batch_size=32, width=8, weight_decay=0.0, schedule="none")


def _option(args, model, name):
    value = getattr(args, name, None)
    if value is not None:
        return value
    return (XOR_DEFAULTS if args.data == "xor" else DEFAULTS[model])[name]


def _config(args, model):
    return TrainConfig(epochs=_option(args, model, "epochs"), lr=_option(args, model, "lr"),
                       batch_size=_option(args, model, "batch_size"),
                       optimizer=getattr(args, "optimizer", None) or "sgd",
                       nesterov=bool(getattr(args, "nesterov", False)),
                       weight_decay=_option(args, model, "weight_decay"), schedule=_option(args, model, "schedule"),
                       seed=args.seed, checkpoint=getattr(args, "checkpoint", None),
                       resume=bool(getattr(args, "resume", False)))


def _data(args, images=True):
    """The split and the data's printed name; with images=True, images brought to the 32x32
    NCHW the convolutional nets take."""
    (x_train, x_test, y_train, y_test), name = load_split(args.data, getattr(args, "data_dir", None), args.seed,
                                                          getattr(args, "limit", None))
    if images:
        if x_train.ndim != 4:
            raise ValueError(f"{name} holds no images; the convolutional nets need --data mnist, digits or cifar10")
        side = x_train.shape[2]
        if side != deep.INPUT_SIZE:
            x_train, x_test = fit_to_side(x_train, deep.INPUT_SIZE), fit_to_side(x_test, deep.INPUT_SIZE)
            upsampled = "upsampled and " if 2 * side <= deep.INPUT_SIZE else ""
            name += f", {upsampled}padded to {deep.INPUT_SIZE}x{deep.INPUT_SIZE}"
    return x_train, x_test, y_train, y_test, name


def _transforms(args, x_train):
    """Normalise with the training set's per-channel statistics; augment by random crops
    (4 pixels of padding on CIFAR-10, 2 on digits) and, for natural images only, horizontal
    flips (a mirrored digit is another symbol). Returns (train transform, eval transform)."""
    axes = (0, 2, 3)
    normalize = Normalize(x_train.mean(axis=axes), x_train.std(axis=axes) + 1e-6)
    augment = [] if getattr(args, "no_augment", False) else [
        RandomCrop(x_train.shape[2], padding=4 if args.data == "cifar10" else 2)]
    if augment and args.data == "cifar10":
        augment.append(RandomHorizontalFlip())
    return Compose(augment + [normalize]), normalize


def _train(args, model_name, build):
    """build(sample_shape, num_classes, width) -> the model; width is None for a net without one."""
    is_mlp = model_name == "mlp"
    x_train, x_test, y_train, y_test, data = _data(args, images=not is_mlp)
    clock = Stopwatch()
    fastconv.manual_seed(args.seed)  # the initial weights and the dropout masks
    width = _option(args, model_name, "width") if "width" in DEFAULTS[model_name] else None
    model = build(x_train.shape[1:], int(y_train.max()) + 1, width)
    train_transform, eval_transform = _transforms(args, x_train) if not is_mlp else (None, None)
    if is_mlp and x_train.ndim == 4:  # pixels centred and scaled once; the MLP needs no augmentation
        mean, std = x_train.mean(), x_train.std()
        x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    trainer = Trainer(model, _config(args, model_name), train_transform, eval_transform)
    history = trainer.fit(x_train, y_train, x_test, y_test, desc=model_name)
    train_accuracy = accuracy(model, x_train, y_train, transform=eval_transform)
    return RunResult(model_name, data, trainer.epoch, train_accuracy, history["test accuracy"][-1],
                     clock.seconds(), history)


def run_mlp(args):
    activation = "tanh" if args.data == "xor" else "relu"
    return _train(args, "mlp", lambda shape, k, width: deep.MLP(int(np.prod(shape)), k, width, activation))


def run_lenet5(args):
    return _train(args, "lenet5", lambda shape, k, width: deep.LeNet5(shape[0], k))


def run_alexnet(args):
    return _train(args, "alexnet", lambda shape, k, width: deep.AlexNetSmall(shape[0], k, width=width))


def run_vgg(args):
    return _train(args, "vgg", lambda shape, k, width: deep.VGGSmall(shape[0], k, width=width))


def run_resnet20(args):
    shortcut = getattr(args, "shortcut", None) or "A"
    return _train(args, "resnet20",
                  lambda shape, k, width: deep.ResNet20(shape[0], k, width=width, shortcut=shortcut))
