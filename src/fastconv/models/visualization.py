"""Seeing inside a trained network, and using its features: saliency maps, class visualisation,
fooling images and neural style transfer, each a gradient with respect to the input image taken
by fastconv's autograd.

  saliency_maps        max over channels of |d score_class / d image|
                       (Simonyan, Vedaldi & Zisserman 2014, sec. 3.1)
  class_visualization  an image that maximises one class score, L2-regularised, with jitter and
                       periodic blur (Simonyan et al. 2014, sec. 2; Yosinski et al. 2015)
  targeted_attack      a nearby image classified as a chosen class: signed-gradient steps projected
                       on an L-inf ball (Szegedy et al. 2014; Kurakin, Goodfellow & Bengio 2017)
  style_transfer       Gatys, Ecker & Bethge 2016, from gram_matrix, content_loss, style_loss and
                       total_variation_loss
  RandomFeatureNet     features of an untrained multi-scale conv net, which carry texture
                       statistics (Ustyuzhaninov et al. 2017)

Models are read in eval mode and their parameters are left untouched (their requires_grad is
switched off while an image is optimised, and restored).
"""
import contextlib
from dataclasses import dataclass
from typing import Sequence, Tuple

import numpy as np

import fastconv
from fastconv import functional as F
from fastconv import nn, ops, optim
from fastconv.autograd import Tensor
from fastconv.models.runlog import progress_bar


@contextlib.contextmanager
def frozen(model):
    """model in eval mode with its parameters out of the graph: only the image gets a gradient."""
    params = list(model.parameters())
    wanted, was_training = [p.requires_grad for p in params], model.training
    for p in params:
        p.requires_grad = False
    model.eval()
    try:
        yield model
    finally:
        for p, requires in zip(params, wanted):
            p.requires_grad = requires
        model.train(was_training)


def _one_hot(labels, num_classes, dtype):
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.min(initial=0) < 0 or labels.max(initial=0) >= num_classes:
        raise ValueError(f"labels: expected a 1-d array of classes in [0, {num_classes}), got {labels!r}")
    return np.eye(num_classes, dtype=dtype)[labels]


def _images(images):
    images = np.asarray(images)
    if images.ndim != 4 or images.dtype.kind != "f":
        raise ValueError(f"images: expected a float (N, C, H, W) array, got {images.dtype} {images.shape}")
    return images


def score_gradient(model, images, labels):
    """d (sum over i of score[i, labels[i]]) / d images: each image's own class score's gradient."""
    x = Tensor(_images(images).copy(), requires_grad=True)
    with frozen(model):
        scores = model(x)
        if len(labels) != len(images):
            raise ValueError(f"labels: expected one per image ({len(images)}), got {len(labels)}")
        (scores * Tensor(_one_hot(labels, scores.shape[1], scores.dtype))).sum().backward()
    return x.grad.numpy()


def saliency_maps(model, images, labels):
    """(N, H, W): how much a small change of each pixel moves the class score, the largest absolute
    gradient over the channels (Simonyan et al. 2014, eq. 3 and sec. 3.1)."""
    return np.abs(score_gradient(model, images, labels)).max(axis=1)


def gaussian_kernel(sigma, radius=None):
    """A normalised 1-d Gaussian of half-width radius (default ceil(2 sigma))."""
    radius = int(np.ceil(2 * sigma)) if radius is None else radius
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    return taps / taps.sum()


def blur(images, sigma):
    """Each channel blurred by a Gaussian (fastconv's depthwise conv2d, zero padding at the edges)."""
    if sigma <= 0:
        return images
    taps = gaussian_kernel(sigma).astype(images.dtype)
    channels, radius = images.shape[1], len(taps) // 2
    kernel = np.tile(np.outer(taps, taps)[None, None], (channels, 1, 1, 1))
    return np.array(ops.conv2d(images, kernel, padding=radius, groups=channels))


@dataclass(frozen=True)
class ClassVisualizationOptions:
    """Gradient ascent on score_c(x) - l2 * ||x - centre||^2 (Simonyan et al. eq. 1) with Yosinski
    et al.'s regularisers: a random shift of up to `jitter` pixels before each step and a blur of
    `blur_sigma` every `blur_every` steps, which keep high-frequency patterns out."""
    steps: int = 150
    lr: float = 0.05                 # step per pixel, the gradient scaled to unit RMS
    l2: float = 0.01
    jitter: int = 2
    blur_every: int = 10
    blur_sigma: float = 0.5
    value_range: Tuple[float, float] = (0.0, 1.0)
    seed: int = 0


