"""Mask R-CNN on digit scenes and on real cell nuclei.

He, Gkioxari, Dollar & Girshick 2017, "Mask R-CNN": Faster R-CNN (python/faster_rcnn.py) with a
mask head: ROI Align of each positive proposal to 14x14, two 3x3 convs, a 2x2 transposed conv to
28x28 and one mask logit map per class, trained with per-pixel binary cross entropy against the
instance's mask cropped to the proposal. At test time each detection's mask is pasted into the
image and thresholded at 0.5. A digit's pen strokes are 2-4 pixels wide, so the mask head reads
a stride-2 map (one FPN top-down step over the stride-4 detection features) and its ROI Align
and mask targets are aligned to the pixels (aligned=True): half a pixel off, a perfect digit
mask would score IoU 0.62.

Reported on held-out data: mask AP@0.5 (VOC all-point, mask IoU), box mAP@0.5, and the mean mask
IoU of the instances matched by a detection (box IoU >= 0.5) with the fraction matched.
  digits: scenes of MNIST digits the training never saw (10 classes);
  nuclei: the fluorescence image stardist ships (pip install --no-deps stardist tifffile),
          trained on random 64x64 crops of its left three quarters, tested on its right quarter.

    python python/mask_rcnn.py     # both, under 4 minutes of one core: matched mask IoU 0.79 (digits), 0.84 (nuclei)
    python python/mask_rcnn.py --data digits --train-scenes 800 --plot digits.png
        # half the steps: mask IoU 0.78 still, but mask AP@0.5 0.46 (defaults: 0.88), the boxes lag
"""
import argparse
import dataclasses
import os
import resource
import sys
import time
from dataclasses import dataclass

import fastconv
from fastconv import cli
from fastconv.data.scenes import SCENE_CLASSES, digit_scenes
from fastconv.models.detection import (DetectorConfig, FasterRCNN, Instances, detect_all, evaluate_detections,
                                       plot_run, train_detector)

NUCLEI_CLASSES = ("background", "nucleus")
# Nuclei are 6-30 pixels across and roundish: larger anchors than the digits', fewer shapes.
NUCLEI_CONFIG = DetectorConfig(anchor_sizes=(12.0, 20.0, 32.0), aspect_ratios=(0.5, 1.0, 2.0),
                               detections_per_image=40, rpn_post_nms_top_n=(150, 100), mask_rois_per_image=12)


@dataclass(frozen=True)
class MaskRCNNOptions:
    epochs: int = 3
    lr: float = 2e-3
    batch_size: int = 8
    width: int = 16
    train_scenes: int = 1600     # digit scenes, and nuclei crops
    test_scenes: int = 300
    data: str = "both"           # digits, nuclei or both
    seed: int = 0


DEFAULTS = MaskRCNNOptions()


def parse(argv):
    parser = cli.ArgumentParser(prog="mask_rcnn.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_option_arguments(parser, DEFAULTS)
    group = parser.add_argument_group("data")
    group.add_argument("--data", choices=["digits", "nuclei", "both"], default=DEFAULTS.data,
                       help=f"digit scenes, the stardist nuclei image, or both (default: {DEFAULTS.data})")
    group.add_argument("--train-scenes", type=cli.positive_int, default=DEFAULTS.train_scenes, metavar="N",
                       help=f"training scenes (digits) and crops (nuclei) (default: {DEFAULTS.train_scenes})")
    group.add_argument("--test-scenes", type=cli.positive_int, default=DEFAULTS.test_scenes, metavar="N",
                       help=f"held-out digit scenes (default: {DEFAULTS.test_scenes})")
    group.add_argument("--seed", type=int, default=DEFAULTS.seed, metavar="N",
                       help="seed of the data, init and sampling")
    cli.add_output_arguments(parser)
    args = parser.parse_args(argv)
    chosen = {f.name: getattr(args, f.name) for f in dataclasses.fields(DEFAULTS) if f.name in vars(args)}
    cli.prepare_run(parser, args)
    if args.data != "digits":
        try:
            from fastconv.data.nuclei import nuclei_tiles
            nuclei_tiles("test")
        except (ImportError, OSError) as e:
            parser.error(f"--data {args.data}: {e}")
    return args, dataclasses.replace(DEFAULTS, **chosen)


def targets_of(data):
    return [Instances(b, l, m) for b, l, m in zip(data.boxes, data.labels, data.masks)]


def datasets(options):
    """(name, train, test, class names, detector config) of each dataset asked for."""
    if options.data in ("digits", "both"):
        yield ("digit scenes", digit_scenes("train", options.train_scenes, seed=options.seed),
               digit_scenes("test", options.test_scenes, seed=options.seed), SCENE_CLASSES, DetectorConfig())
    if options.data in ("nuclei", "both"):
        from fastconv.data.nuclei import nuclei_tiles
        yield ("nuclei", nuclei_tiles("train", options.train_scenes, seed=options.seed), nuclei_tiles("test"),
               NUCLEI_CLASSES, NUCLEI_CONFIG)


def plot_path(plot, name, several):
    if not several:
        return plot
    root, ext = os.path.splitext(plot)
    return f"{root}_{name.split()[0]}{ext or '.png'}"


def main(argv=None):
    args, options = parse(argv)
    start, cpu_start = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    for name, train, test, classes, config in datasets(options):
        print(f"{name}: {len(train)} training and {len(test)} test images of {train.images.shape[-1]} pixels, "
              f"{sum(map(len, test.boxes))} test instances; {train.source}")
        fastconv.manual_seed(options.seed)
        model = FasterRCNN(len(classes), width=options.width, masks=True, config=config, seed=options.seed)
        curve = train_detector(model, train.images, targets_of(train), options.epochs, options.batch_size, options.lr,
                               options.seed, desc=f"Mask R-CNN, {name}")
        truths = targets_of(test)
        detections = detect_all(model, test.images)
        m = evaluate_detections(detections, truths, masks=True)
        print(f"Mask R-CNN on held-out {name}: mask AP@0.5 {m['mask AP@0.5']:.3f}, box mAP@0.5 {m['box mAP@0.5']:.3f}, "
              f"mask IoU of matched instances {m['mask IoU (matched)']:.3f} ({m['instances matched']:.0%} matched)")
        if args.plot is not None:
            path = plot_path(args.plot, name, options.data == "both")
            plot_run(path, f"Mask R-CNN on held-out {name}: mask AP@0.5 {m['mask AP@0.5']:.3f}, matched mask IoU "
                           f"{m['mask IoU (matched)']:.3f}", test.images, detections, truths, {"Mask R-CNN": curve},
                     classes)
            print(f"wrote the plot to {path}")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"{time.perf_counter() - start:.0f} s wall, {usage.ru_utime - cpu_start.ru_utime:.0f} s CPU "
          f"({fastconv.get_num_threads()} threads)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
