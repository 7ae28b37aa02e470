"""ResNet-20 on real handwritten digits, or on CIFAR-10 as in the paper.

He, Zhang, Ren & Sun 2016, "Deep residual learning for image recognition", section 4.2: a 3x3
convolution, three stages of three basic blocks (two 3x3 conv+BN, the block's input added back
before the last ReLU) at 16, 32 and 64 channels on 32x32, 16x16 and 8x8 images, global average
pooling and one linear layer: 20 weighted layers, 0.27M weights. Where a stage halves the image
the shortcut is option A (the input subsampled, the new channels zero) or B (a 1x1 convolution).
The paper trains 64k steps of SGD (lr 0.1, divided by 10 at 32k and 48k) to 91.25% on CIFAR-10.

    python python/resnet20.py                   # 4,000 MNIST digits, width 8, 3 epochs: about 95% on the test digits
    python python/resnet20.py --width 16 --shortcut B --plot resnet20.png
    python python/resnet20.py --data cifar10 --data-dir ~/cifar-10-batches-py --width 16 --epochs 160 \\
        --batch-size 128 --checkpoint resnet20.npz --resume    # the paper's run; resumable after a crash
    mpiexec -n 2 python python/resnet20.py --distributed --threads 1    # data-parallel on 2 processes
"""
import sys

import fastconv
from fastconv import cli
from fastconv.models import deep
from fastconv.models.datasets import IMAGE_DATASETS
from fastconv.models.deep_runs import ResNet20Options, describe, network_inputs, train_convnet

# Half the paper's width (a quarter of its work) and three epochs: a minute or so on 2 cores.
DEFAULTS = ResNet20Options(width=8, epochs=3)


def main(argv=None):
    parser = cli.script_parser("resnet20.py", __doc__, IMAGE_DATASETS, DEFAULTS)
    cli.add_distributed_argument(parser)
    args = parser.parse_args(argv)
    options = cli.options_from(parser, args, DEFAULTS)
    cli.prepare_run(parser, args)
    ctx = cli.start_distributed(parser, args, options)  # every rank loads the same split and model
    split = network_inputs(cli.load_data(parser, args))  # 32x32 NCHW images
    if ctx.is_main:
        print(split.summary())

    fastconv.manual_seed(options.seed)  # the initial weights
    model = deep.ResNet20(in_channels=split.sample_shape[0], num_classes=split.num_classes, width=options.width,
                          shortcut=options.shortcut)
    if ctx.is_main:
        print(describe(model, options))
    result = train_convnet("resnet20", model, split, options)
    cli.report(result, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
