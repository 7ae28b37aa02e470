"""Training runs of the segmentation networks (models/segmentation.py) on digit scenes.

A run trains one network on the semantic maps of fastconv.data.digit_scenes with pixel-wise
cross-entropy, reports the held-out scenes' mean IoU after every epoch, and returns a
SegmentationResult (summary line, loss and mIoU plot). Options are frozen dataclasses whose
defaults are each network's; the steps are public so that the programs in python/ show them.
"""
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import numpy as np

import fastconv
from fastconv import cli
from fastconv import functional as F
from fastconv.autograd import Tensor, no_grad
from fastconv.data import ArrayDataset, DataLoader, SCENE_CLASSES, DigitScenes, digit_scenes
from fastconv.models.runlog import RunResult, Stopwatch, progress_bar
from fastconv.models.segmentation import AttentionToScale, FCN, HRNet, confusion_matrix, iou_per_class
from fastconv.models.trainer import TrainConfig, make_optimizer, make_scheduler

NUM_CLASSES = len(SCENE_CLASSES)


@dataclass(frozen=True)
class SegmentationOptions:
    """How a segmentation network is trained, and on how many scenes."""
    epochs: int = 8
    lr: float = 2e-3
    batch_size: int = 16
    optimizer: str = "adam"          # "adam" or "sgd" (momentum 0.9)
    weight_decay: float = 1e-4
    schedule: str = "cosine"         # "cosine", "step" or "none", stepped per epoch
    seed: int = 0                    # the scenes, the initial weights and the shuffling
    width: int = 16                  # channels of the first stage (FCN) or branch (HRNet)
    train_scenes: int = 4000
    test_scenes: int = 500
    size: int = 64                   # side of the scenes, in pixels
    class_balance: float = 0.5       # loss weights (median frequency / frequency) ** class_balance
    output_stride: int = 2           # FCN: the finest pool its skips reach (8: FCN-8s)

    def train_config(self) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, lr=self.lr, batch_size=self.batch_size, optimizer=self.optimizer,
                           weight_decay=self.weight_decay, schedule=self.schedule, seed=self.seed)


@dataclass(frozen=True)
class AttentionOptions(SegmentationOptions):
    scales: Tuple[float, ...] = (1.0, 1.5)  # digit strokes are 2-4 px: a half-size copy draws them 1 px wide
    extra_supervision: bool = True   # a loss on each scale's own output too (Chen et al., section 3.3)


# Defaults chosen so each program in python/ runs in under 15 minutes on 2 cores. A step on a
# batch of 16 costs, on one core: FCN-2s at width 16 72-78 ms, HRNet at width 6 79 ms (width 8:
# 114 ms), the FCN on scales 1 and 1.5 with attention 220 ms. HRNet trains as the FCN does
# (same scenes, steps and per-step cost) but at a higher learning rate, the best of those tried;
# the attention program's three networks train on fewer scenes.
HRNET_OPTIONS = SegmentationOptions(width=6, lr=5e-3)
ATTENTION_OPTIONS = AttentionOptions(epochs=4, train_scenes=2000, test_scenes=300)


@dataclass
class SegmentationResult(RunResult):
    """RunResult whose accuracies are mean IoUs; iou holds the test scenes' IoU per class."""
    iou: Optional[np.ndarray] = None

    def summary(self):
        return (f"{self.model} on {self.data}: {self.epochs} epochs, train mIoU {self.train_accuracy:.4f}, "
                f"test mIoU {self.test_accuracy:.4f}, {self.seconds:.1f} s")


def load_scenes(options: SegmentationOptions) -> Tuple[DigitScenes, DigitScenes]:
    """(train, test) digit scenes of the options' sizes and seed; test scenes come from MNIST's
    test digits, so no digit image is seen in training."""
    train = digit_scenes("train", options.train_scenes, size=options.size, seed=options.seed)
    test = digit_scenes("test", options.test_scenes, size=options.size, seed=options.seed)
    return train, test


def describe_scenes(train: DigitScenes, test: DigitScenes) -> str:
    side = train.images.shape[-1]
    return f"digit scenes {side}x{side}: {len(train):,} train, {len(test):,} test ({train.source.split(',')[0]})"


def class_weights(semantic, balance):
    """Per-class loss weights (median frequency / class frequency) ** balance: 0 weighs every
    pixel alike; 1 is Eigen & Fergus's median frequency balancing, which keeps the background
    (nineteen pixels in twenty) from drowning the digits' strokes. Absent classes get weight 1."""
    counts = np.bincount(semantic.ravel(), minlength=NUM_CLASSES).astype(np.float64)
    frequency = counts / counts.sum()
    present = frequency > 0
    weights = np.ones(NUM_CLASSES)
    weights[present] = (np.median(frequency[present]) / frequency[present]) ** balance
    return weights.astype(np.float32)


