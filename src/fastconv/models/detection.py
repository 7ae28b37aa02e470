"""Faster R-CNN and Mask R-CNN, small enough to train on a CPU, with torchvision's structure.

Ren, He, Girshick & Sun 2015, "Faster R-CNN": a convolutional backbone; a region proposal
network (RPN) that scores and refines anchors (boxes of several sizes and aspect ratios centred
on every feature cell), trained on sampled anchors labelled by IoU with the ground truth; its
best boxes after NMS are the proposals; each proposal's features are pooled by ROI Align (He et
al. 2017; ROI Pool, Girshick 2015, as an option) into a fixed grid and classified, and its box
refined per class. With proposals="sliding" the RPN is left out and fixed sliding windows are
the proposals: Fast R-CNN with a naive proposal method, to show what the RPN is worth.

He, Gkioxari, Dollar & Girshick 2017, "Mask R-CNN": a mask head of a small FCN on a 14x14 ROI
Align of each positive proposal predicts a 28x28 mask per class, trained with per-pixel binary
cross entropy on the mask of the proposal's class. The mask head reads a stride-2 map (one FPN
top-down step, MaskFeatures) through pixel-aligned ROI Align (aligned=True, always ROI Align,
whatever the box head's pooler), and its targets are aligned the same way
(project_masks_on_boxes): thin objects such as pen strokes lose most of their IoU otherwise.

Every layer runs through fastconv's ops and autograd; the box arithmetic (IoU, NMS, box
deltas, anchors, matching) through the compiled fastconv.ops.boxes.
"""
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from fastconv import functional as F
from fastconv import nn, ops, optim
from fastconv.autograd import Tensor, no_grad
from fastconv.autograd.elementwise import stable_sigmoid
from fastconv.models import detection_metrics
from fastconv.models.runlog import progress_bar
from fastconv.nn import init
from fastconv.ops.boxes import BELOW_LOW_THRESHOLD, BETWEEN_THRESHOLDS, clip_boxes_to_image, remove_small_boxes

PROPOSAL_METHODS = ("rpn", "sliding")
POOLERS = ("align", "pool")
MASK_FEATURE_STRIDES = (2, 4)
RPN_BOX_WEIGHTS = (1.0, 1.0, 1.0, 1.0)        # torchvision's RPN BoxCoder
HEAD_BOX_WEIGHTS = (10.0, 10.0, 5.0, 5.0)     # torchvision's RoIHeads BoxCoder
BOX_LOSS_BETA = 1.0 / 9                       # torchvision's smooth L1 beta for both box losses


@dataclass(frozen=True)
class Instances:
    """The objects of one image: boxes (K, 4) float32 [x1, y1, x2, y2], labels (K,) int64 in
    1..num_classes-1 (0 is background) and, for instance segmentation, masks (K, H, W) bool."""
    boxes: np.ndarray
    labels: np.ndarray
    masks: Optional[np.ndarray] = None


@dataclass(frozen=True)
class Detections(Instances):
    """What a detector finds in one image: Instances with a confidence score (K,) each."""
    scores: np.ndarray = None


@dataclass(frozen=True)
class DetectorConfig:
    """The sizes and thresholds of a detector (torchvision's names and defaults, scaled to small
    images: fewer anchors, proposals and sampled ROIs)."""
    anchor_sizes: Tuple[float, ...] = (12.0, 20.0, 32.0)
    aspect_ratios: Tuple[float, ...] = (0.5, 1.0, 2.0)  # height / width
    rpn_fg_iou_thresh: float = 0.7
    rpn_bg_iou_thresh: float = 0.3
    rpn_batch_size_per_image: int = 128
    rpn_positive_fraction: float = 0.5
    rpn_pre_nms_top_n: Tuple[int, int] = (600, 300)    # (training, testing)
    rpn_post_nms_top_n: Tuple[int, int] = (100, 50)
    rpn_nms_thresh: float = 0.7
    sliding_window_stride: int = 8                     # proposals="sliding": windows every 8 pixels
    box_fg_iou_thresh: float = 0.5
    box_bg_iou_thresh: float = 0.5
    box_batch_size_per_image: int = 64
    box_positive_fraction: float = 0.25
    box_score_thresh: float = 0.05
    box_nms_thresh: float = 0.5
    detections_per_image: int = 20
    mask_rois_per_image: int = 8                       # positive ROIs per image the mask head trains on
    mask_threshold: float = 0.5
    mask_feature_stride: int = 2                       # 2: the mask head reads MaskFeatures; 4: the backbone's