def class_visualization(model, target, shape, options: ClassVisualizationOptions = ClassVisualizationOptions()):
    """An image of `shape` (C, H, W) that the model scores highly as class `target`."""
    rng = np.random.default_rng(options.seed)
    low, high = options.value_range
    centre = (low + high) / 2
    dtype = next(iter(model.parameters())).dtype  # the image is the model's input: same dtype
    image = (centre + 0.05 * (high - low) * rng.standard_normal((1, *shape))).astype(dtype)
    for step in range(1, options.steps + 1):
        dy, dx = rng.integers(-options.jitter, options.jitter + 1, 2)
        shifted = np.roll(image, (dy, dx), axis=(2, 3))
        gradient = score_gradient(model, shifted, [target]) - 2 * options.l2 * (shifted - centre)
        gradient = np.roll(gradient, (-dy, -dx), axis=(2, 3))
        image = np.clip(image + options.lr * gradient / (np.sqrt(np.mean(gradient ** 2)) + 1e-12), low, high)
        if options.blur_every and step % options.blur_every == 0:
            image = blur(image, options.blur_sigma)
    return image[0]


@dataclass(frozen=True)
class AttackOptions:
    """The targeted basic iterative method: `steps` signed-gradient steps of `step_size` down the
    cross-entropy of the target class, each projected back into the L-inf ball of radius
    `epsilon` around the image and into value_range; a sample stops once it is classified as its
    target (the smallest perturbation the walk finds)."""
    # 0.3: the usual MNIST budget (Madry et al. 2018). On the digit CNN of
    # python/network_visualization.py it fools 98% of test digits (mean L-inf 0.18); within 0.2
    # about 75%, however many steps
    epsilon: float = 0.3
    step_size: float = 0.01
    steps: int = 100
    value_range: Tuple[float, float] = (0.0, 1.0)

    def __post_init__(self):
        if not (self.epsilon > 0 and self.step_size > 0 and self.steps >= 1):
            raise ValueError(f"epsilon, step_size, steps: expected positive values, got {self.epsilon}, "
                             f"{self.step_size}, {self.steps}")


@dataclass
class AttackResult:
    adversarial: np.ndarray          # (N, C, H, W)
    success: np.ndarray              # (N,) bool: classified as the target
    l2: np.ndarray                   # (N,) Euclidean size of each perturbation
    linf: np.ndarray                 # (N,) largest pixel change of each perturbation

    def summary(self, epsilon):
        return (f"{self.success.mean():.1%} of {len(self.success)} images fooled into their target class "
                f"within L-inf {epsilon:g}: mean L2 {self.l2.mean():.3f}, mean L-inf {self.linf.mean():.3f}, "
                f"max L-inf {self.linf.max():.3f}")


def _predictions(model, images):
    with fastconv.no_grad(), frozen(model):
        return model(Tensor(images)).numpy().argmax(axis=1)


def targeted_attack(model, images, targets, options: AttackOptions = AttackOptions()) -> AttackResult:
    """Fooling images: each image moved, within options.epsilon per pixel, until the model calls
    it targets[i]."""
    images, targets = _images(images), np.asarray(targets)
    low, high = options.value_range
    adversarial = images.copy()
    active = _predictions(model, adversarial) != targets
    for _ in range(options.steps):
        if not active.any():
            break
        x = Tensor(adversarial[active], requires_grad=True)
        with frozen(model):
            F.cross_entropy(model(x), targets[active], reduction="sum").backward()
        moved = adversarial[active] - options.step_size * np.sign(x.grad.numpy())
        original = images[active]
        adversarial[active] = np.clip(np.clip(moved, original - options.epsilon, original + options.epsilon), low, high)
        active[active] = _predictions(model, adversarial[active]) != targets[active]
    change = (adversarial - images).reshape(len(images), -1)
    return AttackResult(adversarial, _predictions(model, adversarial) == targets,
                        np.linalg.norm(change, axis=1), np.abs(change).max(axis=1))


# ---- neural style transfer (Gatys, Ecker & Bethge 2016) -------------------------------------------

def gram_matrix(features, normalize=True):
    """features (N, C, H, W) -> (N, C, C), G = F F^T over the H*W positions (Gatys et al. eq. 3),
    divided by C*H*W when normalize so that layers of different sizes weigh alike."""
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    gram = flat @ flat.transpose(1, 2)
    return gram / float(c * h * w) if normalize else gram


def content_loss(features, target_features):
    """Sum of squared feature differences (Gatys et al. eq. 1, without the 1/2)."""
    return ((features - target_features) ** 2).sum()


def style_loss(features: Sequence, target_grams: Sequence, weights: Sequence[float]):
    """Sum over layers of weight * squared distance of Gram matrices (Gatys et al. eqs. 4-5)."""
    if not len(features) == len(target_grams) == len(weights):
        raise ValueError(f"features, target_grams, weights: expected one per layer, got {len(features)}, "
                         f"{len(target_grams)}, {len(weights)}")
    terms = [weight * ((gram_matrix(f) - g) ** 2).sum() for f, g, weight in zip(features, target_grams, weights)]
    return sum(terms[1:], terms[0])


def total_variation_loss(images):
    """Sum of squared differences of vertically and horizontally adjacent pixels: a smoothness prior."""
    vertical = images[:, :, 1:, :] - images[:, :, :-1, :]
    horizontal = images[:, :, :, 1:] - images[:, :, :, :-1]
    return (vertical ** 2).sum() + (horizontal ** 2).sum()


