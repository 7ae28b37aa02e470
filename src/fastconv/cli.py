"""The `fastconv` command: `fastconv train MODEL [options]` trains one model of the suite on real
data and prints its accuracy.

Each model's options are a dataclass (models/suite.py); the command line maps onto its fields by
name (--batch-size sets batch_size) and shows the model's defaults in `fastconv train MODEL
--help`. The helpers that build those arguments and load the data are shared with the programs
in python/ and with fastconv-bench: a mistake on any of their command lines is one line on
stderr and exit status 2, before anything runs.

The networks also train data-parallel: `mpiexec -n 2 fastconv train resnet20 --distributed`.
"""
import argparse
import dataclasses
import os
import pickle
import sys
import textwrap

import fastconv
from fastconv import distributed
from fastconv.models.datasets import Split, load_split
from fastconv.models.deep_runs import NetOptions
from fastconv.models.runlog import RunResult
from fastconv.models.suite import SUITE


class ArgumentParser(argparse.ArgumentParser):
    """argparse with each error on one line, `prog: error: message`, and exit status 2: the
    usage block argparse prints first would bury the message under every option."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see: {self.prog} --help)\n")


def int_at_least(low):
    """An argparse type: a whole number >= low, or an error that says so."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected a whole number of at least {low}, got {value}")
        return value
    return parse


positive_int = int_at_least(1)


def float_above(low, inclusive):
    """An argparse type: a number above low (or equal to it when inclusive)."""
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if value < low or (value == low and not inclusive):
            raise argparse.ArgumentTypeError(f"expected a number {'>=' if inclusive else '>'} {low:g}, got {text}")
        return value
    return parse


positive_float = float_above(0, inclusive=False)
non_negative_float = float_above(0, inclusive=True)


def existing_folder_of(parser, option, path):
    """Ends the program when the folder that would hold `path` does not exist: found out now,
    not after the run that would write it."""
    folder = os.path.dirname(os.path.abspath(os.path.expanduser(path)))
    if not os.path.isdir(folder):
        parser.error(f"{option} {path}: the folder {folder} does not exist")


# The command line of every field a model's options dataclass may have. A model's parser shows
# those its dataclass has, with its defaults; the others it accepts and ignores, with a note.
FIELD_OPTIONS = {
    "epochs": dict(type=positive_int, metavar="N", help="passes over the training set"),
    "lr": dict(type=positive_float, metavar="X", help="learning rate"),
    "batch_size": dict(type=positive_int, metavar="N", help="minibatch size"),
    "reg": dict(type=non_negative_float, metavar="X", help="L2 regularisation strength"),
    "candidates": dict(flag="--k", type=positive_int, nargs="+", metavar="K",
                       help="the numbers of neighbours cross-validation compares"),
    "folds": dict(type=int_at_least(2), metavar="N", help="cross-validation folds"),
    "width": dict(type=positive_int, metavar="N", help="hidden units (mlp) or channels of the first stage"),
    "activation": dict(choices=["relu", "tanh"], help="the hidden layer's activation"),
    "shortcut": dict(choices=["A", "B"], help="where the shape changes: zero-padded identity (A) or 1x1 conv (B)"),
    "optimizer": dict(choices=["sgd", "adam"], help="sgd (momentum 0.9) or adam"),
    "nesterov": dict(action="store_true", help="Nesterov momentum for sgd"),
    "weight_decay": dict(type=non_negative_float, metavar="X", help="L2 weight decay of the optimiser"),
    "schedule": dict(choices=["cosine", "step", "none"],
                     help="lr schedule per epoch: cosine, step (lr/10 at 50%% and 75%%) or none"),
    "augment": dict(flag="--no-augment", action="store_false", help="train without random crops and flips"),
    "checkpoint": dict(metavar="PATH", help="save model, optimiser, schedule and random state here after "
                                            "every epoch (atomically)"),
    "resume": dict(action="store_true", help="continue from --checkpoint when the file exists"),
}


DATASET_HELP = {"mnist": "5,000 real MNIST digits, 28x28 (bundled)", "digits": "1,797 real digits, 8x8 (bundled)",
                "cifar10": "CIFAR-10 from the files you downloaded (--data-dir)", "xor": "400 noisy 2-D points"}


