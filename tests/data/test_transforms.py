"""Properties of the batch augmentations: shapes, involutions, identities, seeded determinism."""
import numpy as np
import pytest

from fastconv.data import (ColorJitter, Compose, Normalize, PCAColorJitter, RandomCrop, RandomHorizontalFlip,
                           RandomResizedCrop)
from fastconv.data.transforms import resize_boxes


@pytest.fixture
def images(rng):
    return rng.random((6, 3, 10, 12)).astype(np.float32)


def seeded(transform, x, seed=0):
    return transform(x, np.random.default_rng(seed))


def test_flip_all_is_an_involution_and_flips_the_width_axis(images):
    flip = RandomHorizontalFlip(p=1.0)
    np.testing.assert_array_equal(seeded(flip, images), images[..., ::-1])
    np.testing.assert_array_equal(seeded(flip, seeded(flip, images)), images)


def test_flip_leaves_the_input_untouched_and_flips_some_images(images):
    before = images.copy()
    out = seeded(RandomHorizontalFlip(), images, seed=1)
    np.testing.assert_array_equal(images, before)
    flipped = [np.array_equal(o, x[..., ::-1]) for o, x in zip(out, images)]
    kept = [np.array_equal(o, x) for o, x in zip(out, images)]
    assert all(f or k for f, k in zip(flipped, kept)) and any(flipped) and any(kept)


def test_crop_shape_and_each_crop_is_a_window_of_the_padded_image(images):
    out = seeded(RandomCrop(8, padding=2), images)
    assert out.shape == (6, 3, 8, 8)
    padded = np.pad(images, ((0, 0), (0, 0), (2, 2), (2, 2)))
    for crop, source in zip(out, padded):
        windows = np.lib.stride_tricks.sliding_window_view(source, (8, 8), axis=(1, 2))
        assert any(np.array_equal(crop, windows[:, i, j]) for i in range(7) for j in range(9))


def test_crop_larger_than_padded_image_is_refused(images):
    with pytest.raises(ValueError, match="larger than the padded image"):
        seeded(RandomCrop(20), images)


def test_resize_of_the_whole_image_to_its_own_size_is_the_identity(images):
    boxes = np.tile([0.0, 0.0, 10.0, 12.0], (6, 1))
    np.testing.assert_allclose(resize_boxes(images, boxes, (10, 12)), images, atol=1e-6)


def test_resize_matches_torch_bilinear_on_the_whole_image(images, torch):
    boxes = np.tile([0.0, 0.0, 10.0, 12.0], (6, 1))
    expected = torch.nn.functional.interpolate(torch.from_numpy(images), size=(5, 6), mode="bilinear",
                                               align_corners=False)
    np.testing.assert_allclose(resize_boxes(images, boxes, (5, 6)), expected.numpy(), atol=1e-5)


def test_random_resized_crop_output_shape_and_range(images):
    out = seeded(RandomResizedCrop(7, scale=(0.3, 1.0)), images)
    assert out.shape == (6, 3, 7, 7) and out.dtype == images.dtype
    assert images.min() <= out.min() and out.max() <= images.max()


def test_color_jitter_keeps_range_and_zero_amounts_are_the_identity(images):
    out = seeded(ColorJitter(0.5, 0.5, 0.5), images)
    assert out.shape == images.shape and 0 <= out.min() and out.max() <= 1
    np.testing.assert_allclose(seeded(ColorJitter(), images), images)


def test_brightness_scales_each_image_by_one_factor(images):
    out = seeded(ColorJitter(brightness=0.2), images * 0.5)
    ratios = out / (images * 0.5)
    np.testing.assert_allclose(ratios, ratios[:, :1, :1, :1] * np.ones_like(ratios), rtol=1e-5)


def test_saturation_needs_rgb():
    with pytest.raises(ValueError, match="RGB"):
        seeded(ColorJitter(saturation=0.3), np.zeros((2, 1, 4, 4)))


def test_pca_fit_matches_the_rgb_covariance(images):
    jitter = PCAColorJitter.fit(images)
    pixels = images.transpose(0, 2, 3, 1).reshape(-1, 3).astype(np.float64)
    covariance = (jitter.eigenvectors * jitter.eigenvalues) @ jitter.eigenvectors.T
    np.testing.assert_allclose(covariance, np.cov(pixels, rowvar=False), atol=1e-12)


def test_pca_jitter_shifts_each_image_by_one_colour_along_the_principal_components(images):
    jitter = PCAColorJitter.fit(images, sigma=0.5)
    shift = (seeded(jitter, images) - images).astype(np.float64)
    # Spatial structure is kept: the offset is constant over each image's pixels.
    np.testing.assert_allclose(shift, shift[:, :, :1, :1] * np.ones_like(shift), atol=1e-6)
    # Each offset is sum_i alpha_i lambda_i p_i, so projecting on p_i / lambda_i recovers alpha.
    alpha = shift[:, :, 0, 0] @ jitter.eigenvectors / jitter.eigenvalues
    np.testing.assert_allclose(alpha, np.random.default_rng(0).normal(0, 0.5, size=(6, 3)), rtol=1e-3, atol=1e-3)


def test_pca_jitter_offsets_average_to_zero():
    x = np.zeros((4000, 3, 1, 1))
    jitter = PCAColorJitter(np.array([0.2, 0.5, 1.0]), np.eye(3), sigma=0.1)
    np.testing.assert_allclose(seeded(jitter, x).mean(axis=0).ravel(), 0, atol=0.006)


def test_normalize_per_channel(images):
    out = Normalize([0.5, 0.4, 0.3], [0.1, 0.2, 0.3])(images)
    np.testing.assert_allclose(out[:, 1], (images[:, 1] - 0.4) / 0.2, rtol=1e-5)
    assert out.dtype == images.dtype


def test_compose_is_deterministic_given_the_seed(images):
    pipeline = Compose([RandomResizedCrop(8), RandomHorizontalFlip(), RandomCrop(8, padding=1),
                        ColorJitter(0.3, 0.3, 0.3), PCAColorJitter.fit(images)])
    np.testing.assert_array_equal(seeded(pipeline, images, 5), seeded(pipeline, images, 5))
    assert not np.array_equal(seeded(pipeline, images, 5), seeded(pipeline, images, 6))
