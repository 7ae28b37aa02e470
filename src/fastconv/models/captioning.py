"""Image captioning with soft attention (Xu et al. 2015, "Show, attend and tell"), on digit scenes
whose captions are generated from the scene: "a small 3 to the left of a large 7".

A small CNN turns the image into a grid of L feature vectors a_i; an LSTM writes the caption one
word at a time, each step attending over the grid (section 4.2, soft attention):
    e_ti = v^T tanh(W_a a_i + U_a h_{t-1}),  alpha_t = softmax(e_t),  z_t = sum_i alpha_ti a_i
    h_t, c_t = LSTM([E y_{t-1}, z_t], h_{t-1}, c_{t-1}),  p(y_t) = softmax(W_o [h_t, z_t])
with h_0, c_0 = tanh of linear maps of the mean feature (section 3.1.2). Training feeds the true
previous word (teacher forcing); captions are decoded greedily or by beam search, and scored by
BLEU-4 (Papineni et al. 2002) and exact match against a caption-prior baseline that always says
the training set's most frequent caption.
"""
import collections
import math
import time
from dataclasses import dataclass

import numpy as np

from fastconv import Tensor, cat, nn, no_grad, optim, stack
from fastconv import functional as F
from fastconv.data.scenes import digit_scenes
from fastconv.models.runlog import progress_bar

PAD, START, END, UNKNOWN = "<pad>", "<start>", "<end>", "<unk>"
SCENE_SIZE, DIGIT_SIDES = 48, (14, 26)
# A digit's ink fills about 20 of MNIST's 28 rows, so sides 14..26 give ink 10..19 pixels tall;
# "large" is the upper half.
LARGE_INK_HEIGHT = 15


# ---- captions from scenes --------------------------------------------------------------------------

def _phrase(box, label):
    size = "large" if box[3] - box[1] >= LARGE_INK_HEIGHT else "small"
    return f"a {size} {label - 1}"


