"""Real cell nuclei with instance masks: the 512x512 fluorescence microscopy image and its
hand-drawn instance labels that the `stardist` package ships (stardist.data.test_image_nuclei_2d:
an image of the 2018 Data Science Bowl, Caicedo et al. 2019, Nature Methods 16), read with
`tifffile`.

Only the two .tif files are read from the installed package, so `pip install --no-deps stardist
tifffile` suffices (stardist's own dependencies, TensorFlow among them, are not needed).

nuclei_tiles() cuts the image into detection/segmentation samples: the left three quarters
(columns 0-383) give training tiles, random crops with random flips and quarter turns; the right
quarter (columns 384-511) gives the held-out tiles, a fixed grid. A nucleus cut by a tile's edge
keeps the part inside the tile, unless that part is smaller than min_area pixels.
"""
import importlib.util
import os
from dataclasses import dataclass

import numpy as np

TRAIN_COLUMNS = 384  # columns [0, 384) train, [384, 512) test
STARDIST_FILES = ("img2d.tif", "mask2d.tif")


@dataclass(frozen=True)
class NucleiTiles:
    """N tiles of T x T pixels, one class (label 1 = nucleus), in the DigitScenes layout.

    images (N, 1, T, T) float32 in [0, 1]; boxes N arrays (K_i, 4) float32 [x1, y1, x2, y2]
    (x2, y2 exclusive pixel edges); labels N arrays (K_i,) int64, all 1; masks N arrays
    (K_i, T, T) bool; source: where the image came from."""
    images: np.ndarray
    boxes: list
    labels: list
    masks: list
    source: str

    def __len__(self):
        return len(self.images)


def _stardist_image_folder():
    spec = importlib.util.find_spec("stardist")  # finds the package without importing it (nor TensorFlow)
    missing = "the nuclei image ships with the PyPI package stardist and is read with tifffile: " \
              "pip install --no-deps stardist tifffile"
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(missing)
    if importlib.util.find_spec("tifffile") is None:
        raise ModuleNotFoundError(missing)
    folder = os.path.join(spec.submodule_search_locations[0], "data", "images")
    for name in STARDIST_FILES:
        if not os.path.isfile(os.path.join(folder, name)):
            raise FileNotFoundError(f"{os.path.join(folder, name)}: not found in the installed stardist; "
                                    f"reinstall it (pip install --no-deps --force-reinstall stardist)")
    return folder


def load_nuclei():
    """(image (512, 512) float32 in [0, 1], instance labels (512, 512) int64: 0 background,
    k > 0 the k-th nucleus)."""
    folder = _stardist_image_folder()  # first: names both packages when either is missing
    import tifffile
    image = tifffile.imread(os.path.join(folder, STARDIST_FILES[0])).astype(np.float32)
    labels = tifffile.imread(os.path.join(folder, STARDIST_FILES[1])).astype(np.int64)
    return image / max(float(image.max()), 1.0), labels


def _instances(label_tile, min_area):
    """Boxes, labels and masks of the nuclei in a tile of instance labels."""
    ids, counts = np.unique(label_tile[label_tile > 0], return_counts=True)
    masks = np.stack([label_tile == i for i in ids[counts >= min_area]]) if (counts >= min_area).any() else \
        np.zeros((0,) + label_tile.shape, bool)
    boxes = np.zeros((len(masks), 4), np.float32)
    for k, mask in enumerate(masks):
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        boxes[k] = [cols[0], rows[0], cols[-1] + 1, rows[-1] + 1]
    return boxes, np.ones(len(masks), np.int64), masks


def nuclei_tiles(split: str, count: int = 400, tile: int = 64, seed: int = 0, min_area: int = 16) -> NucleiTiles:
    """"train": `count` random tile x tile crops of the left three quarters, each randomly
    flipped and turned; "test": the right quarter as a grid of tiles (count is ignored)."""
    if split not in ("train", "test"):
        raise ValueError(f"split: expected 'train' or 'test', got {split!r}")
    if not 16 <= tile <= 128:
        raise ValueError(f"tile: expected a side in [16, 128], got {tile}")
    image, labels = load_nuclei()
    if split == "train":
        rng = np.random.default_rng(seed)
        corners = [(rng.integers(0, image.shape[0] - tile + 1), rng.integers(0, TRAIN_COLUMNS - tile + 1))
                   for _ in range(count)]
        turns = rng.integers(0, 8, count)
    else:
        corners = [(y, x) for y in range(0, image.shape[0] - tile + 1, tile)
                   for x in range(TRAIN_COLUMNS, image.shape[1] - tile + 1, tile)]
        turns = np.zeros(len(corners), np.int64)
    images, boxes, classes, masks = [], [], [], []
    for (y, x), turn in zip(corners, turns):
        crop, label_crop = image[y:y + tile, x:x + tile], labels[y:y + tile, x:x + tile]
        crop, label_crop = _orient(crop, turn), _orient(label_crop, turn)
        b, c, m = _instances(label_crop, min_area)
        images.append(crop[None])
        boxes.append(b)
        classes.append(c)
        masks.append(m)
    source = "stardist's nuclei image (2018 Data Science Bowl), " + \
             ("columns 0-383" if split == "train" else "columns 384-511, held out")
    return NucleiTiles(np.ascontiguousarray(np.stack(images), np.float32), boxes, classes, masks, source)


def _orient(array, turn):
    """One of the 8 symmetries of the square: `turn % 4` quarter turns, mirrored when turn >= 4."""
    array = np.rot90(array, turn % 4)
    return np.ascontiguousarray(array[:, ::-1] if turn >= 4 else array)
