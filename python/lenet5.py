"""LeNet-5 on real handwritten digits.

LeCun, Bottou, Bengio & Haffner 1998, "Gradient-based learning applied to document
recognition": two stages of 5x5 convolution and 2x2 pooling (32 -> 28 -> 14 -> 10 -> 5), a 5x5
convolution to 120 features, then 84 and 10 units: about 62,000 weights. The paper padded
MNIST's 28x28 digits to 32x32, and so does this program (the 8x8 digits are upsampled first).
fastconv's LeNet5 (fastconv.models.deep) uses ReLU and max pooling, the modern choices.

    python python/lenet5.py                     # 4,000 MNIST digits, 3 epochs: about 97% on the test digits
    python python/lenet5.py --data digits --epochs 10 --plot lenet5.png
    python python/lenet5.py --data cifar10 --data-dir ~/cifar-10-batches-py --epochs 20
"""
import sys

import fastconv
from fastconv import cli
from fastconv.models import deep
from fastconv.models.datasets import IMAGE_DATASETS
from fastconv.models.deep_runs import LeNet5Options, describe, network_inputs, train_convnet

# Fewer epochs than `fastconv train lenet5` (6): a minute or so on 2 cores.
DEFAULTS = LeNet5Options(epochs=3)


def main(argv=None):
    args, options, split = cli.start_script("lenet5.py", __doc__, IMAGE_DATASETS, DEFAULTS, argv)
    split = network_inputs(split)  # 32x32 NCHW images
    print(split.summary())

    fastconv.manual_seed(options.seed)  # the initial weights
    model = deep.LeNet5(in_channels=split.sample_shape[0], num_classes=split.num_classes)
    print(model)
    print(describe(model, options))
    result = train_convnet("lenet5", model, split, options)
    cli.report(result, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
