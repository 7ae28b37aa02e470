"""AlexNet's design, shrunk for 32x32 images, on real handwritten digits.

Krizhevsky, Sutskever & Hinton 2012 won ImageNet with a large-kernel strided first convolution,
ReLUs, overlapping 3x3/2 max pooling, three 3x3 convolutions and a fully connected classifier
regularised by dropout. fastconv's AlexNetSmall (fastconv.models.deep) keeps that shape at
32x32: 5x5/2 stem, pools to 7 and 3 pixels, channels width, 2, 3 and 2 x width, two hidden
layers of 256 units. Without batch norm its first epochs crawl under SGD (`fastconv train
alexnet` needs 9 of its 15 to pass 80%); Adam gets there in three, so it is the default here.

    python python/alexnet.py                    # 4,000 MNIST digits, 8 epochs of Adam: about 95% on the test digits
    python python/alexnet.py --optimizer sgd --lr 0.02 --epochs 15
    python python/alexnet.py --data cifar10 --data-dir ~/cifar-10-batches-py --epochs 30 --plot alexnet.png
"""
import sys

import fastconv
from fastconv import cli
from fastconv.models import deep
from fastconv.models.datasets import IMAGE_DATASETS
from fastconv.models.deep_runs import AlexNetOptions, describe, network_inputs, train_convnet

DEFAULTS = AlexNetOptions(epochs=8, optimizer="adam", lr=0.001)


def main(argv=None):
    args, options, split = cli.start_script("alexnet.py", __doc__, IMAGE_DATASETS, DEFAULTS, argv)
    split = network_inputs(split)  # 32x32 NCHW images
    print(split.summary())

    fastconv.manual_seed(options.seed)  # the initial weights and the dropout masks
    model = deep.AlexNetSmall(in_channels=split.sample_shape[0], num_classes=split.num_classes, width=options.width)
    print(model)
    print(describe(model, options))
    result = train_convnet("alexnet", model, split, options)
    cli.report(result, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
