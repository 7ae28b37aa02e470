"""Semantic segmentation networks, built from fastconv.nn: FCN (FCN-8s and finer), attention to
scale over a shared FCN, and a small HRNet; and the mean intersection-over-union they are measured by.

Every network maps images (N, C_in, H, W) to per-pixel class scores (N, num_classes, H, W).
"""
import numpy as np

from fastconv import functional as F
from fastconv import nn
from fastconv.autograd import cat, stack
from fastconv.autograd.tensor import array_of
from fastconv.models.deep import BasicBlock, conv_bn_relu


# ---- the metric ---------------------------------------------------------------------------

def confusion_matrix(prediction, target, num_classes):
    """(num_classes, num_classes) int64 counts: row = true class, column = predicted class."""
    prediction, target = np.asarray(prediction), np.asarray(target)
    if prediction.shape != target.shape:
        raise ValueError(f"confusion_matrix: prediction of shape {prediction.shape} and target of shape "
                         f"{target.shape} differ")
    for name, labels in (("prediction", prediction), ("target", target)):
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f"confusion_matrix: {name} holds classes outside [0, {num_classes})")
    pairs = target.astype(np.int64).ravel() * num_classes + prediction.astype(np.int64).ravel()
    return np.bincount(pairs, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def iou_per_class(confusion):
    """Intersection over union of each class; NaN for a class neither predicted nor present."""
    intersection = np.diag(confusion).astype(np.float64)
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - intersection
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, intersection / union, np.nan)


def mean_iou(prediction, target, num_classes):
    """The mean over classes of intersection / union (Long et al. 2015, section 5), over the
    classes that appear in the target or the prediction: a class absent from both is no
    evidence either way. prediction, target: integer class maps of one shape."""
    iou = iou_per_class(confusion_matrix(prediction, target, num_classes))
    return float(np.nanmean(iou)) if not np.isnan(iou).all() else float("nan")


# ---- shared pieces --------------------------------------------------------------------------

def _check_images(model, x, in_channels, multiple):
    shape = array_of(x).shape
    if len(shape) != 4 or shape[1] != in_channels:
        raise ValueError(f"{model}: input must be images (N, {in_channels}, H, W), got shape {tuple(shape)}")
    if shape[2] % multiple or shape[3] % multiple:
        raise ValueError(f"{model}: input height and width must be multiples of {multiple} (its total "
                         f"downsampling), got {shape[2]}x{shape[3]}")


def bilinear_kernel(factor):
    """The (2 factor, 2 factor) kernel of Long et al.'s bilinear upsampling (FCN's
    upsample_filt): with stride factor and padding factor / 2, a transposed convolution with it
    is bilinear interpolation by `factor` (align_corners=False) away from the border."""
    size = 2 * factor
    centre = factor - 0.5
    taps = 1 - np.abs(np.arange(size) - centre) / factor
    return np.outer(taps, taps).astype(np.float32)