def weighted_cross_entropy(scores, target, weights):
    """Cross-entropy of each pixel weighted by its true class's weight, averaged by the weights
    (torch's cross_entropy(weight=...)); an all-background batch is still a plain mean."""
    pixel_weights = weights[target]
    return (F.cross_entropy(scores, target, reduction="none") * pixel_weights).sum() / float(pixel_weights.sum())


def describe(model, options: SegmentationOptions) -> str:
    """One line on the network's size and how it will be trained."""
    return (f"{sum(p.size for p in model.parameters()):,} parameters; {options.epochs} epochs of {options.optimizer}, "
            f"lr {options.lr} on a {options.schedule} schedule, batches of {options.batch_size}, "
            f"class balance {options.class_balance}")


def iou_table(iou) -> str:
    """The IoU of each class on one line: background, then the digits."""
    names = ["bg"] + [str(d) for d in range(10)]
    return "IoU  " + "  ".join(f"{name} {value:.2f}" for name, value in zip(names, iou))


def pixel_loss(weights):
    """loss(model, images, target): the weighted cross-entropy over every pixel of the batch."""
    def loss(model, images, target):
        return weighted_cross_entropy(model(Tensor(images)), target, weights)
    return loss


def multi_scale_loss(weights, extra_supervision):
    """The loss of AttentionToScale: cross-entropy of the merged output, plus, with extra
    supervision, that of every scale's own output (Chen et al. 2016, section 3.3)."""
    def loss(model, images, target):
        merged, per_scale, _ = model.forward_with_scales(Tensor(images))
        total = weighted_cross_entropy(merged, target, weights)
        for scores in per_scale if extra_supervision else ():
            total = total + weighted_cross_entropy(scores, target, weights)
        return total
    return loss


@no_grad()
def predict(model, images, batch_size=50):
    """Per-pixel classes (N, H, W) of model in eval mode; restores the mode it found."""
    was_training = model.training
    model.eval()
    predictions = [model(Tensor(images[i:i + batch_size])).data.argmax(axis=1)
                   for i in range(0, len(images), batch_size)]
    model.train(was_training)
    return np.concatenate(predictions)


def evaluate(model, scenes: DigitScenes):
    """(mean IoU, IoU per class) of model's predictions on the scenes."""
    iou = iou_per_class(confusion_matrix(predict(model, scenes.images), scenes.semantic, NUM_CLASSES))
    return float(np.nanmean(iou)), iou


def train_segmenter(name: str, model, train: DigitScenes, test: DigitScenes, options: SegmentationOptions,
                    loss: Optional[Callable] = None) -> SegmentationResult:
    """Trains model on the train scenes' semantic maps; loss(model, images, target) -> Tensor,
    by default pixel_loss with the options' class balance. History: the mean training loss and
    the test scenes' mIoU per epoch."""
    loss = loss or pixel_loss(class_weights(train.semantic, options.class_balance))
    clock, config = Stopwatch(), options.train_config()
    optimizer = make_optimizer(list(model.parameters()), config)
    scheduler = make_scheduler(optimizer, config)
    loader = DataLoader(ArrayDataset(train.images, train.semantic), min(options.batch_size, len(train)),
                        shuffle=True, drop_last=True, seed=options.seed)
    history = {"loss": [], "test mIoU": []}
    with progress_bar(options.epochs * len(loader), name, unit="batch") as bar:
        for epoch in range(options.epochs):
            model.train()
            losses = []
            for images, target in loader:
                value = loss(model, images, target)
                optimizer.zero_grad()
                value.backward()
                optimizer.step()
                losses.append(value.item())
                bar.update()
                bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
            scheduler.step()
            history["loss"].append(float(np.mean(losses)))
            history["test mIoU"].append(evaluate(model, test)[0])
            bar.set_postfix(epoch=epoch + 1, loss=f"{history['loss'][-1]:.3f}", test=f"{history['test mIoU'][-1]:.3f}")
    test_miou, iou = evaluate(model, test)
    train_miou, _ = evaluate(model, _first(train, len(test)))
    return SegmentationResult(name, describe_scenes(train, test), options.epochs, train_miou, test_miou,
                              clock.seconds(), history, iou=iou)


def _first(scenes: DigitScenes, count):
    return DigitScenes(scenes.images[:count], scenes.semantic[:count], scenes.boxes[:count], scenes.labels[:count],
                       scenes.masks[:count], scenes.source, scenes.instances[:count])


