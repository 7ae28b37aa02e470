"""Neural style transfer (Gatys, Ecker & Bethge 2016, "Image style transfer using convolutional
neural networks") on photographs that ship with scikit-image.

An image is optimised, pixel by pixel with Adam, to keep the features of a content photo at one
layer (content loss, eq. 1), take on the Gram matrices of a style image's features at several
layers (style loss, eqs. 3-5), and stay smooth (total variation). The paper reads the features
of VGG-19 trained on ImageNet; no pretrained weights are available to fastconv offline, so this
program reads those of an UNTRAINED multi-scale network instead (fastconv.models.visualization.
RandomFeatureNet: 3x3 conv + ReLU + average-pooling stages with random He-initialised weights).
Random multi-scale filters carry enough texture statistics for synthesis (Ustyuzhaninov,
Brendel, Gatys & Bethge 2017, "What does it take to generate natural textures?"), so colours,
strokes and local texture transfer; the semantic correspondences a trained VGG finds do not.

    pip install scikit-image
    python python/style_transfer.py      # chelsea (the cat) in the style of immunohistochemistry
    python python/style_transfer.py --content astronaut --style coffee --size 192 --steps 400
"""
import argparse
import os
import sys
import time

import numpy as np

import fastconv
from fastconv import cli
from fastconv.models import visualization as vis

PHOTOS = ["astronaut", "chelsea", "coffee", "immunohistochemistry", "rocket", "brick", "grass", "gravel"]
DEFAULTS = vis.StyleTransferOptions()


def load_photo(name, size):
    """skimage.data.<name>() as (3, size, size) float32 in [0, 1]: the central square, resized with
    anti-aliasing; grey images repeated over three channels."""
    try:
        from skimage import data, transform
    except ImportError:
        raise ModuleNotFoundError("the photos ship with scikit-image: pip install scikit-image") from None
    image = getattr(data, name)()
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = image[top:top + side, left:left + side, :3]
    resized = transform.resize(square, (size, size), anti_aliasing=True)  # floats in [0, 1]
    return resized.transpose(2, 0, 1).astype(np.float32)


def build_parser():
    parser = cli.ArgumentParser(prog="style_transfer.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--content", choices=PHOTOS, default="chelsea", help="content photo (default: %(default)s)")
    parser.add_argument("--style", choices=PHOTOS, default="immunohistochemistry",
                        help="style image (default: %(default)s)")
    parser.add_argument("--size", type=cli.int_at_least(16), default=128, metavar="N",
                        help="side of the square images, in pixels (default: %(default)s)")
    parser.add_argument("--steps", type=cli.positive_int, default=DEFAULTS.steps, metavar="N",
                        help="Adam steps on the pixels (default: %(default)s)")
    parser.add_argument("--lr", type=cli.positive_float, default=DEFAULTS.lr, metavar="X",
                        help="Adam's learning rate, in pixel units of [0, 1] (default: %(default)s)")
    parser.add_argument("--content-weight", type=cli.non_negative_float, default=DEFAULTS.content_weight,
                        metavar="X", help="weight of the content loss (default: %(default)s)")
    parser.add_argument("--style-weight", type=cli.non_negative_float, default=DEFAULTS.style_weights[0],
                        metavar="X", help="weight of each layer's style loss (default: %(default)s)")
    parser.add_argument("--tv-weight", type=cli.non_negative_float, default=DEFAULTS.tv_weight, metavar="X",
                        help="weight of the total variation loss (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, metavar="N",
                        help="seed of the random feature network (default: 0)")
    parser.add_argument("--out", default="style_transfer.png", metavar="PATH",
                        help="PNG of content, style and result (default: %(default)s)")
    parser.add_argument("--threads", type=cli.positive_int, metavar="N", help="threads of fastconv's kernels")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    cli.existing_folder_of(parser, "--out", args.out)
    if args.threads is not None:
        fastconv.set_num_threads(args.threads)
    try:
        content, style = load_photo(args.content, args.size), load_photo(args.style, args.size)
    except (ImportError, OSError) as e:  # scikit-image absent, or a photo it fetches on demand not there
        parser.error(f"--content/--style: {e}")
    options = vis.StyleTransferOptions(steps=args.steps, lr=args.lr, content_weight=args.content_weight,
                                       style_weights=(args.style_weight,) * len(DEFAULTS.style_layers),
                                       tv_weight=args.tv_weight)
    net = vis.RandomFeatureNet(seed=args.seed)
    print(f"content: skimage.data.{args.content}, style: skimage.data.{args.style}, {args.size}x{args.size}")
    print(f"features: an untrained {len(net.convs)}-stage network (random He-initialised 3x3 convs, widths "
          f"{', '.join(str(c.out_channels) for c in net.convs)}, seed {args.seed}); no ImageNet weights")

    start = time.perf_counter()
    image, history = vis.style_transfer(net, content, style, options)
    print(f"{options.steps} steps in {time.perf_counter() - start:.1f} s: loss {history[0]:.4g} -> {history[-1]:.4g}")
    vis.save_image_grid(args.out, [[content, style, image]], ["images"],
                        titles=[f"content: {args.content}", f"style: {args.style}", "result"],
                        title="style transfer on the features of an untrained multi-scale network")
    print(f"wrote the result to {os.path.abspath(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
