"""A small VGG-style network on real handwritten digits.

Simonyan & Zisserman 2015 built deep networks from one block: a 3x3 convolution (two stacked
see 5x5 with fewer weights), repeated, a 2x2 max pool halving the image after each stage.
With batch norm after each convolution (Ioffe & Szegedy 2015) such a stack trains quickly at
a high learning rate. fastconv's VGGSmall (fastconv.models.deep): stages of two conv+BN+ReLU at
width, 2 x width and 4 x width channels (32 -> 16 -> 8 -> 4 pixels), then a dropout classifier.

    python python/vgg.py                        # 4,000 MNIST digits, width 8, 3 epochs: about 96% on the test digits
    python python/vgg.py --width 16 --epochs 4 --plot vgg.png
    python python/vgg.py --data cifar10 --data-dir ~/cifar-10-batches-py --width 32 --epochs 20
"""
import sys

import fastconv
from fastconv import cli
from fastconv.models import deep
from fastconv.models.datasets import IMAGE_DATASETS
from fastconv.models.deep_runs import VGGOptions, describe, network_inputs, train_convnet

# Half the width of `fastconv train vgg` (16), a quarter of its work per epoch.
DEFAULTS = VGGOptions(width=8, epochs=3)


def main(argv=None):
    args, options, split = cli.start_script("vgg.py", __doc__, IMAGE_DATASETS, DEFAULTS, argv)
    split = network_inputs(split)  # 32x32 NCHW images
    print(split.summary())

    fastconv.manual_seed(options.seed)  # the initial weights and the dropout masks
    model = deep.VGGSmall(in_channels=split.sample_shape[0], num_classes=split.num_classes, width=options.width)
    print(model)
    print(describe(model, options))
    result = train_convnet("vgg", model, split, options)
    cli.report(result, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