def fcn(options: SegmentationOptions) -> FCN:
    """The FCN of `options`, its initial weights drawn from options.seed."""
    fastconv.manual_seed(options.seed)
    return FCN(1, NUM_CLASSES, options.width, options.output_stride)


def hrnet(options: SegmentationOptions) -> HRNet:
    """The HRNet of `options`, its initial weights drawn from options.seed."""
    fastconv.manual_seed(options.seed)
    return HRNet(1, NUM_CLASSES, options.width)


def fcn_name(options: SegmentationOptions) -> str:
    return f"fcn-{options.output_stride}s"


def run_fcn(train, test, options: SegmentationOptions = SegmentationOptions(), name=None) -> SegmentationResult:
    return train_segmenter(name or fcn_name(options), fcn(options), train, test, options)


def run_hrnet(train, test, options: SegmentationOptions = SegmentationOptions()) -> SegmentationResult:
    return train_segmenter("hrnet", hrnet(options), train, test, options)


def train_and_report(args, name, model, train, test, options: SegmentationOptions) -> SegmentationResult:
    """What python/fcn.py and python/hrnet.py do once they have a model: describe it, train it,
    print the IoU per class and the summary, and write the plot and predictions asked for."""
    print(describe(model, options))
    result = train_segmenter(name, model, train, test, options)
    print(iou_table(result.iou))
    cli.report(result, args.plot)
    if args.predictions is not None:
        save_predictions(args.predictions, model, test, result.summary())
        print(f"wrote the predictions to {args.predictions}")
    return result


def run_attention_to_scale(train, test, options: AttentionOptions = AttentionOptions(), merge="attention"):
    """The FCN on options.scales merged by `merge` ("attention", "max" or "average"); returns
    (SegmentationResult, the trained model)."""
    fastconv.manual_seed(options.seed)
    model = AttentionToScale(FCN(1, NUM_CLASSES, options.width, options.output_stride), options.scales, merge)
    result = train_segmenter(f"{merge} over scales", model, train, test, options,
                             multi_scale_loss(class_weights(train.semantic, options.class_balance),
                                              options.extra_supervision))
    return result, model


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")  # scripts run headless; no display is needed to write a PNG
    import matplotlib.pyplot as plt
    return plt


def plot_comparison(path, results, title):
    """The loss and the test mIoU per epoch of several runs, one line each, side by side."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for result in results:
        for ax, metric in zip(axes, ("loss", "test mIoU")):
            values = result.history[metric]
            ax.plot(range(1, len(values) + 1), values, marker=".", label=result.model)
            ax.set_title(metric)
            ax.set_xlabel("epoch")
    axes[1].legend()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


@no_grad()
def attention_weights(model: AttentionToScale, images):
    """The per-pixel weights (N, scales, H/s, W/s) that model's attention head gives images."""
    was_training = model.training
    model.eval()
    weights = model.forward_with_scales(Tensor(images))[2].data
    model.train(was_training)
    return weights


def plot_attention(path, images, weights, scales):
    """A PNG of a few scenes and, below each, the attention weight of every scale (white: 1)."""
    plt = _pyplot()
    count = len(images)
    fig, axes = plt.subplots(1 + len(scales), count, figsize=(1.6 * count, 1.7 * (1 + len(scales))), squeeze=False)
    for column in range(count):
        axes[0, column].imshow(images[column, 0], cmap="gray", vmin=0, vmax=1)
        for row, scale in enumerate(scales, start=1):
            axes[row, column].imshow(weights[column, row - 1], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    axes[0, 0].set_ylabel("image")
    for row, scale in enumerate(scales, start=1):
        axes[row, 0].set_ylabel(f"scale {scale:g}")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("attention to scale: per-pixel weight of each scale", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_predictions(path, images, truth, prediction, title):
    """A PNG of a few scenes: the image, the true classes and the predicted ones, a row each."""
    plt = _pyplot()

    count = len(images)
    fig, axes = plt.subplots(3, count, figsize=(1.6 * count, 5.2), squeeze=False)
    for column in range(count):
        axes[0, column].imshow(images[column, 0], cmap="gray", vmin=0, vmax=1)
        for row, labels in ((1, truth), (2, prediction)):
            axes[row, column].imshow(labels[column], cmap="tab20", vmin=0, vmax=19, interpolation="nearest")
    for row, name in enumerate(("image", "truth", "predicted")):
        axes[row, 0].set_ylabel(name)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_predictions(path, model, scenes: DigitScenes, title, count=8):
    """plot_predictions of model on the first `count` scenes."""
    images = scenes.images[:count]
    plot_predictions(path, images, scenes.semantic[:count], predict(model, images), title)