def _flag(name):
    return FIELD_OPTIONS[name].get("flag", "--" + name.replace("_", "-"))


def _usage(name):
    """The flag as usage shows it: `--epochs N`, `--optimizer {sgd,adam}`, `--nesterov`."""
    spec = FIELD_OPTIONS[name]
    if "metavar" in spec:
        return f"{_flag(name)} {spec['metavar']}"
    if "choices" in spec:
        return f"{_flag(name)} {{{','.join(spec['choices'])}}}"
    return _flag(name)


def add_data_arguments(parser, datasets, default="mnist", limit=None):
    """--data, --data-dir, --limit, --seed: what load_data() reads."""
    group = parser.add_argument_group("data")
    group.add_argument("--data", choices=datasets, default=default,
                       help="; ".join(f"{name}: {DATASET_HELP[name]}" for name in datasets) + f" (default: {default})")
    group.add_argument("--data-dir", metavar="PATH", help="the cifar-10-batches-py folder, for --data cifar10")
    group.add_argument("--limit", type=positive_int, default=limit, metavar="N",
                       help=f"train on a random N of the training samples (default: {limit or 'all'})")
    group.add_argument("--seed", type=int, default=0, metavar="N",
                       help="seed of the split, the init and the shuffling (default: 0)")


def add_option_arguments(parser, defaults, title="training", ignored=(), table=FIELD_OPTIONS):
    """An argument for each field of the options dataclass `defaults` that `table` knows (with
    its value as the default) and, hidden, one for each field name in `ignored`. Unset ones stay
    out of the namespace, so options_from() tells what the user chose."""
    group = parser.add_argument_group(title)
    for field in dataclasses.fields(defaults):
        if field.name in table:
            spec = {k: v for k, v in table[field.name].items() if k != "flag"}
            value = getattr(defaults, field.name)
            if value is not None and not isinstance(value, bool):
                shown = " ".join(map(str, value)) if isinstance(value, tuple) else value
                spec["help"] += f" (default: {shown})"
            flag = table[field.name].get("flag", "--" + field.name.replace("_", "-"))
            group.add_argument(flag, dest=field.name, default=argparse.SUPPRESS, **spec)
    for name in ignored:
        spec = {k: v for k, v in FIELD_OPTIONS[name].items() if k not in ("flag", "help")}
        parser.add_argument(_flag(name), dest=name, default=argparse.SUPPRESS, help=argparse.SUPPRESS, **spec)


def add_output_arguments(parser):
    group = parser.add_argument_group("output")
    group.add_argument("--plot", metavar="PATH", help="write a PNG of the training metrics here")
    group.add_argument("--threads", type=positive_int, metavar="N",
                       help="threads of fastconv's kernels (default: all cores; 1 is faster on a machine "
                            "other jobs keep busy)")


def add_distributed_argument(parser):
    parser.add_argument_group("parallel").add_argument(
        "--distributed", action="store_true",
        help="train data-parallel over the processes mpiexec started (mpiexec -n 2 ... --distributed); "
             "--batch-size is the global batch, a multiple of their number")


def start_distributed(parser, args, options):
    """Joins the ranks when --distributed asked for it (the Trainer then trains data-parallel)
    and checks that they can share the global batch; returns the Context (world size 1 without
    --distributed or without mpiexec)."""
    if not getattr(args, "distributed", False):
        return distributed.Context(rank=0, world_size=1)
    try:
        ctx = distributed.init()
    except ModuleNotFoundError as e:
        parser.error(f"--distributed: {e}")
    if options.batch_size % ctx.world_size:
        parser.error(f"--batch-size {options.batch_size} is the global batch and must be a multiple of the "
                     f"{ctx.world_size} processes of --distributed")
    return ctx


