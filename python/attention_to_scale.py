"""Attention to scale on digit scenes: one FCN on several sizes of each image, merged per pixel.

Chen, Yang, Wang, Xu & Yuille 2016, "Attention to scale: scale-aware semantic image
segmentation": the same FCN (python/fcn.py's) runs on the image and on a half-size copy; each
copy's scores are resized (bilinear) to a common grid, and an attention head (3x3 conv, ReLU,
1x1 conv) reading the FCN's deepest features of every scale gives each pixel a softmax weight
per scale; the output is the weighted sum of the scales' scores. Every scale's own output is
trained too (extra supervision). Digits here range from 16 to 32 pixels by default: the
attention can learn which scale sees a digit best.

This program trains three networks from the same seed on the same scenes and prints their test
mIoU: the FCN on one scale, the two scales merged by a per-pixel max (the paper's baseline),
and merged by attention. --attention-maps writes each scale's weight on a few test scenes.

    python python/attention_to_scale.py --plot a2s.png --attention-maps a2s_maps.png

On these scenes, in the default's 500 steps each, the single-scale FCN leads (test mIoU 0.50;
max over scales 0.40, attention 0.41): the attention learns to put all the weight on scale 1,
since at half size the strokes are a pixel wide, while the shared FCN's training is split
between the two sizes (--no-extra-supervision: max 0.47, attention 0.48). Digits here span only
16 to 32 pixels; the paper's gains come from objects whose sizes vary far more.
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
