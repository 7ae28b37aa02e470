"""FCN on digit scenes: every pixel labelled background or one of the ten digits.

Long, Shelhamer & Darrell 2015, "Fully convolutional networks for semantic segmentation": a
classification net (here a small VGG-style one: five stages of 3x3 conv+BN+ReLU and max pooling,
then its fully connected layers as convolutions) scores every position of its last 1/32 map with
a 1x1 convolution; transposed convolutions initialised to bilinear upsample the scores 2x at a
time, each time adding a 1x1 score layer on the pooled features of that resolution (the skips),
and a last one brings them to the image's size. FCN-8s stops the skips at pool3 (1/8); the
digits' pen strokes are two to four pixels wide, so the default here continues to pool1 (1/2).
The loss is per-pixel cross-entropy with the digits weighted up (median frequency balancing,
softened); the figure is the mean IoU over the 11 classes on scenes of MNIST's test digits.

    python python/fcn.py                  # FCN-2s, 4,000 scenes, 8 epochs: test mIoU 0.70, 3.5 min of one core
    python python/fcn.py --output-stride 8 --epochs 4 --train-scenes 3000 --test-scenes 300
        # the paper's FCN-8s: 0.40 where FCN-2s reaches 0.57 in the same 750 steps
    python python/fcn.py --plot fcn.png --predictions fcn_scenes.png
"""
import sys

from fastconv import cli
from fastconv.models import segmentation_runs as runs

DEFAULTS = runs.SegmentationOptions()


def main(argv=None):
    args, options, train, test = cli.start_scene_script("fcn.py", __doc__, DEFAULTS, argv)
    print(runs.describe_scenes(train, test))
    runs.train_and_report(args, runs.fcn_name(options), runs.fcn(options), train, test, options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
