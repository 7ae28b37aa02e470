"""A small HRNet on digit scenes: every pixel labelled background or one of the ten digits.

Sun, Xiao, Liu & Wang 2019, "Deep high-resolution representation learning": instead of
downsampling and then upsampling, keep a high-resolution branch (here 1/2 of the image) all the
way, add lower-resolution branches (1/4, 1/8, 1/16) one stage at a time, and fuse them again and
again: every branch receives every other, brought down by strided 3x3 convolutions or up by a
1x1 convolution and bilinear upsampling. The segmentation head (HRNetV2) concatenates all
branches at the highest resolution and scores each pixel with 1x1 convolutions. Trained and
measured as python/fcn.py: per-pixel cross-entropy, mean IoU on scenes of unseen digits.

    python python/hrnet.py    # width 8, 3,000 scenes, 4 epochs: test mIoU 0.56 (FCN-2s: 0.57 in those steps)
    python python/hrnet.py --epochs 8 --train-scenes 4000 --plot hrnet.png --predictions hrnet_scenes.png
"""
import sys

import fastconv
from fastconv import cli
from fastconv.models import segmentation_runs as runs
from fastconv.models.segmentation import HRNet

DEFAULTS = runs.HRNET_OPTIONS


def main(argv=None):
    args, options, train, test = cli.start_scene_script("hrnet.py", __doc__, DEFAULTS, argv)
    print(runs.describe_scenes(train, test))
    fastconv.manual_seed(options.seed)  # the initial weights
    model = HRNet(1, runs.NUM_CLASSES, options.width)
    print(runs.describe(model, options))
    result = runs.train_segmenter("hrnet", model, train, test, options)
    print(runs.iou_table(result.iou))
    cli.report(result, args.plot)
    if args.predictions is not None:
        runs.save_predictions(args.predictions, model, test, result.summary())
        print(f"wrote the predictions to {args.predictions}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
