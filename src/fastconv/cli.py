"""The `fastconv` command: `fastconv train MODEL [options]` trains one model of the suite.

Models register in MODELS (name -> callable(args) returning a RunResult); a new model adds one
entry. Options a model does not use are ignored by it; unset ones take the model's defaults.
"""
import argparse

from fastconv.data import BUNDLED_DATASETS
from fastconv.models import classic_runs

MODELS = {
    "knn": classic_runs.run_knn,
    "linear_svm": classic_runs.run_linear_svm,
    "softmax": classic_runs.run_softmax,
    "perceptron": classic_runs.run_perceptron,
}


def training_options(parser):
    """The options every model's run reads; also used by the scripts in python/."""
    parser.add_argument("--data", choices=sorted(BUNDLED_DATASETS), default="mnist",
                        help="bundled real dataset (default: mnist, 5,000 MNIST digits)")
    parser.add_argument("--epochs", type=int, help="training epochs (model default if unset)")
    parser.add_argument("--lr", type=float, help="learning rate")
    parser.add_argument("--reg", type=float, help="L2 regularisation strength")
    parser.add_argument("--batch-size", type=int, help="minibatch size")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split, the init and the shuffling")
    parser.add_argument("--plot", metavar="PATH", help="write a PNG of the per-epoch metrics")


def train(model, argv=None):
    """Parses argv as `model`'s options, trains it, prints the summary line; returns the RunResult."""
    parser = argparse.ArgumentParser(prog=f"fastconv train {model}")
    training_options(parser)
    args = parser.parse_args(argv)
    result = MODELS[model](args)
    print(result.summary())
    if args.plot:
        result.plot(args.plot)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(prog="fastconv")
    commands = parser.add_subparsers(dest="command", required=True)
    train_parser = commands.add_parser("train", help="train one model of the suite on bundled real data")
    train_parser.add_argument("model", choices=sorted(MODELS))
    known, rest = parser.parse_known_args(argv)
    return train(known.model, rest)


if __name__ == "__main__":
    main()
