"""Faster R-CNN and Mask R-CNN (fastconv.models.detection), their metrics and losses: metrics on
cases with known answers, losses against their formulas and numerical gradients, and brief
training on hand-made scenes (squares and rings) that must lower the loss and beat chance."""
import importlib.util
import re

import numpy as np
import pytest

import fastconv
from fastconv import functional as F
from fastconv.autograd import gradcheck, tensor
from fastconv.data import nuclei
from fastconv.models import detection_metrics as metrics
from fastconv.models.detection import (DetectorConfig, Detections, FasterRCNN, Instances, detect_all,
                                       evaluate_detections, paste_mask, project_masks_on_boxes, total_loss,
                                       train_detector)

# ---- metrics with known answers -----------------------------------------------------------------


def test_average_precision_is_the_area_under_the_monotone_envelope():
    # Precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1: the envelope is 1 up to recall 1/2, then 2/3.
    assert metrics.average_precision(np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 2 / 3])) == pytest.approx(5 / 6)
    assert metrics.average_precision(np.array([]), np.array([])) == 0.0


def _instances(boxes, labels, scores=None):
    boxes = np.array(boxes, np.float32).reshape(-1, 4)
    labels = np.array(labels, np.int64)
    if scores is None:
        return Instances(boxes, labels)
    return Detections(boxes, labels, None, np.array(scores, np.float32))


def test_mean_average_precision_by_hand():
    truth = _instances([[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]], [1, 1, 2])
    detections = _instances([[0, 0, 10, 10],    # class 1: true positive (0.9)
                             [1, 0, 10, 10],    # duplicate of the same truth: false positive (0.8)
                             [20, 20, 30, 31],  # true positive (0.7), IoU 10/11
                             [40, 40, 50, 50],  # class 2: true positive
                             [60, 60, 62, 62]], [1, 1, 1, 2, 2], [0.9, 0.8, 0.7, 0.6, 0.95])
    # class 1: precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1 -> 5/6. class 2: the false positive
    # ranks first, then the hit: precision 1/2 at recall 1 -> 1/2.
    assert metrics.mean_average_precision([detections], [truth]) == pytest.approx((5 / 6 + 1 / 2) / 2)
    assert metrics.mean_average_precision([truth_as_detections(truth)], [truth]) == pytest.approx(1.0)
    nothing = _instances(np.zeros((0, 4)), [], [])
    assert metrics.mean_average_precision([nothing], [truth]) == 0.0
    # A threshold above the second hit's IoU (10/11) makes it a miss.
    assert metrics.mean_average_precision([detections], [truth], iou_threshold=0.95) < 0.6


def truth_as_detections(truth, masks=None):
    return Detections(truth.boxes, truth.labels, masks, np.ones(len(truth.labels), np.float32))


def test_mask_iou_and_matched_mask_iou_by_hand():
    square, wide = np.zeros((1, 8, 8), bool), np.zeros((1, 8, 8), bool)
    square[0, 2:4, 2:4] = True
    wide[0, 2:4, 2:6] = True
    assert metrics.mask_iou(square, wide).tolist() == [[0.5]]
    assert metrics.mask_iou(np.zeros((1, 8, 8), bool), np.zeros((2, 8, 8), bool)).tolist() == [[0.0, 0.0]]
    truth = Instances(np.array([[2, 2, 6, 4]], np.float32), np.array([1]), wide)
    found = Detections(np.array([[2, 2, 5, 4]], np.float32), np.array([1]), square, np.array([0.9], np.float32))
    assert metrics.matched_mask_iou([found], [truth]) == (0.5, 1.0)
    wrong_class = Detections(found.boxes, np.array([2]), square, found.scores)
    assert metrics.matched_mask_iou([wrong_class], [truth]) == (0.0, 0.0)