def describe_scene(boxes, labels):
    """The caption of a scene with one or two digits: "a small 3", or "a small 3 to the left of a
    large 7" / "a large 7 above a small 3", whichever axis separates the two centres more."""
    if not 1 <= len(labels) <= 2:
        raise ValueError(f"labels: captions describe scenes of one or two digits, got {len(labels)}")
    phrases = [_phrase(box, label) for box, label in zip(boxes, labels)]
    if len(phrases) == 1:
        return phrases[0]
    centres = [((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for b in boxes]
    dx, dy = centres[1][0] - centres[0][0], centres[1][1] - centres[0][1]
    horizontal = abs(dx) >= abs(dy)
    first_is_earlier = (dx if horizontal else dy) >= 0  # left of, or above, the second
    first, second = phrases if first_is_earlier else phrases[::-1]
    return f"{first} {'to the left of' if horizontal else 'above'} {second}"


class CaptionVocabulary:
    """The words of the training captions, after the special tokens <pad> (0), <start> (1),
    <end> (2) and <unk> (3), which any word outside the training captions encodes to."""

    def __init__(self, captions):
        words = sorted({w for caption in captions for w in caption.split()})
        if not words:
            raise ValueError("captions: a vocabulary needs at least one non-empty caption")
        self.words = [PAD, START, END, UNKNOWN] + words
        self._ids = {w: i for i, w in enumerate(self.words)}

    pad_id, start_id, end_id, unknown_id = 0, 1, 2, 3

    def __len__(self):
        return len(self.words)

    def encode(self, caption):
        """<start> words <end> as ids."""
        return [self.start_id] + [self._ids.get(w, self.unknown_id) for w in caption.split()] + [self.end_id]

    def decode(self, ids):
        """The words of ids up to the first <end>, special tokens left out."""
        words = []
        for i in ids:
            if i == self.end_id:
                break
            if i > self.unknown_id:
                words.append(self.words[i])
        return " ".join(words)

    def padded(self, captions):
        """(N, T) int64 ids of the captions, <pad> after each <end>."""
        encoded = [self.encode(c) for c in captions]
        out = np.full((len(encoded), max(map(len, encoded))), self.pad_id, np.int64)
        for row, ids in zip(out, encoded):
            row[:len(ids)] = ids
        return out


@dataclass(frozen=True)
class CaptionedScenes:
    images: np.ndarray   # (N, 1, S, S) float32
    captions: list       # N strings
    source: str


def captioned_scenes(split, count, seed=0):
    """`count` digit scenes (48 x 48, one or two digits) and their captions, deterministic in
    the arguments (data.scenes.digit_scenes)."""
    scenes = digit_scenes(split, count, size=SCENE_SIZE, seed=seed, max_digits=2, digit_sizes=DIGIT_SIDES)
    captions = [describe_scene(b, l) for b, l in zip(scenes.boxes, scenes.labels)]
    return CaptionedScenes(scenes.images, captions, scenes.source)


# ---- the model -----------------------------------------------------------------------------------

class ConvEncoder(nn.Module):
    """Three 3x3 conv-BN-ReLU stages, each halving the image: 48 x 48 -> a 6 x 6 grid of
    `channels` features, returned as (N, 36, channels)."""

    def __init__(self, channels=64):
        super().__init__()
        widths = [1, channels // 4, channels // 2, channels]
        layers = []
        for c_in, c_out in zip(widths, widths[1:]):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(), nn.MaxPool2d(2)]
        self.layers = nn.Sequential(*layers)
        self.channels = channels

    def forward(self, images):
        grid = self.layers(images)
        n, c, h, w = grid.shape
        return grid.reshape(n, c, h * w).transpose(1, 2)


class AttentionDecoder(nn.Module):
    """The LSTM of Show, Attend and Tell with soft attention over the feature grid."""

    def __init__(self, vocab_size, feature_dim, hidden_size=128, embedding_dim=32, attention_dim=64):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.feature_projection = nn.Linear(feature_dim, attention_dim)  # W_a
        self.hidden_projection = nn.Linear(hidden_size, attention_dim, bias=False)  # U_a
        self.score = nn.Linear(attention_dim, 1, bias=False)  # v
        self.init_h, self.init_c = nn.Linear(feature_dim, hidden_size), nn.Linear(feature_dim, hidden_size)
        self.cell = nn.LSTMCell(embedding_dim + feature_dim, hidden_size)
        self.output = nn.Linear(hidden_size + feature_dim, vocab_size)

    def start(self, features):
        """(h_0, c_0) and the projected features W_a a_i, computed once per image."""
        mean = features.mean(axis=1)
        return (self.init_h(mean).tanh(), self.init_c(mean).tanh()), self.feature_projection(features)

    def step(self, words, state, features, projected):
        """One word: words (N,) ids of the previous words -> logits (N, V), the new state, and
        the attention weights alpha (N, L)."""
        h, _ = state
        energy = self.score((projected + self.hidden_projection(h).unsqueeze(1)).tanh())  # (N, L, 1)
        alpha = F.softmax(energy.reshape(energy.shape[0], energy.shape[1]), 1)
        context = (alpha.unsqueeze(2) * features).sum(axis=1)
        state = self.cell(cat([self.embedding(words), context], 1), state)
        return self.output(cat([state[0], context], 1)), state, alpha


class ShowAttendTell(nn.Module):
    def __init__(self, vocab_size, channels=64, hidden_size=128, embedding_dim=32, attention_dim=64):
        super().__init__()
        self.encoder = ConvEncoder(channels)
        self.decoder = AttentionDecoder(vocab_size, channels, hidden_size, embedding_dim, attention_dim)

    def forward(self, images, tokens):
        """Teacher forcing: tokens (N, T) -> logits (T - 1, N, V) predicting tokens[:, 1:]."""
        features = self.encoder(images)
        state, projected = self.decoder.start(features)
        logits = []
        for t in range(tokens.shape[1] - 1):
            step_logits, state, _ = self.decoder.step(tokens[:, t], state, features, projected)
            logits.append(step_logits)
        return stack(logits)


def caption_loss(logits, tokens, pad_id=0):
    """Mean cross-entropy of every word after <start>, <pad> positions left out."""
    targets = np.ascontiguousarray(tokens[:, 1:].T)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=pad_id)


# ---- decoding ------------------------------------------------------------------------------------

def greedy_decode(model, images, vocab, max_len=12):
    """The likeliest word at each step, for a batch: (captions, alphas), alphas (N, steps, L)."""
    model.eval()
    with no_grad():
        features = model.encoder(Tensor(images))
        state, projected = model.decoder.start(features)
        words = np.full(len(images), vocab.start_id, np.int64)
        chosen, alphas = [], []
        for _ in range(max_len):
            logits, state, alpha = model.decoder.step(words, state, features, projected)
            words = logits.numpy().argmax(axis=1)
            chosen.append(words)
            alphas.append(alpha.numpy())
    ids = np.stack(chosen, 1)
    return [vocab.decode(row) for row in ids], np.stack(alphas, 1)


def beam_search(model, image, vocab, beam_width=3, max_len=12):
    """Beam search: the beam_width partial captions of the highest total log-probability are
    kept at each step, those that emit <end> set aside; of these the one of the highest
    log-probability per word wins (the length normalisation of Wu et al. 2016 with alpha = 1).
    image (1, S, S) -> (caption, alphas (words, L))."""
    model.eval()
    with no_grad():
        features = model.encoder(Tensor(image[None]))
        (h, c), projected = model.decoder.start(features)
        beams = [([vocab.start_id], 0.0, [])]  # (ids, log-probability, alphas)
        finished = []
        for _ in range(max_len):
            tiled = [Tensor(np.repeat(a.numpy(), len(beams), 0)) for a in (features, projected)]
            words = np.array([ids[-1] for ids, _, _ in beams])
            logits, (h, c), alpha = model.decoder.step(words, (h, c), *tiled)  # a row per beam
            log_p = F.log_softmax(logits, 1).numpy().astype(np.float64)
            totals = np.array([score for _, score, _ in beams])[:, None] + log_p
            best = np.argsort(totals, axis=None)[::-1][:beam_width]
            kept, rows = [], []
            for flat in best:
                row, word = divmod(int(flat), log_p.shape[1])
                ids, _, maps = beams[row]
                candidate = (ids + [word], float(totals[row, word]), maps + [alpha.numpy()[row]])
                if word == vocab.end_id:
                    finished.append(candidate)
                else:
                    kept.append(candidate)
                    rows.append(row)
            if not kept or len(finished) >= beam_width:
                break
            beams, h, c = kept, Tensor(h.numpy()[rows]), Tensor(c.numpy()[rows])
        # per word: a summed log-probability favours short captions (one digit named of two)
        ids, _, maps = max(finished or beams, key=lambda b: b[1] / (len(b[0]) - 1))
    return vocab.decode(ids[1:]), np.stack(maps)


# ---- scores --------------------------------------------------------------------------------------

def _ngrams(words, n):
    return collections.Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))


