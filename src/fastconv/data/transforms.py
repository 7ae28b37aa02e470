"""Batch augmentations on NCHW float images in [0, 1], each vectorised over the whole batch.

Every transform is called as `t(x, rng)` with a numpy Generator, so a seeded DataLoader makes
the whole augmentation stream reproducible. Random parameters are drawn per image.
"""
import numpy as np

# ITU-R 601-2 luma, the weights torchvision's rgb_to_grayscale uses.
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])


def _per_image(values):
    """(N,) parameters shaped to broadcast over (N, C, H, W)."""
    return values[:, None, None, None]


class Compose:
    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, x, rng):
        for transform in self.transforms:
            x = transform(x, rng)
        return x


class Normalize:
    """(x - mean) / std per channel; deterministic, the rng is unused."""

    def __init__(self, mean, std):
        self.mean = np.asarray(mean, dtype=np.float64)[:, None, None]
        self.std = np.asarray(std, dtype=np.float64)[:, None, None]

    def __call__(self, x, rng=None):
        return ((x - self.mean) / self.std).astype(x.dtype, copy=False)


class RandomHorizontalFlip:
    def __init__(self, p=0.5):
        self.p = p

    def __call__(self, x, rng):
        flip = rng.random(len(x)) < self.p
        out = x.copy()
        out[flip] = x[flip, ..., ::-1]
        return out


class RandomCrop:
    """A size x size window at a random offset of the image zero-padded by `padding` on each side."""

    def __init__(self, size, padding=0):
        self.size = (size, size) if np.isscalar(size) else tuple(size)
        self.padding = padding

    def __call__(self, x, rng):
        p = self.padding
        padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        h, w = self.size
        if h > padded.shape[2] or w > padded.shape[3]:
            raise ValueError(f"RandomCrop: crop {self.size} is larger than the padded image {padded.shape[2:]}")
        n = len(x)
        top = rng.integers(0, padded.shape[2] - h + 1, size=n)
        left = rng.integers(0, padded.shape[3] - w + 1, size=n)
        windows = np.lib.stride_tricks.sliding_window_view(padded, (h, w), axis=(2, 3))
        # windows is (N, C, H', W', h, w); picking (n, top[n], left[n]) per image gives (N, C, h, w).
        return np.ascontiguousarray(windows[np.arange(n), :, top, left])


def _bilinear_axis_weights(start, extent, out_size, in_size):
    """Source indices and weights for resampling [start, start+extent) onto out_size pixels.

    start, extent: (N,) in input pixels. Pixel centres are matched (align_corners=False).
    Returns lower index (N, out), upper index (N, out) and the upper weight (N, out).
    """
    centres = start[:, None] + (np.arange(out_size) + 0.5) * (extent / out_size)[:, None] - 0.5
    centres = np.clip(centres, 0, in_size - 1)
    lower = np.floor(centres).astype(np.int64)
    upper = np.minimum(lower + 1, in_size - 1)
    return lower, upper, centres - lower


def resize_boxes(x, boxes, size):
    """Bilinearly resamples box (top, left, height, width) of each image, boxes (N, 4) float, to size.

    The boxes are axis-aligned, so the resampling is separable: rows first, then columns.
    """
    n, _, in_h, in_w = x.shape
    out_h, out_w = size
    y0, y1, wy = _bilinear_axis_weights(boxes[:, 0], boxes[:, 2], out_h, in_h)
    x0, x1, wx = _bilinear_axis_weights(boxes[:, 1], boxes[:, 3], out_w, in_w)
    nhwc = x.transpose(0, 2, 3, 1)
    images = np.arange(n)[:, None]
    rows = nhwc[images, y0] * (1 - wy)[..., None, None] + nhwc[images, y1] * wy[..., None, None]
    images, out_rows = images[:, :, None], np.arange(out_h)[None, :, None]
    cols = (rows[images, out_rows, x0[:, None, :]] * (1 - wx)[:, None, :, None]
            + rows[images, out_rows, x1[:, None, :]] * wx[:, None, :, None])
    return np.ascontiguousarray(cols.transpose(0, 3, 1, 2), dtype=x.dtype)