def script_parser(prog, description, datasets, defaults, data="mnist", limit=None):
    """The command line of a program in python/: its data, a flag for each field of its options
    dataclass `defaults` (their values the defaults), --plot and --threads."""
    parser = ArgumentParser(prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_arguments(parser, datasets, data, limit)
    add_option_arguments(parser, defaults)
    add_output_arguments(parser)
    return parser


def options_from(parser, args, defaults, table=FIELD_OPTIONS):
    """`defaults` with the fields the user set on the command line, and the seed."""
    chosen = {f.name: getattr(args, f.name) for f in dataclasses.fields(defaults)
              if f.name in table and f.name in vars(args)}
    chosen = {name: tuple(value) if isinstance(value, list) else value for name, value in chosen.items()}
    if chosen.get("resume") and not chosen.get("checkpoint"):
        parser.error("--resume needs --checkpoint PATH, the file to continue from")
    if chosen.get("checkpoint"):
        existing_folder_of(parser, "--checkpoint", chosen["checkpoint"])
    return dataclasses.replace(defaults, seed=args.seed, **chosen)


def load_data(parser, args) -> Split:
    """The Split that args.data, data_dir, limit and seed name. A folder, file or package that
    is missing ends the program with one line saying which."""
    if args.data_dir is not None and args.data != "cifar10":
        parser.error(f"--data-dir is the CIFAR-10 folder; it goes with --data cifar10, not --data {args.data}")
    if args.data == "cifar10":
        if args.data_dir is None:
            parser.error("--data cifar10 needs --data-dir PATH, the cifar-10-batches-py folder "
                         "(the python version from https://www.cs.toronto.edu/~kriz/cifar.html)")
        if not os.path.isdir(os.path.expanduser(args.data_dir)):
            parser.error(f"--data-dir {args.data_dir}: no such folder")
    try:
        return load_split(args.data, args.data_dir, args.seed, args.limit)
    except (OSError, ImportError, ValueError, pickle.UnpicklingError) as e:  # a batch missing, a package absent
        parser.error(f"--data {args.data}: {e}")


def prepare_run(parser, args):
    """Checks the output paths and sets the threads: what every training program does first."""
    if args.plot is not None:
        existing_folder_of(parser, "--plot", args.plot)
    if args.threads is not None:
        fastconv.set_num_threads(args.threads)


def start_script(prog, description, datasets, defaults, argv=None):
    """What a program in python/ does first: parse argv, take its options from `defaults` and the
    command line, check the output paths, set the threads and load the data. Returns
    (args, options, split)."""
    parser = script_parser(prog, description, datasets, defaults)
    args = parser.parse_args(argv)
    options = options_from(parser, args, defaults)
    prepare_run(parser, args)
    return args, options, load_data(parser, args)


# The segmentation programs' options beyond FIELD_OPTIONS: the digit scenes and the networks' shape.
SCENE_FIELD_OPTIONS = {
    **FIELD_OPTIONS,
    "train_scenes": dict(type=positive_int, metavar="N", help="digit scenes to train on"),
    "test_scenes": dict(type=positive_int, metavar="N", help="held-out digit scenes (of MNIST's test digits)"),
    "size": dict(type=positive_int, metavar="PIXELS", help="side of the scenes"),
    "class_balance": dict(type=non_negative_float, metavar="X",
                          help="loss weights (median class frequency / frequency) ** X; 0: every pixel alike"),
    "output_stride": dict(type=int, choices=[32, 16, 8, 4, 2], help="FCN's finest skip: 8 is FCN-8s"),
    "scales": dict(type=positive_float, nargs="+", metavar="S", help="input scales, 1 first"),
    "extra_supervision": dict(flag="--no-extra-supervision", action="store_false",
                              help="train on the merged output only, not on each scale's too"),
}


PREDICTIONS_PNG = {"--predictions": "write a PNG of test scenes with their true and predicted classes"}


def scene_script_parser(prog, description, defaults, pictures=PREDICTIONS_PNG):
    """The command line of a segmentation program in python/: --seed, a flag for each field of
    its options dataclass `defaults` (their values the defaults), --plot, --threads, and a
    PATH option for each PNG in `pictures` ({flag: help})."""
    parser = ArgumentParser(prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0, metavar="N",
                        help="seed of the scenes, the init and the shuffling (default: 0)")
    add_option_arguments(parser, defaults, table=SCENE_FIELD_OPTIONS)
    add_output_arguments(parser)
    for flag, text in pictures.items():
        parser.add_argument(flag, metavar="PATH", help=text)
    return parser


def start_scene_script(prog, description, defaults, argv=None, pictures=PREDICTIONS_PNG):
    """What a segmentation program does first: parse argv, take its options from `defaults` and
    the command line, check the output paths, set the threads and make (or read back) the digit
    scenes. Returns (args, options, train scenes, test scenes)."""
    from fastconv.models.segmentation_runs import load_scenes  # the networks load only for these programs
    parser = scene_script_parser(prog, description, defaults, pictures)
    args = parser.parse_args(argv)
    options = options_from(parser, args, defaults, SCENE_FIELD_OPTIONS)
    prepare_run(parser, args)
    for flag in pictures:
        path = getattr(args, flag.lstrip("-").replace("-", "_"))
        if path is not None:
            existing_folder_of(parser, flag, path)
    try:
        train, test = load_scenes(options)
    except (OSError, ImportError, ValueError) as e:  # no MNIST digits installed, a bad scene size
        parser.error(str(e))
    return args, options, train, test


def report(result: RunResult, plot):
    """Prints the summary line and writes the plot when asked (rank 0's job in a distributed run)."""
    if distributed.is_initialized() and not distributed.context().is_main:
        return
    print(result.summary())
    if plot is not None:
        result.plot(plot)
        print(f"wrote the plot to {os.path.abspath(plot)}")


def _options_overview():
    """The epilog of `fastconv train --help`: every option, and which models read it."""
    rows = [("--data NAME", f"{', '.join(DATASET_HELP)} (default: mnist)"),
            ("--data-dir PATH", "the cifar-10-batches-py folder, for --data cifar10"),
            ("--limit N", "train on a random N of the training samples"),
            ("--seed N", "seed of the split, the init and the shuffling")]
    for name, spec in FIELD_OPTIONS.items():
        users = [model for model, entry in SUITE.items() if name in {f.name for f in dataclasses.fields(entry.options)}]
        rows.append((_usage(name), f"{spec['help'].replace('%%', '%')}  [{', '.join(users)}]"))
    rows += [("--plot PATH", "write a PNG of the training metrics"), ("--threads N", "threads of the kernels")]
    return "options (`fastconv train MODEL --help` lists a model's own, with its defaults):\n" + "\n".join(
        _help_row(flag, text) for flag, text in rows)


def _help_row(flag, text, column=28, width=100):
    """`  --flag   text`, the text wrapped at `column`; a flag too long for it gets a line of its own."""
    indent = " " * column
    if len(flag) + 3 > column:
        return f"  {flag}\n" + textwrap.fill(text, width, initial_indent=indent, subsequent_indent=indent)
    return textwrap.fill(text, width, initial_indent=f"  {flag:{column - 2}}", subsequent_indent=indent)


def build_parser():
    parser = ArgumentParser(prog="fastconv", description="fastconv's command line: train the models of its suite.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    train = commands.add_parser("train", help="train one model of the suite and print its accuracy",
                                description="Train one model of the suite on real data (bundled MNIST digits by "
                                            "default) and print its train and test accuracy.",
                                epilog=_options_overview(), formatter_class=argparse.RawDescriptionHelpFormatter)
    models = train.add_subparsers(dest="model", required=True, metavar="MODEL", title="models")
    for name, model in SUITE.items():
        sub = models.add_parser(name, help=model.description, description=f"Train {name}: {model.description}.")
        add_data_arguments(sub, list(model.datasets))
        fields = {f.name for f in dataclasses.fields(model.options)}
        add_option_arguments(sub, model.options(), title=name,
                             ignored=[field for field in FIELD_OPTIONS if field not in fields])
        add_output_arguments(sub)
        if issubclass(model.options, NetOptions):
            add_distributed_argument(sub)
        sub.set_defaults(model_parser=sub)
    return parser


def train(args) -> RunResult:
    """Runs `fastconv train` from its parsed arguments; returns the RunResult."""
    parser, model = args.model_parser, SUITE[args.model]
    fields = {f.name for f in dataclasses.fields(model.options)}
    ignored = [_flag(name) for name in FIELD_OPTIONS if name in vars(args) and name not in fields]
    if ignored:
        print(f"note: {args.model} does not use {', '.join(ignored)}; ignored", file=sys.stderr)
    options = options_from(parser, args, model.default_options(args.data))
    prepare_run(parser, args)
    start_distributed(parser, args, options)
    split = load_data(parser, args)
    result = model.run(split, options)
    report(result, args.plot)
    return result


def main(argv=None) -> int:
    """The console script: 0 after a run, 2 (with one line on stderr) for a mistake in argv."""
    args = build_parser().parse_args(argv)
    train(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
