"""Character-level language models (Elman RNN and LSTM), trained by truncated backpropagation
through time with gradient clipping, scored in bits per character and sampled with a
temperature; and the unigram model they must beat.

Karpathy, Johnson & Fei-Fei 2015, "Visualizing and understanding recurrent networks", trains
such models on Shakespeare; Graves 2013, "Generating sequences with recurrent neural networks",
section 3, reports bits per character.
"""
import math
import time
from dataclasses import dataclass

import numpy as np

import fastconv
from fastconv import Tensor, nn, no_grad, optim, stack
from fastconv import functional as F
from fastconv.data.text import TextSplit, bptt_batches
from fastconv.models.runlog import progress_bar

CELLS = ("rnn", "lstm")


@dataclass(frozen=True)
class CharRNNOptions:
    cell: str = "lstm"          # "rnn" (Elman, tanh) or "lstm"
    hidden_size: int = 256
    embedding_dim: int = 32
    seq_len: int = 64            # steps of backpropagation through time
    batch_size: int = 32         # parallel streams of the training text
    steps: int = 600             # parameter updates
    lr: float = 3e-3             # Adam
    clip: float = 1.0            # the largest gradient norm (Pascanu et al. 2013)
    eval_chars: int = 100_000    # held-out characters scored (from the start of the test text)
    seed: int = 0

    def __post_init__(self):
        if self.cell not in CELLS:
            raise ValueError(f"cell: expected one of {', '.join(CELLS)}, got {self.cell!r}")


class CharLanguageModel(nn.Module):
    """Embedding -> one recurrent layer -> a linear read-out of the next character's logits."""

    def __init__(self, vocab_size, cell="lstm", hidden_size=256, embedding_dim=32):
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"cell: expected one of {', '.join(CELLS)}, got {cell!r}")
        self.cell_type, self.hidden_size = cell, hidden_size
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.cell = (nn.LSTMCell if cell == "lstm" else nn.RNNCell)(embedding_dim, hidden_size)
        self.readout = nn.Linear(hidden_size, vocab_size)

    def initial_state(self, batch_size):
        zeros = Tensor(np.zeros((batch_size, self.hidden_size), np.float32))
        return (zeros, zeros) if self.cell_type == "lstm" else zeros

    def forward(self, ids, state):
        """ids (T, N) int -> logits (T, N, vocab), the state after step T."""
        inputs = self.embedding(Tensor(ids) if isinstance(ids, np.ndarray) else ids)
        outputs = []
        for t in range(ids.shape[0]):
            state = self.cell(inputs[t], state)
            outputs.append(state[0] if self.cell_type == "lstm" else state)
        return self.readout(stack(outputs)), state


def detach_state(state):
    """The state carried into the next window, cut from the graph: truncated BPTT."""
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


def sequence_loss(logits, targets):
    """Mean cross-entropy in nats over every step and stream."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


@dataclass
class CharRNNResult:
    options: CharRNNOptions
    losses: list           # training loss (bits per character) per step
    valid_bpc: list        # (step, validation bits per character)
    seconds: float


def train_char_model(model, split: TextSplit, options: CharRNNOptions, show_progress=True,
                     valid_every=100, valid_chars=20_000):
    """Adam over windows of seq_len steps of batch_size streams, the state carried across
    windows (detached), gradients clipped to options.clip; the training text is read again
    from its start when it runs out. Returns a CharRNNResult."""
    fastconv.manual_seed(options.seed)
    optimizer = optim.Adam(model.parameters(), lr=options.lr)
    losses, valid_bpc, started = [], [], time.perf_counter()
    bar = progress_bar(options.steps, f"char-{options.cell}", unit="step", show=show_progress)
    step = 0
    while step < options.steps:
        state = model.initial_state(options.batch_size)
        for inputs, targets in bptt_batches(split.train, options.batch_size, options.seq_len):
            logits, state = model(inputs, state)
            loss = sequence_loss(logits, targets)
            optimizer.zero_grad()
            loss.backward()
            optim.clip_grad_norm_(model.parameters(), options.clip)
            optimizer.step()
            state = detach_state(state)
            losses.append(loss.item() / math.log(2))
            step += 1
            bar.update(1)
            bar.set_postfix(bpc=f"{losses[-1]:.3f}")
            if step % valid_every == 0 or step == options.steps:
                valid_bpc.append((step, bits_per_char(model, split.valid[:valid_chars])))
            if step == options.steps:
                break
    bar.close()
    return CharRNNResult(options, losses, valid_bpc, time.perf_counter() - started)


def bits_per_char(model, ids, streams=16, seq_len=128):
    """The model's mean -log2 p(next character) over ids, read as `streams` consecutive pieces
    with the state carried along each (the first character of each piece is context only)."""
    total, count = 0.0, 0
    with no_grad():
        state = model.initial_state(streams)
        for inputs, targets in bptt_batches(ids, streams, min(seq_len, len(ids) // streams - 1)):
            logits, state = model(inputs, state)
            total += sequence_loss(logits, targets).item() * targets.size
            count += targets.size
    return total / count / math.log(2)


def unigram_bits_per_char(train_ids, test_ids, vocab_size):
    """Bits per character of the character frequencies of the training text (add-one smoothed,
    so a character it never saw costs finite bits)."""
    counts = np.bincount(train_ids, minlength=vocab_size) + 1.0
    return float(-np.log2(counts / counts.sum())[test_ids].mean())


def sample_text(model, vocab, prime, length, temperature=0.8, seed=0):
    """`prime` followed by `length` characters drawn one at a time from softmax(logits / T):
    T < 1 sharpens the distribution towards the likeliest characters, T > 1 flattens it. The
    same seed draws the same text."""
    if not prime:
        raise ValueError("prime: expected at least one character to start from")
    if not temperature > 0:
        raise ValueError(f"temperature: expected a positive number, got {temperature}")
    rng = np.random.default_rng(seed)
    ids = list(vocab.encode(prime))
    with no_grad():
        logits, state = model(np.array(ids).reshape(-1, 1), model.initial_state(1))
        for _ in range(length):
            scaled = logits.numpy()[-1, 0].astype(np.float64) / temperature
            p = np.exp(scaled - scaled.max())
            ids.append(int(rng.choice(len(p), p=p / p.sum())))
            logits, state = model(np.array([[ids[-1]]]), state)
    return vocab.decode(ids)
