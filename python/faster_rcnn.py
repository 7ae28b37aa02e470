"""Faster R-CNN on digit scenes, against Fast R-CNN on sliding-window proposals.

Ren, He, Girshick & Sun 2015, "Faster R-CNN: towards real-time object detection with region
proposal networks". A small backbone (four 3x3 conv layers, stride 4), a region proposal network
over anchors of 3 sizes and 3 aspect ratios, ROI Align (or --pooler pool: Fast R-CNN's ROI Pool)
to 7x7, two fully connected layers, a classifier over 10 digits and background and per-class
box regression; box mAP@0.5 (PASCAL VOC, all-point interpolated) on held-out scenes of digits the
training never saw. The same detector with the RPN replaced by fixed sliding windows (Fast R-CNN
with a naive proposal method) trains with the same budget, to show what learned proposals add.

    python python/faster_rcnn.py                        # both detectors, about 7 minutes on 2 idle cores
    python python/faster_rcnn.py --proposals rpn --epochs 8 --plot faster_rcnn.png
"""
import argparse
import dataclasses
import resource
import sys
import time
from dataclasses import dataclass

import fastconv
from fastconv import cli
from fastconv.data.scenes import SCENE_CLASSES, digit_scenes
from fastconv.models.detection import (FasterRCNN, Instances, detect_all, evaluate_detections, plot_run,
                                       train_detector)


@dataclass(frozen=True)
class FasterRCNNOptions:
    epochs: int = 3
    lr: float = 2e-3
    batch_size: int = 8
    width: int = 16
    train_scenes: int = 1200
    test_scenes: int = 300
    proposals: str = "both"      # rpn, sliding, or both (the comparison)
    pooler: str = "align"
    seed: int = 0


DEFAULTS = FasterRCNNOptions()


def parse(argv):
    parser = cli.ArgumentParser(prog="faster_rcnn.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_option_arguments(parser, DEFAULTS)
    group = parser.add_argument_group("detection")
    group.add_argument("--train-scenes", type=cli.positive_int, default=DEFAULTS.train_scenes, metavar="N",
                       help=f"64x64 training scenes (default: {DEFAULTS.train_scenes})")
    group.add_argument("--test-scenes", type=cli.positive_int, default=DEFAULTS.test_scenes, metavar="N",
                       help=f"held-out scenes of unseen digits (default: {DEFAULTS.test_scenes})")
    group.add_argument("--proposals", choices=["rpn", "sliding", "both"], default=DEFAULTS.proposals,
                       help="Faster R-CNN (rpn), Fast R-CNN on sliding windows, or both (default: both)")
    group.add_argument("--pooler", choices=["align", "pool"], default=DEFAULTS.pooler,
                       help="ROI Align or ROI Pool (default: align)")
    group.add_argument("--seed", type=int, default=DEFAULTS.seed, metavar="N", help="seed of the init and sampling")
    cli.add_output_arguments(parser)
    args = parser.parse_args(argv)
    chosen = {f.name: getattr(args, f.name) for f in dataclasses.fields(DEFAULTS) if f.name in vars(args)}
    cli.prepare_run(parser, args)
    return args, dataclasses.replace(DEFAULTS, **chosen)


def targets_of(scenes):
    return [Instances(b, l, m) for b, l, m in zip(scenes.boxes, scenes.labels, scenes.masks)]


def main(argv=None):
    args, options = parse(argv)
    train = digit_scenes("train", options.train_scenes, seed=options.seed)
    test = digit_scenes("test", options.test_scenes, seed=options.seed)
    print(f"{len(train)} training and {len(test)} test scenes of 64x64 pixels, 1-3 digits each; {train.source}")
    methods = ["rpn", "sliding"] if options.proposals == "both" else [options.proposals]
    truths, curves, results = targets_of(test), {}, {}
    start, cpu_start = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    for method in methods:
        fastconv.manual_seed(options.seed)
        model = FasterRCNN(len(SCENE_CLASSES), width=options.width, proposals=method, pooler=options.pooler,
                           seed=options.seed)
        name = "Faster R-CNN (RPN)" if method == "rpn" else "Fast R-CNN (sliding windows)"
        curves[name] = train_detector(model, train.images, targets_of(train), options.epochs, options.batch_size,
                                      options.lr, options.seed, desc=name)
        detections = detect_all(model, test.images)
        results[name] = evaluate_detections(detections, truths)
        print(f"{name}: box mAP@0.5 {results[name]['box mAP@0.5']:.3f} on {len(test)} held-out scenes "
              f"(final training loss {sum(curves[name][-20:]) / 20:.3f})")
        if args.plot is not None and method == methods[0]:
            first = (detections, f"{name} on held-out digit scenes: box mAP@0.5 {results[name]['box mAP@0.5']:.3f}")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"{time.perf_counter() - start:.0f} s wall, {usage.ru_utime - cpu_start.ru_utime:.0f} s CPU "
          f"({fastconv.get_num_threads()} threads)")
    if args.plot is not None:
        plot_run(args.plot, first[1], test.images, first[0], truths, curves, SCENE_CLASSES)
        print(f"wrote the plot to {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