class RandomFeatureNet(nn.Module):
    """An untrained feature extractor for style transfer where no pretrained ImageNet network is
    available: stages of 3x3 conv (He-initialised from `seed`) + ReLU + 2x2 average pooling
    (Gatys et al. prefer average to max pooling for synthesis), widening with depth. The stages'
    receptive fields grow from 3 to 46 pixels, so their Gram matrices describe texture at several
    scales; Ustyuzhaninov et al. 2017 show that random multi-scale filters carry enough texture
    statistics for synthesis. forward() returns every stage's activations."""

    def __init__(self, in_channels=3, widths=(32, 64, 128, 128), seed=0):
        super().__init__()
        fastconv.manual_seed(seed)
        layers, channels = [], in_channels
        for width in widths:
            conv = nn.Conv2d(channels, width, 3, padding=1)
            nn.init.kaiming_normal_(conv.weight, mode="fan_in", nonlinearity="relu")
            nn.init.zeros_(conv.bias)
            layers.append(conv)
            channels = width
        self.convs = nn.ModuleList(layers)

    def forward(self, x):
        features = []
        x = x - 0.5  # centred pixels: a random ReLU layer then keeps about half its units active
        for i, conv in enumerate(self.convs):
            if i > 0:
                x = F.avg_pool2d(x, 2)
            x = F.relu(conv(x))
            features.append(x)
        return features


@dataclass(frozen=True)
class StyleTransferOptions:
    """Weights of the three terms and the optimisation (Adam on the pixels, which are clipped to
    [0, 1] after each step; the image starts from the content photo)."""
    steps: int = 300
    lr: float = 0.02
    content_layer: int = 2                                      # index into the feature net's stages
    content_weight: float = 1e-3
    style_layers: Tuple[int, ...] = (0, 1, 2, 3)
    style_weights: Tuple[float, ...] = (1e4, 1e4, 1e4, 1e4)
    tv_weight: float = 1e-4           # 1e-2 blurred the result to a smudge at 128x128

    def __post_init__(self):
        if len(self.style_layers) != len(self.style_weights):
            raise ValueError(f"style_layers, style_weights: expected one weight per layer, got "
                             f"{len(self.style_layers)} layers and {len(self.style_weights)} weights")


def style_transfer(feature_net, content, style, options: StyleTransferOptions = StyleTransferOptions(),
                   show_progress=True):
    """content (3, H, W) and style (3, H', W') in [0, 1] -> (image (3, H, W), loss history): the
    content's layout painted with the style's Gram statistics under the features of
    `feature_net` (a Module returning a list of activations, one per stage, as RandomFeatureNet)."""
    content, style = _images(content[None]), _images(style[None])
    with frozen(feature_net) as features_of:
        return _paint(features_of, content, style, options, show_progress)


def _paint(features_of, content, style, options, show_progress):
    with fastconv.no_grad():
        content_target = Tensor(features_of(Tensor(content))[options.content_layer].numpy().copy())
        style_features = features_of(Tensor(style))
        style_targets = [Tensor(gram_matrix(style_features[i]).numpy().copy()) for i in options.style_layers]
    image = nn.Parameter(content.copy())
    optimizer = optim.Adam([image], lr=options.lr)
    history = []
    with progress_bar(options.steps, "style transfer", unit="step", show=show_progress) as bar:
        for _ in range(options.steps):
            features = features_of(image)
            loss = (options.content_weight * content_loss(features[options.content_layer], content_target)
                    + style_loss([features[i] for i in options.style_layers], style_targets, options.style_weights)
                    + options.tv_weight * total_variation_loss(image))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            np.clip(image.data, 0, 1, out=image.data)
            history.append(loss.item())
            bar.update()
            bar.set_postfix(loss=f"{history[-1]:.3g}", refresh=False)
    return image.numpy()[0].copy(), history


# ---- figures ----------------------------------------------------------------------------------

def save_image_grid(path, rows, row_labels, titles=None, title=None, cmaps=None):
    """A PNG of images in a grid: rows[r][c] is an (H, W) or (3, H, W) array shown as it is
    (grey scale in [0, 1] for 2-d ones unless cmaps[r] names a colour map, which then spans the
    image's own range); row_labels name the rows, titles[c] the columns."""
    import matplotlib
    matplotlib.use("Agg")  # headless: no display is needed to write a PNG
    import matplotlib.pyplot as plt

    n_rows, n_cols = len(rows), max(len(row) for row in rows)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.4 * n_cols + 0.4, 1.4 * n_rows + 0.4), squeeze=False)
    for r, row in enumerate(rows):
        cmap = (cmaps or [None] * n_rows)[r]
        for c, ax in enumerate(axes[r]):
            ax.set_xticks([]), ax.set_yticks([])
            if c >= len(row):
                ax.axis("off")
                continue
            image = np.asarray(row[c])
            if image.ndim == 3:
                ax.imshow(np.clip(image.transpose(1, 2, 0), 0, 1))
            elif cmap is not None:
                ax.imshow(image, cmap=cmap)
            else:
                ax.imshow(image, cmap="gray", vmin=0, vmax=1)
            if r == 0 and titles is not None:
                ax.set_title(titles[c], fontsize=8)
        axes[r, 0].set_ylabel(row_labels[r], fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