def test_paste_mask_fills_the_box_it_is_given():
    pasted = paste_mask(np.ones((28, 28), np.float32), [2, 3, 6, 5], (8, 8))
    expected = np.zeros((8, 8))
    expected[3:5, 2:6] = 1
    np.testing.assert_array_equal(pasted, expected)
    # A left-to-right ramp stays a ramp, increasing across the box.
    ramp = paste_mask(np.tile(np.linspace(0, 1, 28), (28, 1)), [0, 0, 8, 8], (8, 8))
    assert (np.diff(ramp[0]) > 0).all() and ramp[0, 0] < 0.1 and ramp[0, -1] > 0.9


def test_mask_targets_are_centred_on_their_box():
    # A square ring filling its box: its target must be as symmetric as the ring.
    masks = np.zeros((2, 16, 16), bool)
    masks[1, 3:11, 4:12] = True
    masks[1, 6:8, 7:9] = False
    target = project_masks_on_boxes(masks, [1], [[4, 3, 12, 11]])
    assert target.shape == (1, 28, 28) and target.min() == 0 and target.max() == 1
    np.testing.assert_allclose(target[0], target[0, ::-1, ::-1], atol=1e-5)
    np.testing.assert_allclose(target[0], target[0].T, atol=1e-5)


def test_a_thin_stroke_target_pasted_back_is_the_stroke():
    # Strokes two pixels wide, as a digit's: a target half a pixel off would lose most of them.
    mask = np.zeros((1, 40, 40), bool)
    mask[0, 5:7, 9:27] = True
    mask[0, 5:29, 25:27] = True
    mask[0, 17:19, 12:27] = True
    box = [9, 5, 27, 29]
    pasted = paste_mask(project_masks_on_boxes(mask, [0], [box])[0], box, (40, 40)) >= 0.5
    np.testing.assert_array_equal(pasted, mask[0])


# ---- losses ------------------------------------------------------------------------------------

def test_binary_cross_entropy_with_logits_matches_its_formula_and_gradient(rng):
    x, t = rng.normal(0, 3, 20), rng.random(20)
    expected = -(t * np.log(1 / (1 + np.exp(-x))) + (1 - t) * np.log(1 - 1 / (1 + np.exp(-x))))
    np.testing.assert_allclose(F.binary_cross_entropy_with_logits(tensor(x), t, reduction="none").numpy(), expected, rtol=1e-10)
    assert F.binary_cross_entropy_with_logits(tensor(np.array([1000.0])), np.array([0.0])).item() == 1000.0
    assert gradcheck(lambda v: F.binary_cross_entropy_with_logits(v, t), [tensor(x, requires_grad=True)])


def test_smooth_l1_loss_matches_its_formula_and_gradient(rng):
    x, t = rng.normal(0, 1, 30), rng.normal(0, 1, 30)
    d = np.abs(x - t)
    expected = np.where(d < 1 / 9, 0.5 * d ** 2 * 9, d - 0.5 / 9)
    np.testing.assert_allclose(F.smooth_l1_loss(tensor(x), t, "none", beta=1 / 9).numpy(), expected, rtol=1e-12)
    assert gradcheck(lambda v: F.smooth_l1_loss(v, t, "sum", beta=0.5), [tensor(x, requires_grad=True)])
    with pytest.raises(ValueError, match="beta must be non-negative"):
        F.smooth_l1_loss(tensor(x), t, beta=-0.5)


# ---- the detectors -----------------------------------------------------------------------------

SHAPES = ("background", "square", "ring")
SMALL = DetectorConfig(anchor_sizes=(8.0, 12.0), aspect_ratios=(1.0,), rpn_batch_size_per_image=32,
                       rpn_pre_nms_top_n=(100, 100), rpn_post_nms_top_n=(20, 20), box_batch_size_per_image=16,
                       sliding_window_stride=4, detections_per_image=5, mask_rois_per_image=2)


