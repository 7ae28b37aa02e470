"""The character-level text loader: vocabulary with its unknown token, deterministic splits, and
the windows of truncated backpropagation through time."""
import numpy as np
import pytest

from fastconv.data import text


def test_vocabulary_round_trip_and_unknown_token():
    vocab = text.Vocabulary("to be or not")
    assert len(vocab) == len(set("to be or not")) + 1 and vocab.symbols[0] == text.UNKNOWN
    assert vocab.decode(vocab.encode("not to be")) == "not to be"
    ids = vocab.encode("bez")  # 'z' was never seen
    assert ids[-1] == vocab.unknown_id and ids.dtype == np.int64
    assert vocab.decode(ids) == "be" + text.UNKNOWN


def test_empty_training_text_is_refused():
    with pytest.raises(ValueError, match="text: a vocabulary needs a non-empty training text"):
        text.Vocabulary("")


def test_split_is_deterministic_contiguous_and_cut_at_lines():
    corpus = "".join(f"line {i} of the text\n" for i in range(200))
    first, second = text.split_text(corpus, held_out=0.1), text.split_text(corpus, held_out=0.1)
    for part in ("train", "valid", "test"):
        np.testing.assert_array_equal(getattr(first, part), getattr(second, part))
    pieces = [first.vocab.decode(getattr(first, part)) for part in ("train", "valid", "test")]
    assert "".join(pieces) == corpus
    assert all(p.endswith("\n") for p in pieces) and len(pieces[1]) == pytest.approx(len(corpus) * 0.1, rel=0.05)


def test_split_of_too_short_text_is_refused():
    with pytest.raises(ValueError, match="too few to split"):
        text.split_text("one line only\n")


def test_bptt_windows_continue_each_stream():
    ids = np.arange(103)
    windows = list(text.bptt_batches(ids, batch_size=4, seq_len=5))
    assert len(windows) == 4  # 25 steps per stream: windows need seq_len + 1 of them
    inputs, targets = windows[0]
    assert inputs.shape == targets.shape == (5, 4)
    np.testing.assert_array_equal(inputs[:, 1], np.arange(25, 30))  # stream 1 starts a quarter in
    np.testing.assert_array_equal(targets, inputs + 1)
    np.testing.assert_array_equal(windows[1][0][0], inputs[-1] + 1)  # the next window goes on


@pytest.mark.parametrize("ids, batch_size, seq_len, error, message", [
    (np.array([], np.int64), 2, 3, ValueError, "ids: the sequence is empty"),
    (np.arange(20), 2, 10, ValueError, "seq_len: 10 is too long for 20 ids in 2 streams of 10"),
    (np.arange(20.0), 2, 3, TypeError, "ids: expected a 1-d array of integer ids"),
    (np.arange(20), 0, 3, ValueError, "batch_size and seq_len: expected at least 1"),
])
def test_bad_sequences_are_named(ids, batch_size, seq_len, error, message):
    with pytest.raises(error, match=message):
        next(text.bptt_batches(ids, batch_size, seq_len))


def test_pydoc_corpus_ships_with_python():
    corpus = text.load_text("pydoc")
    assert len(corpus) > 300_000 and "function" in corpus


def test_unknown_corpus_is_named():
    with pytest.raises(ValueError, match="name: expected one of shakespeare, pydoc"):
        text.load_text("austen")