class RandomResizedCrop:
    """A box of random area fraction `scale` and aspect `ratio`, resized to `size` (torchvision's names).

    torchvision retries a box until it fits; here the box sides are clipped to the image instead,
    which keeps one draw per image and the whole batch vectorised.
    """

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
        self.size = (size, size) if np.isscalar(size) else tuple(size)
        self.scale, self.ratio = scale, ratio

    def __call__(self, x, rng):
        n, _, h, w = x.shape
        area = h * w * rng.uniform(*self.scale, size=n)
        aspect = np.exp(rng.uniform(np.log(self.ratio[0]), np.log(self.ratio[1]), size=n))
        box_w = np.minimum(np.sqrt(area * aspect), w)
        box_h = np.minimum(np.sqrt(area / aspect), h)
        top = rng.uniform(0, 1, size=n) * (h - box_h)
        left = rng.uniform(0, 1, size=n) * (w - box_w)
        return resize_boxes(x, np.stack([top, left, box_h, box_w], axis=1), self.size)


class ColorJitter:
    """Random brightness, contrast and saturation factors in [1 - v, 1 + v], applied in that order.

    Each blends the image with a reference as torchvision does: black (brightness), the image's
    mean grey (contrast), the pixel's grey (saturation); the result is clipped to [0, 1].
    """

    def __init__(self, brightness=0.0, contrast=0.0, saturation=0.0):
        self.brightness, self.contrast, self.saturation = brightness, contrast, saturation

    @staticmethod
    def _factors(amount, n, rng):
        return _per_image(rng.uniform(max(0.0, 1 - amount), 1 + amount, size=n))

    def __call__(self, x, rng):
        n, channels = x.shape[:2]
        if self.saturation and channels != 3:
            raise ValueError(f"ColorJitter: saturation needs RGB images, got {channels} channels")
        out = x.astype(np.float64)
        if self.brightness:
            out = out * self._factors(self.brightness, n, rng)
        if self.contrast:
            mean = (_grey(out) if channels == 3 else out).mean(axis=(1, 2, 3), keepdims=True)
            out = mean + (out - mean) * self._factors(self.contrast, n, rng)
        if self.saturation:
            grey = _grey(out)
            out = grey + (out - grey) * self._factors(self.saturation, n, rng)
        return np.clip(out, 0, 1).astype(x.dtype)


def _grey(rgb):
    """(N, 3, H, W) -> (N, 1, H, W) luma."""
    return np.einsum("nchw,c->nhw", rgb, LUMA_WEIGHTS)[:, None]


class PCAColorJitter:
    """AlexNet's lighting noise (Krizhevsky et al. 2012, section 4.1).

    Each image gets the same RGB offset at every pixel: sum_i alpha_i * lambda_i * p_i, where
    p_i, lambda_i are the eigenvectors and eigenvalues of the training set's 3x3 RGB covariance
    and alpha_i ~ N(0, sigma) is drawn once per image.
    """

    def __init__(self, eigenvalues, eigenvectors, sigma=0.1):
        self.eigenvalues = np.asarray(eigenvalues, dtype=np.float64)
        self.eigenvectors = np.asarray(eigenvectors, dtype=np.float64)
        self.sigma = sigma

    @classmethod
    def fit(cls, images, sigma=0.1):
        """Eigen-decomposition of the RGB covariance over every pixel of images (N, 3, H, W)."""
        pixels = np.moveaxis(np.asarray(images, dtype=np.float64), 1, -1).reshape(-1, images.shape[1])
        eigenvalues, eigenvectors = np.linalg.eigh(np.cov(pixels, rowvar=False))
        return cls(eigenvalues, eigenvectors, sigma)

    def __call__(self, x, rng):
        alpha = rng.normal(0.0, self.sigma, size=(len(x), len(self.eigenvalues)))
        offsets = (alpha * self.eigenvalues) @ self.eigenvectors.T
        return (x + offsets[:, :, None, None]).astype(x.dtype)