def bilinear_upsampler(channels, factor):
    """A transposed convolution that upsamples each channel by `factor` (even), initialised to
    bilinear interpolation and learned from there (Long et al. 2015, section 3.3)."""
    if factor < 2 or factor % 2:
        raise ValueError(f"factor: expected an even upsampling factor >= 2, got {factor}")
    layer = nn.ConvTranspose2d(channels, channels, 2 * factor, stride=factor, padding=factor // 2, bias=False)
    weight = np.zeros(layer.weight.shape, dtype=np.float32)
    weight[np.arange(channels), np.arange(channels)] = bilinear_kernel(factor)
    layer.weight.data[...] = weight
    return layer


def _resized(x, size):
    """x bilinearly resized to size (h, w); x itself when it has that size."""
    return x if tuple(x.shape[2:]) == tuple(size) else F.interpolate(x, size=size, mode="bilinear")


def _he_init(model):
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")


# ---- FCN ------------------------------------------------------------------------------------

class FCN(nn.Module):
    """Long, Shelhamer & Darrell 2015, "Fully convolutional networks for semantic segmentation",
    on a small VGG-style backbone: five stages of 3x3 conv+BN+ReLU each ended by a 2x2 max pool
    (widths w, 2w, 4w, 8w, 8w), VGG's fully connected layers as convolutions (3x3 then 1x1,
    16w) and a 1x1 score layer on them, at 1/32 of the input. Skip fusion (section 4.2): the
    scores are upsampled 2x by a transposed convolution initialised to bilinear and added to a
    1x1 score layer on the pool output of that resolution, down to 1/output_stride; a last
    bilinear-initialised transposed convolution brings them to the input's size.

    output_stride=8 is the paper's FCN-8s (skips from pool4 at 1/16 and pool3 at 1/8), 16 and
    32 its FCN-16s and FCN-32s. 4 and 2 continue the same recipe with pool2 and pool1: on
    digit scenes the masks are pen strokes two to four pixels wide, which scores at 1/8 cannot
    draw. The skip score layers start at zero, so training starts from the coarser net's output."""

    DOWNSAMPLING = 32
    OUTPUT_STRIDES = (32, 16, 8, 4, 2)

    def __init__(self, in_channels=1, num_classes=11, width=16, output_stride=8, convs_per_stage=(1, 1, 2, 2, 2)):
        super().__init__()
        if len(convs_per_stage) != 5:
            raise ValueError(f"convs_per_stage: expected 5 stages (VGG's), got {convs_per_stage}")
        if output_stride not in self.OUTPUT_STRIDES:
            raise ValueError(f"output_stride: expected one of {self.OUTPUT_STRIDES}, got {output_stride}")
        self.in_channels, self.num_classes, self.output_stride = in_channels, num_classes, output_stride
        self.stage_widths = stage_widths = [width * min(2 ** stage, 8) for stage in range(5)]
        stages, channels = [], in_channels
        for stage_width, convs in zip(stage_widths, convs_per_stage):
            layers = []
            for _ in range(convs):
                layers += conv_bn_relu(channels, stage_width)
                channels = stage_width
            stages.append(nn.Sequential(*layers, nn.MaxPool2d(2)))
        self.stages = nn.ModuleList(stages)
        self.fc_channels = 16 * width
        self.fc = nn.Sequential(*conv_bn_relu(channels, self.fc_channels),
                                nn.Conv2d(self.fc_channels, self.fc_channels, 1, bias=False),
                                nn.BatchNorm2d(self.fc_channels), nn.ReLU())
        self.score_fc = nn.Conv2d(self.fc_channels, num_classes, 1)
        # One skip per pool from pool4 (stride 16) down to the output stride, finest last.
        skipped = [stage for stage in (3, 2, 1, 0) if 2 ** (stage + 1) >= output_stride]
        self.skip_stages = skipped
        self.score_pools = nn.ModuleList([nn.Conv2d(stage_widths[stage], num_classes, 1) for stage in skipped])
        self.upscores = nn.ModuleList([bilinear_upsampler(num_classes, 2) for _ in skipped])
        self.upscore_out = bilinear_upsampler(num_classes, output_stride)
        _he_init(self.stages)
        _he_init(self.fc)
        for layer in self.score_pools:
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def coarse_scores(self, x):
        """(scores at 1/output_stride of the input's size, [the output of each pool: 1/2 to 1/32])."""
        _check_images("FCN", x, self.in_channels, self.DOWNSAMPLING)
        pools = []
        for stage in self.stages:
            x = stage(x)
            pools.append(x)
        scores = self.score_fc(self.fc(x))
        for stage, score_pool, upscore in zip(self.skip_stages, self.score_pools, self.upscores):
            scores = upscore(scores) + score_pool(pools[stage])
        return scores, pools

    def forward(self, x):
        return self.upscore_out(self.coarse_scores(x)[0])


# ---- attention to scale ---------------------------------------------------------------------

class AttentionToScale(nn.Module):
    """Chen, Yang, Wang, Xu & Yuille 2016, "Attention to scale: scale-aware semantic image
    segmentation": one FCN shared by several resized copies of the input; each copy's scores
    are resized (bilinear) to a common grid, the FCN's output stride at the input's size, and
    merged there, then upsampled to the input's size by the FCN's own bilinear-initialised layer.

    merge="attention": an attention head (3x3 conv + ReLU + 1x1 conv, section 3.2) reads the
    FCN's features at 1/8 of each scale (its pool3: the paper's head reads DeepLab's features
    at stride 8), resized to 1/8 of the input (the paper's grid), and gives a score per scale;
    upsampled (bilinear) to the merge grid, their softmax over scales (eq. 2) weighs each
    pixel's scales' scores in the sum that is the output (eq. 1).
    merge="max" or "average": the paper's baselines, the per-pixel max or mean over scales.
    forward_with_scales() also returns each scale's own scores, for the extra supervision
    (section 3.3) and the attention weights, to look at."""

    MERGES = ("attention", "max", "average")
    ATTENTION_STRIDE = 8  # the head's grid, DeepLab's output stride in the paper; its weights are upsampled
    ATTENTION_POOL = 2    # the FCN's pool at ATTENTION_STRIDE (pool3): 1/32 (its fc layers) is 2x2 cells on
                          # a 64-pixel scene, too coarse to tell one digit's best scale from its neighbour's

    def __init__(self, fcn: FCN, scales=(1.0, 0.5), merge="attention", hidden=64):
        super().__init__()
        if merge not in self.MERGES:
            raise ValueError(f"merge: expected one of {self.MERGES}, got {merge!r}")
        if len(scales) < 2 or any(s <= 0 for s in scales) or scales[0] != 1:
            raise ValueError(f"scales: expected 1 followed by one or more other positive scales, got {scales}")
        self.fcn, self.scales, self.merge = fcn, tuple(scales), merge
        self.num_classes = fcn.num_classes
        if merge == "attention":
            features = fcn.stage_widths[self.ATTENTION_POOL]
            self.attention = nn.Sequential(nn.Conv2d(len(scales) * features, hidden, 3, padding=1), nn.ReLU(),
                                           nn.Conv2d(hidden, len(scales), 1))

    def _per_scale(self, x):
        """Each scale's scores, resized to the grid of the full-size input's, and its features at
        ATTENTION_STRIDE, resized to ATTENTION_STRIDE of the input."""
        _check_images("AttentionToScale", x, self.fcn.in_channels, self.fcn.DOWNSAMPLING)
        for scale in self.scales:
            if any((side * scale) % self.fcn.DOWNSAMPLING for side in x.shape[2:]):
                raise ValueError(f"AttentionToScale: the input, {x.shape[2]}x{x.shape[3]}, at scale {scale} must "
                                 f"still have sides that are multiples of {self.fcn.DOWNSAMPLING}")
        score_grid = tuple(side // self.fcn.output_stride for side in x.shape[2:])
        attention_grid = tuple(side // self.ATTENTION_STRIDE for side in x.shape[2:])
        scores, features = [], []
        for scale in self.scales:
            scaled = x if scale == 1 else F.interpolate(x, scale_factor=scale, mode="bilinear",
                                                        recompute_scale_factor=True)
            scale_scores, pools = self.fcn.coarse_scores(scaled)
            scores.append(_resized(scale_scores, score_grid))
            features.append(_resized(pools[self.ATTENTION_POOL], attention_grid))
        return scores, features

    def forward_with_scales(self, x):
        """(merged scores (N, K, H, W), [each scale's scores (N, K, H, W)], attention weights
        (N, scales, H/s, W/s) for the FCN's output stride s, or None unless merge="attention")."""
        scores, features = self._per_scale(x)
        weights = None
        if self.merge == "attention":
            logits = _resized(self.attention(cat(features, dim=1)), scores[0].shape[2:])
            weights = F.softmax(logits, 1)
            merged = sum(weights[:, i:i + 1] * s for i, s in enumerate(scores))
        elif self.merge == "max":
            merged = stack(scores, dim=0).max(axis=0)
        else:
            merged = stack(scores, dim=0).mean(axis=0)
        upsample = self.fcn.upscore_out
        return upsample(merged), [upsample(s) for s in scores], weights

    def forward(self, x):
        return self.forward_with_scales(x)[0]


# ---- HRNet ----------------------------------------------------------------------------------

def _conv_bn(in_channels, out_channels, kernel, stride=1, relu=True):
    layers = [nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2, bias=False),
              nn.BatchNorm2d(out_channels)]
    return layers + [nn.ReLU()] if relu else layers


class FuseLayer(nn.Module):
    """HRNet's exchange unit (Sun et al. 2019, section 3): output branch i sums every branch j,
    brought to its resolution and width: j above i (lower resolution) by a 1x1 conv + BN and
    bilinear upsampling; j below i by i - j strided 3x3 conv + BN (ReLU between them); j = i
    as it is. A ReLU follows the sum."""

    def __init__(self, channels):
        super().__init__()
        self.paths = nn.ModuleList([nn.ModuleList([self._path(channels, j, i) for j in range(len(channels))])
                                    for i in range(len(channels))])

    @staticmethod
    def _path(channels, source, target):
        if source == target:
            return nn.Sequential()
        if source > target:
            return nn.Sequential(*_conv_bn(channels[source], channels[target], 1, relu=False))
        steps = target - source
        layers = []
        for step in range(steps):
            last = step == steps - 1
            layers += _conv_bn(channels[source], channels[target] if last else channels[source], 3, stride=2,
                               relu=not last)
        return nn.Sequential(*layers)

    def forward(self, branches):
        fused = []
        for i, paths in enumerate(self.paths):
            total = None
            for j, (path, x) in enumerate(zip(paths, branches)):
                y = path(x)
                if j > i:
                    y = _resized(y, branches[i].shape[2:])
                total = y if total is None else total + y
            fused.append(total.relu())
        return fused


class HRModule(nn.Module):
    """Basic residual blocks on each branch at its own resolution, then one FuseLayer."""

    def __init__(self, channels, blocks=1):
        super().__init__()
        self.branches = nn.ModuleList([nn.Sequential(*[BasicBlock(c, c) for _ in range(blocks)]) for c in channels])
        self.fuse = FuseLayer(channels)

    def forward(self, branches):
        return self.fuse([branch(x) for branch, x in zip(self.branches, branches)])


class HRNet(nn.Module):
    """A small HRNet (Sun, Xiao, Liu & Wang 2019; the segmentation head of HRNetV2, Sun et al.
    2019b): a stem of two 3x3 convs (the first strided) to 1/2 of the input, then four
    resolution branches (1/2, 1/4, 1/8, 1/16 with w, 2w, 4w, 8w channels) added one per stage
    by a strided 3x3 conv from the lowest one, each stage `modules_per_stage` HRModules that
    fuse all branches. The head upsamples every branch to 1/2 (bilinear), concatenates them,
    mixes with 1x1 conv+BN+ReLU, scores with a 1x1 conv and upsamples 2x (bilinear)."""

    DOWNSAMPLING = 16

    def __init__(self, in_channels=1, num_classes=11, width=16, modules_per_stage=(1, 1, 1), blocks=1):
        super().__init__()
        if len(modules_per_stage) != 3:
            raise ValueError(f"modules_per_stage: expected 3 stages (2, 3 and 4 branches), got {modules_per_stage}")
        self.in_channels, self.num_classes = in_channels, num_classes
        self.stem = nn.Sequential(*_conv_bn(in_channels, width, 3, stride=2), *_conv_bn(width, width, 3),
                                  BasicBlock(width, width))
        channels = [width * 2 ** k for k in range(4)]
        self.transitions = nn.ModuleList([nn.Sequential(*_conv_bn(channels[k - 1], channels[k], 3, stride=2))
                                          for k in range(1, 4)])
        self.stages = nn.ModuleList([
            nn.Sequential(*[HRModule(channels[:k + 2], blocks) for _ in range(modules)])
            for k, modules in enumerate(modules_per_stage)])
        self.head = nn.Sequential(*_conv_bn(sum(channels), sum(channels), 1))
        self.score = nn.Conv2d(sum(channels), num_classes, 1)  # PyTorch's default init: small first scores
        _he_init(self.stem)
        _he_init(self.transitions)
        _he_init(self.stages)
        _he_init(self.head)

    def forward(self, x):
        _check_images("HRNet", x, self.in_channels, self.DOWNSAMPLING)
        size = x.shape[2:]
        branches = [self.stem(x)]
        for transition, stage in zip(self.transitions, self.stages):
            branches = branches + [transition(branches[-1])]
            for module in stage:
                branches = module(branches)
        high = branches[0].shape[2:]
        upsampled = [_resized(b, high) for b in branches]
        return F.interpolate(self.score(self.head(cat(upsampled, dim=1))), size=size, mode="bilinear")