def shape_scenes(count, seed, size=32):
    """Scenes of one or two bright shapes: a filled square (class 1) or a ring (class 2), 8 to
    12 pixels across, on a dark noisy background; their boxes and masks."""
    rng = np.random.default_rng(seed)
    images, targets = np.zeros((count, 1, size, size), np.float32), []
    for i in range(count):
        boxes, labels, masks = [], [], []
        for left in rng.permutation([0, size // 2])[:rng.integers(1, 3)]:
            side = int(rng.integers(8, 13))
            x, y = left + int(rng.integers(0, size // 2 - side + 1)), int(rng.integers(0, size - side + 1))
            label = int(rng.integers(1, 3))
            mask = np.zeros((size, size), bool)
            mask[y:y + side, x:x + side] = True
            if label == 2:
                mask[y + 3:y + side - 3, x + 3:x + side - 3] = False
            images[i, 0][mask] = 1
            boxes.append([x, y, x + side, y + side])
            labels.append(label)
            masks.append(mask)
        images[i, 0] += rng.normal(0, 0.1, (size, size)).astype(np.float32)
        targets.append(Instances(np.array(boxes, np.float32), np.array(labels, np.int64), np.stack(masks)))
    return images, targets


def brief_training(proposals="rpn", masks=False, pooler="align", steps_epochs=12):
    """Trains a narrow detector for a few seconds; -> (loss per step, test metrics, untrained metrics)."""
    fastconv.manual_seed(0)
    train_images, train_targets = shape_scenes(48, seed=1)
    test_images, test_targets = shape_scenes(16, seed=2)
    model = FasterRCNN(len(SHAPES), width=8, proposals=proposals, pooler=pooler, masks=masks, config=SMALL)
    before = evaluate_detections(detect_all(model, test_images), test_targets, masks=masks)
    losses = train_detector(model, train_images, train_targets, steps_epochs, 8, 3e-3, show_progress=False)
    after = evaluate_detections(detect_all(model, test_images), test_targets, masks=masks)
    return losses, after, before


# An untrained detector's boxes are proposals barely moved, scored ~1/3 per class: its mAP@0.5
# is near 0 (0.0 here); we ask for far more.
CHANCE_MAP = 0.1


@pytest.mark.usefixtures("deterministic_algorithms")
def test_faster_rcnn_learns_to_detect_shapes():
    losses, after, before = brief_training("rpn")
    assert np.mean(losses[-6:]) < 0.6 * np.mean(losses[:6])
    assert before["box mAP@0.5"] < CHANCE_MAP < 0.5 < after["box mAP@0.5"]


@pytest.mark.usefixtures("deterministic_algorithms")
def test_fast_rcnn_on_sliding_windows_with_roi_pool_trains():
    losses, after, _ = brief_training("sliding", pooler="pool")
    assert np.mean(losses[-6:]) < 0.6 * np.mean(losses[:6])
    assert after["box mAP@0.5"] > CHANCE_MAP


@pytest.mark.usefixtures("deterministic_algorithms")
def test_mask_rcnn_learns_masks():
    losses, after, _ = brief_training("rpn", masks=True)
    assert np.mean(losses[-6:]) < 0.6 * np.mean(losses[:6])
    # A box-shaped mask of a ring scores IoU 0.75 or less (its hole is a quarter or more of the box);
    # an empty or random mask far less.
    assert after["mask IoU (matched)"] > 0.6 and after["mask AP@0.5"] > CHANCE_MAP


@pytest.mark.usefixtures("one_thread")
def test_losses_by_name_and_detections_shapes():
    images, targets = shape_scenes(2, seed=3)
    model = FasterRCNN(len(SHAPES), width=4, masks=True, config=SMALL)
    features, mask_features = model.features(images)
    assert features.shape == (2, 16, 8, 8) and mask_features.shape == (2, 16, 16, 16)  # strides 4 and 2
    losses = model.loss(images, targets)
    assert set(losses) == {"rpn_objectness", "rpn_box", "classifier", "box_reg", "mask"}
    total_loss(losses).backward()
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    for d in model.detect(images):
        assert d.boxes.shape == (len(d.scores), 4) and d.masks.shape == (len(d.scores), 32, 32)
        assert ((d.labels >= 1) & (d.labels < 3)).all() and (np.diff(d.scores) <= 0).all() or len(d.scores) < 2


@pytest.mark.usefixtures("one_thread")
def test_images_without_objects_train_as_background():
    images, _ = shape_scenes(2, seed=4)
    empty = Instances(np.zeros((0, 4), np.float32), np.zeros(0, np.int64), np.zeros((0, 32, 32), bool))
    model = FasterRCNN(len(SHAPES), width=4, masks=True, config=SMALL)
    losses = model.loss(images, [empty, empty])
    assert "mask" not in losses and np.isfinite(total_loss(losses).item())


@pytest.mark.parametrize("kwargs, message", [
    (dict(proposals="selective"), "proposals: expected one of"),
    (dict(pooler="max"), "pooler: expected one of"),
    (dict(num_classes=1), "num_classes: expected at least 2"),
    (dict(config=DetectorConfig(mask_feature_stride=8)), "config.mask_feature_stride: expected one of"),
])
def test_bad_model_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FasterRCNN(**{"num_classes": 3, **kwargs})


def test_bad_training_inputs():
    images, targets = shape_scenes(2, seed=5)
    model = FasterRCNN(len(SHAPES), width=4, config=SMALL)
    with pytest.raises(ValueError, match="targets: expected one Instances per image"):
        model.loss(images, targets[:1])
    with pytest.raises(ValueError, match="images: expected an \\(N, C, H, W\\)"):
        model.loss(images[0], targets[:1])
    with pytest.raises(ValueError, match="every Instances needs masks"):
        FasterRCNN(len(SHAPES), width=4, masks=True, config=SMALL).loss(images, [Instances(t.boxes, t.labels)
                                                                                 for t in targets])


# ---- the nuclei loader -------------------------------------------------------------------------

def test_nuclei_without_stardist_names_the_packages(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps stardist tifffile"):
        nuclei.load_nuclei()


def test_nuclei_tiles():
    if importlib.util.find_spec("stardist") is None or importlib.util.find_spec("tifffile") is None:
        pytest.skip("the nuclei image needs stardist and tifffile")
    test = nuclei.nuclei_tiles("test")
    assert test.images.shape == (16, 1, 64, 64) and 0 <= test.images.min() and test.images.max() <= 1
    for boxes, labels, masks in zip(test.boxes, test.labels, test.masks):
        assert (labels == 1).all() and masks.shape[0] == len(boxes)
        for box, mask in zip(boxes, masks):  # each box is tight around its mask
            rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
            assert box.tolist() == [cols[0], rows[0], cols[-1] + 1, rows[-1] + 1] and mask.sum() >= 16
    train = nuclei.nuclei_tiles("train", count=5, seed=1)
    assert len(train) == 5 and np.array_equal(train.images, nuclei.nuclei_tiles("train", count=5, seed=1).images)
    with pytest.raises(ValueError, match="split: expected"):
        nuclei.nuclei_tiles("val")


# ---- the programs ------------------------------------------------------------------------------

@pytest.mark.skipif(importlib.util.find_spec("tqdm") is None or importlib.util.find_spec("matplotlib") is None,
                    reason="the programs need tqdm and matplotlib")
@pytest.mark.usefixtures("deterministic_algorithms")
@pytest.mark.parametrize("program, argv, printed", [
    ("faster_rcnn.py", ["--proposals", "both", "--width", "4"], r"Fast R-CNN \(sliding windows\): box mAP@0.5 \d\.\d+"),
    ("mask_rcnn.py", ["--data", "digits", "--width", "4"], r"mask AP@0.5 \d\.\d+.*mask IoU of matched instances"),
])
def test_programs_run_briefly_and_write_their_plot(program, argv, printed, tmp_path, capsys):
    from tests.models.test_scripts import load_program
    plot = tmp_path / "run.png"
    argv += ["--train-scenes", "8", "--test-scenes", "4", "--epochs", "1", "--plot", str(plot)]
    assert load_program(program).main(argv) == 0
    out = capsys.readouterr().out
    assert re.search(printed, out), out
    assert plot.stat().st_size > 1000
