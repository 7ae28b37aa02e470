"""Attention to scale on digit scenes: one FCN on several sizes of each image, merged per pixel.

Chen, Yang, Wang, Xu & Yuille 2016, "Attention to scale: scale-aware semantic image
segmentation": the same FCN (python/fcn.py's) runs on the image and on a resized copy (by
default 1.5 times larger: a digit's pen strokes are 2-4 pixels wide, so a half-size copy draws
them one pixel wide); each copy's scores are resized (bilinear) to a common grid, and an
attention head (3x3 conv, ReLU, 1x1 conv) reading the FCN's features at 1/8 of every scale gives
each pixel a softmax weight per scale; the output is the weighted sum of the scales' scores.
Every scale's own output is trained too (extra supervision).

This program trains three networks from the same seed on the same scenes, for the same steps,
and prints their test mIoU: the FCN on one scale, the two scales merged by a per-pixel max (the
paper's baseline), and merged by attention. --attention-maps writes each scale's weight on a
few test scenes.

    python python/attention_to_scale.py --plot a2s.png --attention-maps a2s_maps.png

In the default's 500 steps each: one scale 0.505, max over scales 0.479, attention 0.521
(--seed 1: 0.502, 0.519, 0.537). The attention weighs the enlarged copy most: with seed 0
almost everywhere, with seed 1 less so on the largest digits (digits here span only 16 to 32
pixels; the paper's per-pixel choices come from objects whose sizes vary far more).
"""
import sys

from fastconv import cli
from fastconv.models import segmentation_runs as runs

DEFAULTS = runs.ATTENTION_OPTIONS
PICTURES = {**cli.PREDICTIONS_PNG, "--attention-maps": "write a PNG of the attention weight of each scale"}


def main(argv=None):
    args, options, train, test = cli.start_scene_script("attention_to_scale.py", __doc__, DEFAULTS, argv, PICTURES)
    print(runs.describe_scenes(train, test))
    print(f"scales {' '.join(f'{s:g}' for s in options.scales)}; each network: width {options.width}, "
          f"{options.epochs} epochs")
    single = runs.run_fcn(train, test, options, name="single scale")
    print(single.summary())
    results = [single]
    for merge in ("max", "attention"):
        result, model = runs.run_attention_to_scale(train, test, options, merge)
        print(result.summary())
        results.append(result)
    print("\n".join(f"{r.model:>22}: test mIoU {r.test_accuracy:.4f}" for r in results))
    if args.plot is not None:
        runs.plot_comparison(args.plot, results, runs.describe_scenes(train, test))
        print(f"wrote the plot to {args.plot}")
    if args.predictions is not None:
        runs.save_predictions(args.predictions, model, test, results[-1].summary())
        print(f"wrote the predictions to {args.predictions}")
    if args.attention_maps is not None:
        images = test.images[:8]
        runs.plot_attention(args.attention_maps, images, runs.attention_weights(model, images), options.scales)
        print(f"wrote the attention maps to {args.attention_maps}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