class Backbone(nn.Module):
    """Four 3x3 conv + batch norm + ReLU layers and two 2x2 max pools: features of `width * 4`
    channels at 1/4 of the image's resolution (stride 4; receptive field 26 pixels).
    levels() also returns the `width * 2` channels at 1/2 before the second pool."""

    stride = 4

    def __init__(self, in_channels=1, width=16):
        super().__init__()
        widths = [in_channels, width, 2 * width, 4 * width, 4 * width]

        def layer(i):
            return [nn.Conv2d(widths[i], widths[i + 1], 3, padding=1, bias=False), nn.BatchNorm2d(widths[i + 1]),
                    nn.ReLU()]
        self.fine = nn.Sequential(*layer(0), nn.MaxPool2d(2), *layer(1))
        self.coarse = nn.Sequential(nn.MaxPool2d(2), *layer(2), *layer(3))
        self.fine_channels, self.out_channels = widths[2], widths[-1]

    def levels(self, x):
        """(features at stride 2, features at stride 4)."""
        fine = self.fine(x)
        return fine, self.coarse(fine)

    def forward(self, x):
        return self.levels(x)[1]


class MaskFeatures(nn.Module):
    """A stride-2 map for the mask head, one top-down step of a feature pyramid (Lin et al.
    2017, FPN): the stride-4 features upsampled 2x (bilinear) plus a 1x1 lateral conv of the
    backbone's stride-2 features, then a 3x3 conv + ReLU. A digit's pen stroke is 2-4 pixels
    wide: one cell at stride 4, two at stride 2."""

    def __init__(self, fine_channels, coarse_channels, channels):
        super().__init__()
        self.lateral = nn.Conv2d(fine_channels, coarse_channels, 1)
        self.smooth = nn.Conv2d(coarse_channels, channels, 3, padding=1)

    def forward(self, fine, coarse):
        top_down = F.interpolate(coarse, size=tuple(fine.shape[2:]), mode="bilinear")
        return self.smooth(self.lateral(fine) + top_down).relu()


def _init_head(*layers):
    """torchvision's initialisation of the RPN and mask-predictor layers: N(0, 0.01), zero bias."""
    for layer in layers:
        init.normal_(layer.weight, std=0.01)
        init.zeros_(layer.bias)


class RPNHead(nn.Module):
    """A 3x3 conv, then per cell and anchor an objectness logit and four box deltas."""

    def __init__(self, channels, num_anchors):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.cls_logits = nn.Conv2d(channels, num_anchors, 1)
        self.bbox_pred = nn.Conv2d(channels, 4 * num_anchors, 1)
        _init_head(self.conv, self.cls_logits, self.bbox_pred)

    def forward(self, features):
        """-> objectness (N, H*W*A), deltas (N, H*W*A, 4), cell-major like grid_anchors."""
        t = self.conv(features).relu()
        n, a, h, w = t.shape[0], self.cls_logits.out_channels, t.shape[2], t.shape[3]
        objectness = self.cls_logits(t).permute(0, 2, 3, 1).reshape(n, h * w * a)
        deltas = self.bbox_pred(t).reshape(n, a, 4, h, w).permute(0, 3, 4, 1, 2).reshape(n, h * w * a, 4)
        return objectness, deltas


class BoxHead(nn.Module):
    """Two fully connected layers on the pooled ROI (TwoMLPHead), then class logits and
    per-class box deltas (FastRCNNPredictor)."""

    def __init__(self, in_features, num_classes, hidden=256):
        super().__init__()
        self.fc6, self.fc7 = nn.Linear(in_features, hidden), nn.Linear(hidden, hidden)
        self.cls_score = nn.Linear(hidden, num_classes)
        self.bbox_pred = nn.Linear(hidden, 4 * num_classes)

    def forward(self, pooled):
        t = self.fc7(self.fc6(pooled.flatten(1)).relu()).relu()
        return self.cls_score(t), self.bbox_pred(t)


