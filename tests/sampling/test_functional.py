"""functional.grid_sample, affine_grid and interpolate: gradcheck in float64 and PyTorch as the
oracle for the forward and every gradient; then the argument rules."""
import numpy as np
import pytest

import fastconv.functional as F
from fastconv import Tensor
from tests.functional_cases import gradcheck_test, torch_functional, torch_test
from tests.oracle import compare_with_torch

# name: (ours, torch's, input shapes)
CASES = {
    "grid_sample": (F.grid_sample,  # align_corners=None is False in both; torch warns unless it is given
                    lambda x, g: torch_functional("grid_sample")(x, g, align_corners=False),
                    [(2, 2, 4, 5), (2, 3, 2, 2)]),
    "grid_sample_border_align_corners": (
        lambda x, g: F.grid_sample(x, g, padding_mode="border", align_corners=True),
        lambda x, g: torch_functional("grid_sample")(x, g, padding_mode="border", align_corners=True),
        [(1, 2, 4, 5), (1, 3, 4, 2)]),
    "grid_sample_reflection": (
        lambda x, g: F.grid_sample(x, g, padding_mode="reflection"),
        lambda x, g: torch_functional("grid_sample")(x, g, padding_mode="reflection", align_corners=False),
        [(1, 2, 4, 5), (1, 3, 4, 2)]),
    "grid_sample_nearest": (
        lambda x, g: F.grid_sample(x, g, mode="nearest"),
        lambda x, g: torch_functional("grid_sample")(x, g, mode="nearest", align_corners=False),
        [(1, 2, 4, 5), (1, 3, 4, 2)]),
    "affine_grid": (lambda t: F.affine_grid(t, (2, 3, 4, 5)),
                    lambda t: torch_functional("affine_grid")(t, (2, 3, 4, 5), align_corners=False), [(2, 2, 3)]),
    "affine_grid_align_corners": (lambda t: F.affine_grid(t, (1, 1, 3, 2), align_corners=True),
                                  lambda t: torch_functional("affine_grid")(t, (1, 1, 3, 2), align_corners=True),
                                  [(1, 2, 3)]),
    "interpolate_bilinear_scale": (
        lambda x: F.interpolate(x, scale_factor=1.7, mode="bilinear"),
        lambda x: torch_functional("interpolate")(x, scale_factor=1.7, mode="bilinear"), [(2, 2, 3, 4)]),
    "interpolate_bilinear_align_corners_size": (
        lambda x: F.interpolate(x, size=(5, 3), mode="bilinear", align_corners=True),
        lambda x: torch_functional("interpolate")(x, size=(5, 3), mode="bilinear", align_corners=True),
        [(1, 2, 3, 4)]),
    "interpolate_nearest": (lambda x: F.interpolate(x, scale_factor=(2, 1.5)),
                            lambda x: torch_functional("interpolate")(x, scale_factor=(2, 1.5)), [(1, 2, 3, 4)]),
    "interpolate_nearest_downsample_size": (lambda x: F.interpolate(x, size=(2, 3)),
                                            lambda x: torch_functional("interpolate")(x, size=(2, 3)),
                                            [(1, 2, 5, 7)]),
}

test_gradcheck = gradcheck_test(CASES)
test_matches_torch = torch_test(CASES)


def test_float32_sampling_ops_match_torch(rng, torch):
    def net(functional):
        def run(x, theta, w):
            grid = functional.affine_grid(theta, (2, 3, 5, 6), align_corners=False)
            sampled = functional.grid_sample(x, grid, align_corners=False)
            up = functional.interpolate(sampled, scale_factor=2, mode="bilinear", align_corners=False)
            return functional.conv_transpose2d(up, w, stride=2, padding=1)
        return run
    arrays = [rng.standard_normal(s).astype(np.float32) for s in [(2, 3, 4, 4), (2, 2, 3), (3, 2, 3, 3)]]
    compare_with_torch(torch, net(F), net(torch.nn.functional), arrays, rtol=1e-4, atol=1e-5)


def test_sampling_argument_errors():
    x = Tensor(np.zeros((1, 2, 4, 4)))
    with pytest.raises(ValueError, match="padding_mode"):
        F.grid_sample(x, np.zeros((1, 2, 2, 2)), padding_mode="wrap")
    with pytest.raises(ValueError, match="either size or scale_factor"):
        F.interpolate(x, size=3, scale_factor=2)
    with pytest.raises(ValueError, match="align_corners"):
        F.interpolate(x, size=3, align_corners=True)
