"""The `fastconv` command: `fastconv train MODEL [options]` trains one model of the suite.

Models register in MODELS (name -> callable(args) returning a RunResult); a new model adds one
entry. Options a model does not use are ignored by it; unset ones take the model's defaults.
"""
import argparse

import fastconv
from fastconv.models import classic_runs, deep_runs
from fastconv.models.datasets import DATASETS

MODELS = {
    "knn": classic_runs.run_knn,
    "linear_svm": classic_runs.run_linear_svm,
    "softmax": classic_runs.run_softmax,
    "perceptron": classic_runs.run_perceptron,
    "mlp": deep_runs.run_mlp,
    "lenet5": deep_runs.run_lenet5,
    "alexnet": deep_runs.run_alexnet,
    "vgg": deep_runs.run_vgg,
    "resnet20": deep_runs.run_resnet20,
}


def training_options(parser):
    """The options every model's run reads; also used by the scripts in python/."""
    parser.add_argument("--data", choices=DATASETS, default="mnist",
                        help="mnist (default: 5,000 real MNIST digits) or digits (8x8), both bundled; "
                             "cifar10 (needs --data-dir); xor (2-D points, for perceptron and mlp)")
    parser.add_argument("--data-dir", metavar="PATH", help="the cifar-10-batches-py folder for --data cifar10")
    parser.add_argument("--limit", type=int, metavar="N", help="train on a random N of the training samples")
    parser.add_argument("--epochs", type=int, help="training epochs (model default if unset)")
    parser.add_argument("--lr", type=float, help="learning rate")
    parser.add_argument("--reg", type=float, help="L2 regularisation strength")
    parser.add_argument("--batch-size", type=int, help="minibatch size")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split, the init and the shuffling")
    parser.add_argument("--plot", metavar="PATH", help="write a PNG of the per-epoch metrics")
    parser.add_argument("--threads", type=int, help="threads of fastconv's kernels (default: all cores; 1 is "
                                                    "faster on a machine other jobs keep busy)")
    nets = parser.add_argument_group("neural networks (mlp, lenet5, alexnet, vgg, resnet20)")
    nets.add_argument("--width", type=int, help="hidden units (mlp) or channels of the first stage")
    nets.add_argument("--optimizer", choices=["sgd", "adam"], help="sgd (momentum 0.9, the default) or adam")
    nets.add_argument("--nesterov", action="store_true", help="Nesterov momentum for sgd")
    nets.add_argument("--weight-decay", type=float, help="L2 weight decay of the optimiser")
    nets.add_argument("--schedule", choices=["cosine", "step", "none"],
                      help="lr schedule per epoch: cosine, step (lr/10 at 50%% and 75%%), none")
    nets.add_argument("--shortcut", choices=["A", "B"], help="resnet20: zero-padded identity (A, default) "
                                                             "or 1x1 conv (B) where the shape changes")
    nets.add_argument("--no-augment", action="store_true", help="no random crops or flips")
    nets.add_argument("--checkpoint", metavar="PATH", help="save model, optimiser, schedule and random "
                                                           "state here after every epoch (atomically)")
    nets.add_argument("--resume", action="store_true", help="continue from --checkpoint when it exists")


def train(model, argv=None):
    """Parses argv as `model`'s options, trains it, prints the summary line; returns the RunResult."""
    parser = argparse.ArgumentParser(prog=f"fastconv train {model}")
    training_options(parser)
    args = parser.parse_args(argv)
    if args.resume and not args.checkpoint:
        parser.error("--resume needs --checkpoint PATH, the file to continue from")
    if args.threads is not None:
        fastconv.set_num_threads(args.threads)
    result = MODELS[model](args)
    print(result.summary())
    if args.plot:
        result.plot(args.plot)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(prog="fastconv")
    commands = parser.add_subparsers(dest="command", required=True)
    # no -h of its own: `fastconv train MODEL -h` reaches the model's parser, which lists its options
    train_parser = commands.add_parser("train", add_help=False,
                                       help="train one model of the suite on bundled real data")
    train_parser.add_argument("model", choices=sorted(MODELS))
    known, rest = parser.parse_known_args(argv)
    return train(known.model, rest)


if __name__ == "__main__":
    main()