def corpus_bleu(references, hypotheses, max_n=4):
    """Corpus BLEU-max_n with one reference per hypothesis (Papineni et al. 2002): the geometric
    mean of the clipped n-gram precisions over the whole corpus times the brevity penalty."""
    if len(references) != len(hypotheses) or not references:
        raise ValueError(f"references and hypotheses: expected equally many, at least one; got "
                         f"{len(references)} and {len(hypotheses)}")
    matches, totals = np.zeros(max_n), np.zeros(max_n)
    ref_length = hyp_length = 0
    for reference, hypothesis in zip(references, hypotheses):
        ref, hyp = reference.split(), hypothesis.split()
        ref_length, hyp_length = ref_length + len(ref), hyp_length + len(hyp)
        for n in range(1, max_n + 1):
            hyp_ngrams, ref_ngrams = _ngrams(hyp, n), _ngrams(ref, n)
            matches[n - 1] += sum(min(count, ref_ngrams[g]) for g, count in hyp_ngrams.items())
            totals[n - 1] += sum(hyp_ngrams.values())
    if np.any(matches == 0):
        return 0.0
    brevity = 1.0 if hyp_length > ref_length else math.exp(1 - ref_length / hyp_length)
    return float(brevity * np.exp(np.mean(np.log(matches / totals))))


def exact_match(references, hypotheses):
    return float(np.mean([r == h for r, h in zip(references, hypotheses)]))


def prior_caption(captions):
    """The caption-prior baseline's answer for every image: the most frequent training caption."""
    return collections.Counter(captions).most_common(1)[0][0]


# ---- training ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CaptioningOptions:
    train_scenes: int = 4000
    test_scenes: int = 500
    epochs: int = 8
    batch_size: int = 32
    lr: float = 2e-3
    clip: float = 5.0
    hidden_size: int = 128
    channels: int = 64
    beam_width: int = 3
    seed: int = 0


def train_captioner(model, images, tokens, options: CaptioningOptions, show_progress=True):
    """Adam over shuffled batches with teacher forcing, gradients clipped; returns the mean
    loss (nats per word) of each epoch and the seconds taken."""
    rng = np.random.default_rng(options.seed)
    optimizer = optim.Adam(model.parameters(), lr=options.lr)
    losses, started = [], time.perf_counter()
    steps_per_epoch = math.ceil(len(images) / options.batch_size)
    bar = progress_bar(options.epochs * steps_per_epoch, "captioning", unit="step", show=show_progress)
    for _ in range(options.epochs):
        model.train()
        order, epoch_losses = rng.permutation(len(images)), []
        for start in range(0, len(images), options.batch_size):
            batch = order[start:start + options.batch_size]
            batch_tokens = tokens[batch]
            batch_tokens = batch_tokens[:, :int((batch_tokens != 0).sum(axis=1).max())]  # trailing pads dropped
            loss = caption_loss(model(Tensor(images[batch]), batch_tokens), batch_tokens)
            optimizer.zero_grad()
            loss.backward()
            optim.clip_grad_norm_(model.parameters(), options.clip)
            optimizer.step()
            epoch_losses.append(loss.item())
            bar.update(1)
            bar.set_postfix(loss=f"{epoch_losses[-1]:.3f}")
        losses.append(float(np.mean(epoch_losses)))
    bar.close()
    return losses, time.perf_counter() - started
