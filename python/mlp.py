"""A two-layer perceptron: Flatten -> Linear -> ReLU (or tanh) -> Linear, trained by backprop.

One hidden layer is what the perceptron lacks: with it, the network bends the plane and solves
XOR, where any linear classifier (python/perceptron.py --data xor) is stuck near 50%. Built from
fastconv.nn (fastconv.models.deep.MLP) and trained by SGD with momentum on the cross-entropy,
by the Trainer every network of the suite uses (fastconv.models.trainer).

    python python/mlp.py                        # 4,000 MNIST digits, 10 epochs: about 94% on the test digits
    python python/mlp.py --data xor             # 8 tanh units, 50 epochs: 100%
    python python/mlp.py --width 64 --optimizer adam --lr 0.001 --plot mlp.png

On --data xor the defaults are XOR's (8 tanh units, lr 0.1, batches of 32, 50 epochs, no
weight decay or schedule); options given on the command line still apply.
"""
import sys

import fastconv
from fastconv import cli
from fastconv.models import deep
from fastconv.models.datasets import DATASETS
from fastconv.models.deep_runs import XOR_MLP_OPTIONS, MLPOptions, describe, standardized, train_network

DEFAULTS = MLPOptions()


def main(argv=None):
    parser = cli.script_parser("mlp.py", __doc__, DATASETS, DEFAULTS)
    args = parser.parse_args(argv)
    options = cli.options_from(parser, args, XOR_MLP_OPTIONS if args.data == "xor" else DEFAULTS)
    cli.prepare_run(parser, args)
    # Pixels centred and scaled by the training set's mean and deviation: inputs of unit scale
    # keep the first layer's pre-activations in the ReLU's (or tanh's) useful range.
    split = standardized(cli.load_data(parser, args))
    print(split.summary())

    fastconv.manual_seed(options.seed)  # the initial weights
    in_features = split.x_train[0].size
    model = deep.MLP(in_features, split.num_classes, hidden=options.width, activation=options.activation)
    print(model)
    print(describe(model, options))
    result = train_network("mlp", model, split, options)
    cli.report(result, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