class MaskHead(nn.Module):
    """Mask R-CNN's head, narrower: two 3x3 convs on the 14x14 ROI, a 2x2 transposed conv to
    28x28 and a 1x1 conv to one mask logit map per class."""

    def __init__(self, in_channels, num_classes, channels=32):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.upsample = nn.ConvTranspose2d(channels, channels, 2, stride=2)
        self.mask_logits = nn.Conv2d(channels, num_classes, 1)
        _init_head(self.mask_logits)

    def forward(self, pooled):
        t = self.conv2(self.conv1(pooled).relu()).relu()
        return self.mask_logits(self.upsample(t).relu())


class FasterRCNN(nn.Module):
    """Faster R-CNN (proposals="rpn") or Fast R-CNN on sliding windows (proposals="sliding"),
    with a Mask R-CNN mask head when masks=True.

    model.loss(images, targets) -> dict of the training losses (Tensors);
    model.detect(images) -> one Detections per image (in eval mode: call model.eval() first).
    images: (N, C, H, W) float32; targets: one Instances per image.
    """

    def __init__(self, num_classes, in_channels=1, width=16, proposals="rpn", pooler="align", masks=False,
                 config: DetectorConfig = DetectorConfig(), seed=0):
        super().__init__()
        if proposals not in PROPOSAL_METHODS:
            raise ValueError(f"proposals: expected one of {PROPOSAL_METHODS}, got {proposals!r}")
        if pooler not in POOLERS:
            raise ValueError(f"pooler: expected one of {POOLERS}, got {pooler!r}")
        if num_classes < 2:
            raise ValueError(f"num_classes: expected at least 2 (background and one class), got {num_classes}")
        if config.mask_feature_stride not in MASK_FEATURE_STRIDES:
            raise ValueError(f"config.mask_feature_stride: expected one of {MASK_FEATURE_STRIDES}, "
                             f"got {config.mask_feature_stride!r}")
        self.num_classes, self.proposals, self.pooler, self.config = num_classes, proposals, pooler, config
        self.backbone = Backbone(in_channels, width)
        channels = self.backbone.out_channels
        num_anchors = len(config.anchor_sizes) * len(config.aspect_ratios)
        self.rpn = RPNHead(channels, num_anchors) if proposals == "rpn" else None
        self.box_head = BoxHead(channels * 7 * 7, num_classes)
        self.mask_head = MaskHead(channels, num_classes) if masks else None
        fine_masks = masks and config.mask_feature_stride == 2
        self.mask_features = MaskFeatures(self.backbone.fine_channels, channels, channels) if fine_masks else None
        self.sampler = np.random.default_rng(seed)  # which anchors and ROIs each step trains on

    # ---- anchors and proposals ---------------------------------------------------------------

    def anchors(self, feature_size):
        """The RPN's anchors on a feature map of feature_size = (H, W) cells."""
        stride = self.backbone.stride
        return ops.grid_anchors(feature_size, (stride, stride), self.config.anchor_sizes, self.config.aspect_ratios)

    def sliding_windows(self, image_size):
        """Fast R-CNN's proposals here: windows of every anchor shape, centred every
        sliding_window_stride pixels, clipped to the image."""
        stride = self.config.sliding_window_stride
        cells = (image_size[0] // stride, image_size[1] // stride)
        windows = ops.grid_anchors(cells, (stride, stride), self.config.anchor_sizes, self.config.aspect_ratios)
        windows = clip_boxes_to_image(windows + np.float32(stride / 2), image_size)
        return windows[remove_small_boxes(windows, 1.0)]

    def _rpn_proposals(self, objectness, deltas, anchors, image_size):
        """Per image: the top-scoring anchors, decoded, clipped, NMS'd (Ren et al. 2015, 3.3)."""
        phase = 0 if self.training else 1
        pre, post = self.config.rpn_pre_nms_top_n[phase], self.config.rpn_post_nms_top_n[phase]
        proposals = []
        for scores, image_deltas in zip(objectness, deltas):
            top = np.argsort(-scores, kind="stable")[:pre]
            boxes = clip_boxes_to_image(ops.decode_boxes(image_deltas[top], anchors[top], RPN_BOX_WEIGHTS), image_size)
            keep = remove_small_boxes(boxes, 1.0)
            boxes, scores_kept = boxes[keep], scores[top][keep]
            proposals.append(boxes[ops.nms(boxes, scores_kept, self.config.rpn_nms_thresh)[:post]])
        return proposals

    def propose(self, features, image_size):
        """-> (proposals per image, RPN outputs (objectness, deltas, anchors) or None)."""
        if self.rpn is None:
            windows = self.sliding_windows(image_size)
            return [windows] * features.shape[0], None
        objectness, deltas = self.rpn(features)
        anchors = self.anchors(features.shape[2:])
        proposals = self._rpn_proposals(objectness.data, deltas.data, anchors, image_size)
        return proposals, (objectness, deltas, anchors)

    # ---- training targets --------------------------------------------------------------------

    def _sample(self, labels, batch_size, positive_fraction):
        """Balanced sampling of training examples (torchvision's BalancedPositiveNegativeSampler):
        up to positive_fraction of batch_size positives (label > 0), the rest negatives (0);
        label -1 is ignored. -> indices."""
        positive, negative = np.flatnonzero(labels > 0), np.flatnonzero(labels == 0)
        num_pos = min(len(positive), int(batch_size * positive_fraction))
        num_neg = min(len(negative), batch_size - num_pos)
        return np.concatenate([self.sampler.permutation(positive)[:num_pos],
                               self.sampler.permutation(negative)[:num_neg]]).astype(np.int64)

    @staticmethod
    def _match(truth_boxes, boxes, high, low, allow_low_quality):
        """Each box's matched ground truth (or BELOW_LOW_THRESHOLD / BETWEEN_THRESHOLDS)."""
        return ops.match_boxes(ops.box_iou(truth_boxes, boxes), high, low, allow_low_quality)

    def rpn_loss(self, objectness, deltas, anchors, targets):
        """Objectness (binary cross entropy) and box (smooth L1 on positives) losses over the
        sampled anchors of every image, both divided by the number sampled (torchvision)."""
        c = self.config
        picked, labels, positive_rows, regression = [], [], [], []
        num_anchors = len(anchors)
        for i, target in enumerate(targets):
            matches = self._match(target.boxes, anchors, c.rpn_fg_iou_thresh, c.rpn_bg_iou_thresh, True)
            anchor_labels = np.where(matches >= 0, 1, np.where(matches == BETWEEN_THRESHOLDS, -1, 0))
            sample = self._sample(anchor_labels, c.rpn_batch_size_per_image, c.rpn_positive_fraction)
            picked.append(i * num_anchors + sample)
            labels.append(anchor_labels[sample])
            positive = sample[anchor_labels[sample] > 0]
            positive_rows.append(i * num_anchors + positive)
            regression.append(ops.encode_boxes(target.boxes[matches[positive]], anchors[positive], RPN_BOX_WEIGHTS))
        picked, labels = np.concatenate(picked), np.concatenate(labels).astype(np.float32)
        positive_rows, regression = np.concatenate(positive_rows), np.concatenate(regression)
        objectness_loss = F.binary_cross_entropy_with_logits(objectness.reshape(-1)[picked], labels)
        box_loss = F.smooth_l1_loss(deltas.reshape(-1, 4)[positive_rows], regression, "sum", BOX_LOSS_BETA)
        return objectness_loss, box_loss / max(len(picked), 1)

    def roi_targets(self, proposals, targets):
        """Per image: the sampled ROIs (proposals and the ground-truth boxes), their class labels
        (0: background), box regression targets and matched ground-truth index."""
        c = self.config
        sampled = []
        for boxes, target in zip(proposals, targets):
            boxes = np.concatenate([boxes, target.boxes]).astype(np.float32)  # torchvision adds the truths
            if len(target.boxes):
                matches = self._match(target.boxes, boxes, c.box_fg_iou_thresh, c.box_bg_iou_thresh, False)
            else:
                matches = np.full(len(boxes), BELOW_LOW_THRESHOLD, np.int64)
            labels = np.where(matches >= 0, target.labels[matches.clip(0)] if len(target.boxes) else 0, 0)
            labels = np.where(matches == BETWEEN_THRESHOLDS, -1, labels)
            keep = self._sample(labels, c.box_batch_size_per_image, c.box_positive_fraction)
            boxes, labels, matches = boxes[keep], labels[keep], matches[keep]
            truth = target.boxes[matches.clip(0)] if len(target.boxes) else boxes
            sampled.append((boxes, labels, ops.encode_boxes(truth, boxes, HEAD_BOX_WEIGHTS), matches))
        return sampled

    # ---- heads -------------------------------------------------------------------------------

    def pool(self, features, boxes_per_image, output_size):
        """Each box's features on an output_size grid: ROI Align (sampling ratio 2, as
        torchvision's heads) or ROI Pool."""
        scale = 1.0 / self.backbone.stride
        if self.pooler == "pool":
            return F.roi_pool(features, boxes_per_image, output_size, scale)
        return F.roi_align(features, boxes_per_image, output_size, scale, sampling_ratio=2)

    def pool_for_masks(self, mask_features, boxes_per_image):
        """Each box's mask features on the mask head's 14x14 grid: ROI Align with aligned=True
        (Detectron2's ROIAlignV2), so that its bins sit on the pixels they cover, as the mask
        targets and paste_mask do; on 2-4 pixel strokes half a pixel matters."""
        scale = 1.0 / self.config.mask_feature_stride
        return F.roi_align(mask_features, boxes_per_image, (14, 14), scale, sampling_ratio=2, aligned=True)

    def box_loss(self, features, sampled):
        boxes = [s[0] for s in sampled]
        labels = np.concatenate([s[1] for s in sampled]).astype(np.int64)
        regression = np.concatenate([s[2] for s in sampled])
        logits, deltas = self.box_head(self.pool(features, boxes, (7, 7)))
        classification = F.cross_entropy(logits, labels)
        positive = np.flatnonzero(labels > 0)
        class_deltas = deltas.reshape(len(labels), self.num_classes, 4)[positive, labels[positive]]
        box = F.smooth_l1_loss(class_deltas, regression[positive], "sum", BOX_LOSS_BETA) / max(len(labels), 1)
        return classification, box

    def features(self, images):
        """(the backbone's stride-4 features, those the mask head reads: None without one)."""
        fine, features = self.backbone.levels(images)
        if self.mask_head is None:
            return features, None
        return features, features if self.mask_features is None else self.mask_features(fine, features)

    def mask_loss(self, mask_features, sampled, targets):
        """Binary cross entropy of each positive ROI's mask of its class against its ground-truth
        mask cropped to the ROI and resampled to 28x28 (project_masks_on_boxes)."""
        rois, labels, mask_targets = [], [], []
        for (boxes, box_labels, _, matches), target in zip(sampled, targets):
            positive = np.flatnonzero(box_labels > 0)[:self.config.mask_rois_per_image]
            rois.append(boxes[positive])
            labels.append(box_labels[positive])
            if len(positive):
                mask_targets.append(project_masks_on_boxes(target.masks, matches[positive], boxes[positive]))
        labels = np.concatenate(labels).astype(np.int64)
        if not len(labels):
            return None
        logits = self.mask_head(self.pool_for_masks(mask_features, rois))
        picked = logits[np.arange(len(labels)), labels]
        return F.binary_cross_entropy_with_logits(picked, np.concatenate(mask_targets))

    def loss(self, images, targets: Sequence[Instances]):
        """The training losses of a batch, by name: rpn_objectness and rpn_box (with the RPN),
        classifier and box_reg, and mask (with the mask head)."""
        images = _image_tensor(images)
        if len(targets) != images.shape[0]:
            raise ValueError(f"targets: expected one Instances per image ({images.shape[0]}), got {len(targets)}")
        if self.mask_head is not None and any(t.masks is None for t in targets):
            raise ValueError("targets: a detector with a mask head trains on instance masks; "
                             "every Instances needs masks")
        features, mask_features = self.features(images)
        proposals, rpn_outputs = self.propose(features, images.shape[2:])
        losses = {}
        if rpn_outputs is not None:
            losses["rpn_objectness"], losses["rpn_box"] = self.rpn_loss(*rpn_outputs, targets)
        sampled = self.roi_targets(proposals, targets)
        losses["classifier"], losses["box_reg"] = self.box_loss(features, sampled)
        if self.mask_head is not None:
            mask = self.mask_loss(mask_features, sampled, targets)
            if mask is not None:
                losses["mask"] = mask
        return losses

    # ---- inference ---------------------------------------------------------------------------

    def detect(self, images) -> List[Detections]:
        """Per image: class scores and per-class boxes of every proposal, boxes below
        box_score_thresh dropped, NMS per class, the detections_per_image best kept; with the
        mask head, each detection's mask of its class pasted into the image and thresholded."""
        images = _image_tensor(images)
        image_size = images.shape[2:]
        with no_grad():
            features, mask_features = self.features(images)
            proposals, _ = self.propose(features, image_size)
            logits, deltas = self.box_head(self.pool(features, proposals, (7, 7)))
            probabilities = F.softmax(logits, 1).data
            boxes = ops.decode_boxes(deltas.data, np.concatenate(proposals), HEAD_BOX_WEIGHTS)
            detections, start = [], 0
            for i, image_proposals in enumerate(proposals):
                rows = slice(start, start + len(image_proposals))
                start += len(image_proposals)
                detections.append(self._postprocess(boxes[rows], probabilities[rows], image_size))
            if self.mask_head is not None:
                detections = self._add_masks(mask_features, detections, image_size)
        return detections

    def _postprocess(self, boxes, probabilities, image_size):
        c, k = self.config, self.num_classes
        boxes = clip_boxes_to_image(boxes.reshape(-1, 4), image_size).reshape(len(boxes), k, 4)[:, 1:].reshape(-1, 4)
        scores = probabilities[:, 1:].reshape(-1)
        labels = np.tile(np.arange(1, k, dtype=np.int64), len(probabilities))
        keep = np.flatnonzero(scores > c.box_score_thresh)
        keep = keep[remove_small_boxes(boxes[keep], 1.0)]
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        keep = ops.batched_nms(boxes, scores, labels, c.box_nms_thresh)[:c.detections_per_image]
        return Detections(boxes=boxes[keep], labels=labels[keep], scores=scores[keep])

    def _add_masks(self, mask_features, detections, image_size):
        rois = [d.boxes for d in detections]
        if not sum(len(r) for r in rois):
            no_masks = np.zeros((0,) + tuple(image_size), bool)
            return [Detections(d.boxes, d.labels, no_masks, d.scores) for d in detections]
        logits = self.mask_head(self.pool_for_masks(mask_features, rois)).data
        probabilities = stable_sigmoid(np, logits)
        with_masks, start = [], 0
        for d in detections:
            own = probabilities[start:start + len(d.boxes)]
            start += len(d.boxes)
            masks = [paste_mask(own[j, label], box, image_size) >= self.config.mask_threshold
                     for j, (label, box) in enumerate(zip(d.labels, d.boxes))]
            masks = np.stack(masks) if masks else np.zeros((0,) + tuple(image_size), bool)
            with_masks.append(Detections(d.boxes, d.labels, masks, d.scores))
        return with_masks


def _image_tensor(images):
    images = images if isinstance(images, Tensor) else Tensor(np.asarray(images, np.float32))
    if images.ndim != 4:
        raise ValueError(f"images: expected an (N, C, H, W) batch, got shape {images.shape}")
    return images


def project_masks_on_boxes(masks, matches, boxes, size=28):
    """The mask targets (K, size, size) float32: masks[matches[k]] (masks: (M, H, W)) cropped
    to boxes[k] and resampled bilinearly, as torchvision's project_masks_on_boxes but with
    aligned=True: torchvision's roi_align(aligned=False) samples half a pixel off the box, so
    paste_mask puts even a perfect mask back half a pixel off (on digit scenes' 2-4 pixel
    strokes that alone caps the mask IoU near 0.62)."""
    crops = np.concatenate([np.asarray(matches, np.float32)[:, None], np.asarray(boxes, np.float32)], axis=1)
    return ops.roi_align(masks[:, None].astype(np.float32), crops, (size, size), 1.0, aligned=True)[:, 0]


def paste_mask(mask, box, image_size):
    """A box's (M, M) mask probabilities resampled bilinearly onto the image pixels the box
    covers (pixel centres at +0.5); zero outside the box."""
    height, width = image_size
    out = np.zeros((height, width), np.float32)
    x1, y1, x2, y2 = (float(v) for v in box)
    cols = np.arange(max(int(np.floor(x1)), 0), min(int(np.ceil(x2)), width))
    rows = np.arange(max(int(np.floor(y1)), 0), min(int(np.ceil(y2)), height))
    if not len(cols) or not len(rows) or x2 <= x1 or y2 <= y1:
        return out
    m = mask.shape[0]
    u = np.clip((cols + 0.5 - x1) / (x2 - x1) * m - 0.5, 0, m - 1)
    v = np.clip((rows + 0.5 - y1) / (y2 - y1) * m - 0.5, 0, m - 1)
    u0, v0 = np.floor(u).astype(int), np.floor(v).astype(int)
    u1, v1 = np.minimum(u0 + 1, m - 1), np.minimum(v0 + 1, m - 1)
    fu, fv = (u - u0)[None, :], (v - v0)[:, None]
    top = mask[v0][:, u0] * (1 - fu) + mask[v0][:, u1] * fu
    bottom = mask[v1][:, u0] * (1 - fu) + mask[v1][:, u1] * fu
    out[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1] = top * (1 - fv) + bottom * fv
    return out


def total_loss(losses):
    """The sum of a loss dict, the quantity every step minimises."""
    names = list(losses)
    total = losses[names[0]]
    for name in names[1:]:
        total = total + losses[name]
    return total


# ---- training and evaluation ------------------------------------------------------------------

def train_detector(model, images, targets: Sequence[Instances], epochs, batch_size, lr, seed=0, desc="train",
                   show_progress=True) -> List[float]:
    """Adam with a cosine-annealed learning rate per step over `epochs` shuffled passes;
    returns the total loss of every step."""
    optimizer = optim.Adam(model.parameters(), lr=lr)
    steps_per_epoch = -(-len(images) // batch_size)
    schedule = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(epochs * steps_per_epoch, 1))
    order = np.random.default_rng(seed)
    history = []
    model.train()
    with progress_bar(epochs * steps_per_epoch, desc, unit="step", show=show_progress) as bar:
        for _ in range(epochs):
            permutation = order.permutation(len(images))
            for start in range(0, len(images), batch_size):
                batch = permutation[start:start + batch_size]
                loss = total_loss(model.loss(images[batch], [targets[i] for i in batch]))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
                history.append(float(loss.item()))
                bar.update()
                bar.set_postfix(loss=f"{np.mean(history[-20:]):.3f}")
    return history


def detect_all(model, images, batch_size=25) -> List[Detections]:
    model.eval()
    return [d for start in range(0, len(images), batch_size) for d in model.detect(images[start:start + batch_size])]


def evaluate_detections(detections, truths, masks=False):
    """box mAP@0.5 (VOC, all-point), and with masks: mask AP@0.5, the mean mask IoU of the
    instances matched at box IoU >= 0.5 and the fraction of instances matched."""
    metrics = {"box mAP@0.5": detection_metrics.mean_average_precision(detections, truths)}
    if masks:
        metrics["mask AP@0.5"] = detection_metrics.mean_average_precision(detections, truths,
                                                                          overlap=detection_metrics.mask_overlap)
        metrics["mask IoU (matched)"], metrics["instances matched"] = detection_metrics.matched_mask_iou(
            detections, truths)
    return metrics


def plot_run(path, title, images, detections, truths, loss_curves, class_names, panels=4):
    """A PNG: the loss per step of each named run, then the first `panels` test images with the
    ground truth (dashed) and the detections (solid, labelled with class and score), their masks
    overlaid."""
    import matplotlib
    matplotlib.use("Agg")  # headless
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, panels + 1, figsize=(3.2 * (panels + 1), 3.4))
    for name, curve in loss_curves.items():
        smooth = np.convolve(curve, np.ones(10) / 10, mode="valid") if len(curve) >= 10 else curve
        axes[0].plot(smooth, label=name)
    axes[0].set(title="training loss", xlabel="step", yscale="log")
    axes[0].legend(fontsize=7)
    for ax, image, det, truth in zip(axes[1:], images, detections, truths):
        ax.imshow(image[0], cmap="gray")
        if det.masks is not None:
            instance_map = np.zeros(image.shape[1:], np.int64)
            for k, mask in enumerate(det.masks[det.scores >= 0.5]):
                instance_map[mask] = k % 10 + 1
            ax.imshow(np.ma.masked_equal(instance_map, 0), cmap="tab10", alpha=0.45, vmin=1, vmax=10)
        for box in truth.boxes:
            ax.add_patch(plt.Rectangle(box[:2], box[2] - box[0], box[3] - box[1], fill=False, ec="yellow", ls="--"))
        for box, label, score in zip(det.boxes, det.labels, det.scores):
            if score < 0.5:
                continue
            ax.add_patch(plt.Rectangle(box[:2], box[2] - box[0], box[3] - box[1], fill=False, ec="red"))
            ax.text(box[0], box[1] - 1, f"{class_names[label]} {score:.2f}", color="red", fontsize=7)
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
