"""A small HRNet on digit scenes: every pixel labelled background or one of the ten digits.

Sun, Xiao, Liu & Wang 2019, "Deep high-resolution representation learning": instead of
downsampling and then upsampling, keep a high-resolution branch (here 1/2 of the image) all the
way, add lower-resolution branches (1/4, 1/8, 1/16) one stage at a time, and fuse them again and
again: every branch receives every other, brought down by strided 3x3 convolutions or up by a
1x1 convolution and bilinear upsampling. The segmentation head (HRNetV2) concatenates all
branches at the highest resolution and scores each pixel with 1x1 convolutions. Trained and
measured as python/fcn.py: per-pixel cross-entropy, mean IoU on scenes of unseen digits.

    python python/hrnet.py    # width 6, 4,000 scenes, 8 epochs: test mIoU 0.68, 2.8 min of one core
    python python/hrnet.py --width 8 --plot hrnet.png --predictions hrnet_scenes.png

The default trains as python/fcn.py's does: the same scenes, the same 2,000 steps, each costing
about what FCN-2s's does (79 and 72-78 ms of one core), at the learning rate HRNet did best
with (5e-3; FCN's is 2e-3). FCN-2s reaches 0.71 there: HRNet's
work sits at 1/2 and 1/4 of the image in 6 to 12 channels, FCN's in wide layers at low
resolution, so at the same cost per step HRNet has 131k parameters to FCN's 954k.
"""
import sys

from fastconv import cli
from fastconv.models import segmentation_runs as runs

DEFAULTS = runs.HRNET_OPTIONS


def main(argv=None):
    args, options, train, test = cli.start_scene_script("hrnet.py", __doc__, DEFAULTS, argv)
    print(runs.describe_scenes(train, test))
    runs.train_and_report(args, "hrnet", runs.hrnet(options), train, test, options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
