"""The sequence models: character language models learn (their held-out bits per character fall
far below the unigram model's), and their samples are fixed by the seed."""
import numpy as np
import pytest

import fastconv
from fastconv.data import text
from fastconv.models import sequence

# A small text with structure a recurrent model can find and a unigram model cannot: each
# line is a word followed by its reversal.
WORDS = ["stone", "river", "candle", "garden", "window", "silver", "lantern", "harbour"]
TOY_TEXT = "".join(f"{w} {w[::-1]}\n" for _ in range(40) for w in WORDS)


@pytest.fixture(scope="module")
def toy_split():
    return text.split_text(TOY_TEXT, "toy", held_out=0.1)


def trained(split, cell, steps=60):
    options = sequence.CharRNNOptions(cell=cell, hidden_size=48, embedding_dim=8, seq_len=16, batch_size=8,
                                      steps=steps, lr=1e-2, seed=0)
    fastconv.manual_seed(0)
    model = sequence.CharLanguageModel(len(split.vocab), cell, options.hidden_size, options.embedding_dim)
    return model, sequence.train_char_model(model, split, options, show_progress=False, valid_every=30)


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("cell", sequence.CELLS)
def test_short_training_beats_the_unigram_model(toy_split, cell):
    model, result = trained(toy_split, cell)
    unigram = sequence.unigram_bits_per_char(toy_split.train, toy_split.test, len(toy_split.vocab))
    bpc = sequence.bits_per_char(model, toy_split.test, streams=2)
    assert len(result.losses) == 60 and result.losses[-1] < result.losses[0] - 1.5
    assert bpc < unigram - 1.0, (bpc, unigram)
    assert [step for step, _ in result.valid_bpc] == [30, 60]


@pytest.mark.usefixtures("one_thread")
def test_sample_is_fixed_by_the_seed(toy_split):
    model, _ = trained(toy_split, "lstm", steps=5)
    first, again = (sequence.sample_text(model, toy_split.vocab, "stone", 40, 0.8, seed=3) for _ in range(2))
    other = sequence.sample_text(model, toy_split.vocab, "stone", 40, 0.8, seed=4)
    assert first == again and first != other
    assert first.startswith("stone") and len(first) == 45


def test_unigram_bits_are_the_entropy_of_the_frequencies():
    ids = np.array([1, 1, 1, 2])  # smoothed counts 1, 4, 2 over a vocabulary of 3
    expected = -(3 * np.log2(4 / 7) + np.log2(2 / 7)) / 4
    assert sequence.unigram_bits_per_char(ids, ids, 3) == pytest.approx(expected)


@pytest.mark.parametrize("kwargs, message", [
    (dict(prime=""), "prime: expected at least one character"),
    (dict(temperature=0.0), "temperature: expected a positive number"),
])
def test_bad_sample_arguments_are_named(toy_split, kwargs, message):
    model = sequence.CharLanguageModel(len(toy_split.vocab), "rnn", 8, 4)
    arguments = dict(prime="s", length=3, temperature=1.0) | kwargs
    with pytest.raises(ValueError, match=message):
        sequence.sample_text(model, toy_split.vocab, **arguments)


def test_unknown_cell_is_named():
    with pytest.raises(ValueError, match="cell: expected one of rnn, lstm, got 'gru'"):
        sequence.CharRNNOptions(cell="gru")
