"""Image captioning with soft attention (Xu et al. 2015, "Show, attend and tell") on digit scenes.

Each 48 x 48 scene holds one or two real MNIST digits on a cluttered background; its caption is
generated from the scene ("a small 3 to the left of a large 7"), and the vocabulary is built from
the training captions. A small CNN encodes the scene into a 6 x 6 grid of features; an LSTM
writes the caption word by word, attending over the grid at each word; training feeds the true
previous word (teacher forcing). The held-out scenes (drawn from MNIST's test digits) are
captioned greedily and by beam search and scored by BLEU-4 and exact match, against the
caption-prior baseline that always answers the most frequent training caption.

    python python/captioning.py --plot captioning.png --attention attention.png
    python python/captioning.py --train-scenes 8000 --epochs 12 --beam-width 5
"""
import argparse
import dataclasses
import os
import sys

import numpy as np

import fastconv
from fastconv import cli
from fastconv.models import captioning as cap
from fastconv.models.captioning import CaptioningOptions
from fastconv.ops import conv_algo

DEFAULTS = CaptioningOptions()
HELP = {"train_scenes": "training scenes", "test_scenes": "held-out scenes scored", "epochs": "passes over the scenes",
        "batch_size": "scenes per step", "lr": "Adam's learning rate", "clip": "the largest gradient norm",
        "hidden_size": "units of the LSTM", "channels": "features per grid cell of the encoder",
        "beam_width": "captions kept by beam search", "seed": "seed of the weights and the shuffling"}


def build_parser():
    parser = cli.ArgumentParser(prog="captioning.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_argument_group("model and training")
    for field in dataclasses.fields(CaptioningOptions):
        default = getattr(DEFAULTS, field.name)
        kind = int if field.name == "seed" else cli.positive_int if isinstance(default, int) else cli.positive_float
        group.add_argument("--" + field.name.replace("_", "-"), type=kind, default=default, metavar="N",
                           help=f"{HELP[field.name]} (default: {default})")
    cli.add_output_arguments(parser)
    parser.add_argument_group("output").add_argument(
        "--attention", metavar="PATH", help="write a PNG of the attention over the grid for each word of a few "
                                            "held-out scenes")
    return parser


def plot_losses(losses, path):
    import matplotlib
    matplotlib.use("Agg")  # scripts run headless
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(range(1, len(losses) + 1), losses, marker=".")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy (nats per word)")
    ax.set_title("Show, attend and tell on digit scenes", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_attention(images, captions, alphas, path):
    """One row per scene: the image, then the attention weights of each word, upsampled from the
    grid to the image and laid over it."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = 1 + max(len(c.split()) for c in captions)
    fig, axes = plt.subplots(len(images), columns, figsize=(1.3 * columns, 1.4 * len(images)), squeeze=False)
    for row, (image, caption, alpha) in zip(axes, zip(images, captions, alphas)):
        side = int(round(np.sqrt(alpha.shape[1])))
        scale = image.shape[-1] // side
        row[0].imshow(image[0], cmap="gray")
        row[0].set_title("scene", fontsize=7)
        for ax, word, weights in zip(row[1:], caption.split(), alpha):
            ax.imshow(image[0], cmap="gray")
            ax.imshow(np.kron(weights.reshape(side, side), np.ones((scale, scale))), cmap="inferno", alpha=0.6)
            ax.set_title(word, fontsize=7)
        for ax in row:
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    cli.prepare_run(parser, args)
    if args.attention is not None:
        cli.existing_folder_of(parser, "--attention", args.attention)
    options = CaptioningOptions(**{f.name: getattr(args, f.name) for f in dataclasses.fields(CaptioningOptions)})
    train = cap.captioned_scenes("train", options.train_scenes, seed=options.seed)
    test = cap.captioned_scenes("test", options.test_scenes, seed=options.seed)
    vocab = cap.CaptionVocabulary(train.captions)
    print(f"{len(train.captions):,} training scenes ({train.source}) and {len(test.captions):,} held-out ones "
          f"({test.source}); {len(vocab)} words ({' '.join(vocab.words)}); e.g. {train.captions[0]!r}")

    # Convolution algorithms by a fixed rule, not by timing them: timings differ from run to run,
    # and so would the rounding, so a seed would not fix the run.
    conv_algo.set_mode("deterministic")
    fastconv.manual_seed(options.seed)  # the initial weights
    model = cap.ShowAttendTell(len(vocab), options.channels, options.hidden_size)
    print(f"{sum(p.data.size for p in model.parameters()):,} weights; {options}")
    losses, seconds = cap.train_captioner(model, train.images, vocab.padded(train.captions), options)

    greedy, alphas = cap.greedy_decode(model, test.images, vocab)
    beam = [cap.beam_search(model, image, vocab, options.beam_width)[0] for image in test.images]
    prior = [cap.prior_caption(train.captions)] * len(test.captions)
    print(f"held-out scenes ({len(test.captions)}), after {options.epochs} epochs ({seconds:.0f} s of training):")
    for name, answers in (("caption prior", prior), ("greedy", greedy), (f"beam {options.beam_width}", beam)):
        print(f"  {name:>13}: BLEU-4 {cap.corpus_bleu(test.captions, answers):.3f}, "
              f"exact match {cap.exact_match(test.captions, answers):.3f}")
    for truth, said in list(zip(test.captions, beam))[:5]:
        print(f"  {truth!r:42} -> {said!r}")
    if args.plot is not None:
        plot_losses(losses, args.plot)
        print(f"wrote the plot to {os.path.abspath(args.plot)}")
    if args.attention is not None:
        plot_attention(test.images[:4], greedy[:4], alphas[:4], args.attention)
        print(f"wrote the attention maps to {os.path.abspath(args.attention)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
