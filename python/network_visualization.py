"""Seeing inside a digit classifier: saliency maps, class visualisation and fooling images.

The program trains a small CNN on real MNIST digits (pixels in [0, 1], no normalisation, so
every image below lives in the same [0, 1] box as the data; no pretrained network is needed),
then asks three questions of it through the gradient with respect to the input image:

  saliency      which pixels move the class score most: max over channels of |d score / d x|
                (Simonyan, Vedaldi & Zisserman 2014, "Deep inside convolutional networks", sec. 3)
  class images  what the network takes for each digit: gradient ascent on the class score from
                a grey image, L2-regularised, with jitter and periodic blur (ibid. sec. 2;
                Yosinski et al. 2015, "Understanding neural networks through deep visualization")
  fooling       how little change makes it see another digit: the targeted basic iterative method
                (Kurakin, Goodfellow & Bengio 2017) within an L-inf ball, target = label + 1 mod 10
                (Szegedy et al. 2014, "Intriguing properties of neural networks")

    python python/network_visualization.py                  # writes saliency.png, class_visualization.png, fooling.png
    python python/network_visualization.py --epsilon 0.2 --out-dir figures
    python python/network_visualization.py --checkpoint digits_cnn.npz --resume   # train once, then reuse
"""
import os
import sys
from dataclasses import dataclass

import numpy as np

import fastconv
from fastconv import cli
from fastconv.models import visualization as vis
from fastconv.models.deep_runs import NetOptions, describe, train_network
from fastconv.models.stn import DigitClassifier
from fastconv.models.trainer import predict


@dataclass(frozen=True)
class ClassifierOptions(NetOptions):
    # Adam, 3 epochs: about 97% on the test digits, a minute or so on 2 cores
    epochs: int = 3
    lr: float = 2e-3
    batch_size: int = 32
    optimizer: str = "adam"
    weight_decay: float = 0.0
    width: int = 16                  # channels of the first convolution


DEFAULTS = ClassifierOptions()


def build_parser():
    parser = cli.script_parser("network_visualization.py", __doc__, ["mnist"], DEFAULTS)
    group = parser.add_argument_group("studies")
    group.add_argument("--epsilon", type=cli.positive_float, default=vis.AttackOptions().epsilon, metavar="X",
                       help="L-inf budget of the fooling images, in pixel units of [0, 1] (default: %(default)s)")
    group.add_argument("--attack-images", type=cli.positive_int, default=500, metavar="N",
                       help="test digits to fool (default: %(default)s)")
    group.add_argument("--ascent-steps", type=cli.positive_int, default=vis.ClassVisualizationOptions().steps,
                       metavar="N", help="gradient-ascent steps of each class image (default: %(default)s)")
    group.add_argument("--out-dir", default=".", metavar="PATH", help="where the PNGs go (default: %(default)s)")
    return parser


def show_saliency(model, split, path, count=10):
    images, labels = split.x_test[:count], split.y_test[:count]
    maps = vis.saliency_maps(model, images, labels)
    vis.save_image_grid(path, [images[:, 0], maps], ["digit", "saliency"], titles=[str(y) for y in labels],
                        title="|d score(label) / d pixel|", cmaps=[None, "hot"])
    print(f"saliency: mean share of the gradient on the digit's own ink "
          f"{np.mean([(m * (x[0] > 0.1)).sum() / m.sum() for m, x in zip(maps, images)]):.0%} "
          f"(ink covers {np.mean(images > 0.1):.0%} of the pixels)")


def show_class_images(model, shape, steps, path, num_classes=10):
    options = vis.ClassVisualizationOptions(steps=steps)
    images = [vis.class_visualization(model, target, shape, options)[0] for target in range(num_classes)]
    predicted = predict(model, np.stack(images)[:, None])
    vis.save_image_grid(path, [images], ["ascent"], titles=[f"class {c}" for c in range(num_classes)],
                        title="images that maximise each class score")
    print(f"class visualisation: {int(np.sum(predicted == np.arange(num_classes)))} of {num_classes} images "
          f"classified as the class they were made for")


def show_fooling(model, split, epsilon, count, path, shown=8):
    images, labels = split.x_test[:count], split.y_test[:count]
    targets = (labels + 1) % 10
    options = vis.AttackOptions(epsilon=epsilon)
    result = vis.targeted_attack(model, images, targets, options)
    print(f"fooling images: {result.summary(epsilon)}")
    difference = result.adversarial[:shown, 0] - images[:shown, 0]
    vis.save_image_grid(path, [images[:shown, 0], result.adversarial[:shown, 0], 0.5 + difference / (2 * epsilon)],
                        ["original", "fooling", "change"], titles=[f"{y}->{t}" for y, t in zip(labels, targets)],
                        title=f"targeted attack, L-inf <= {epsilon:g} (change shown x{1 / (2 * epsilon):.3g})")


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    options = cli.options_from(parser, args, DEFAULTS)
    cli.prepare_run(parser, args)
    if not os.path.isdir(args.out_dir):
        parser.error(f"--out-dir {args.out_dir}: no such folder")
    split = cli.load_data(parser, args)
    print(split.summary())

    fastconv.manual_seed(options.seed)  # the initial weights
    model = DigitClassifier(split.sample_shape[1], split.num_classes, options.width)
    print(describe(model, options))
    result = train_network("digit classifier", model, split, options)
    cli.report(result, args.plot)

    paths = {name: os.path.join(args.out_dir, f"{name}.png") for name in ("saliency", "class_visualization", "fooling")}
    show_saliency(model, split, paths["saliency"])
    show_class_images(model, split.sample_shape, args.ascent_steps, paths["class_visualization"])
    show_fooling(model, split, args.epsilon, args.attack_images, paths["fooling"])
    print("wrote " + ", ".join(os.path.abspath(path) for path in paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
