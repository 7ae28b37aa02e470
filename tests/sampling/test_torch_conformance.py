"""interpolate, grid_sample and affine_grid against torch.nn.functional on the argument grids where
fastconv once differed silently: scale factors torch keeps for the source index, dimensions whose
size does not change, align_corners, recompute_scale_factor; forward and input gradient."""
import numpy as np
import pytest

import fastconv.functional as F
from fastconv import ops
from tests.oracle import compare_with_torch

SIZES = [(4, 4), (5, 7), (3, 8), (1, 6)]
SCALES = [1.1, 0.7, 2, 3.3, (1.1, 1.5)]
MODES = [("bilinear", False), ("bilinear", True), ("nearest", None)]


@pytest.mark.parametrize("hw", SIZES)
@pytest.mark.parametrize("scale_factor", SCALES)
@pytest.mark.parametrize("mode,align_corners", MODES)
@pytest.mark.parametrize("recompute_scale_factor", [None, False, True])
def test_interpolate_scale_factor_matches_torch(torch, hw, scale_factor, mode, align_corners,
                                                recompute_scale_factor):
    h, w = hw
    scales = scale_factor if isinstance(scale_factor, tuple) else (scale_factor, scale_factor)
    if min(int(np.floor(h * scales[0])), int(np.floor(w * scales[1]))) < 1:
        pytest.skip("empty output")
    x = np.random.default_rng(h * 10 + w).standard_normal((2, 3, h, w))
    kwargs = dict(scale_factor=scale_factor, mode=mode, align_corners=align_corners,
                  recompute_scale_factor=recompute_scale_factor)
    compare_with_torch(torch, lambda t: F.interpolate(t, **kwargs),
                       lambda t: torch.nn.functional.interpolate(t, **kwargs), [x])


@pytest.mark.parametrize("mode,align_corners", MODES)
def test_interpolate_float32_same_size_matches_torch(torch, mode, align_corners):
    x = np.random.default_rng(1).standard_normal((1, 2, 4, 4)).astype(np.float32)
    kwargs = dict(scale_factor=1.1, mode=mode, align_corners=align_corners)
    compare_with_torch(torch, lambda t: F.interpolate(t, **kwargs),
                       lambda t: torch.nn.functional.interpolate(t, **kwargs), [x], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kwargs,name", [
    (dict(size=2**63), "size"),
    (dict(scale_factor=1e30), "scale_factor"), (dict(scale_factor=1e10), "scale_factor"),
])
def test_interpolate_huge_size_raises_naming_argument(kwargs, name):
    with pytest.raises(ValueError, match=r"^\w+: "):
        ops.interpolate(np.zeros((1, 2, 5, 5)), **kwargs)


@pytest.mark.parametrize("size", [(1, 1, 2**40, 2**40), (1, 1, 2**63, 1), (1, 1, 2**31 - 1, 2**31 - 1)])
def test_affine_grid_huge_size_raises_naming_argument(size):
    with pytest.raises(ValueError, match=r"^size: "):
        ops.affine_grid(np.zeros((1, 2, 3)), size)


@pytest.mark.parametrize("name,kwargs", [
    ("upsample", dict(scale_factor=2)), ("upsample", dict(size=(5, 9), mode="bilinear", align_corners=False)),
    ("upsample_nearest", dict(size=7)), ("upsample_nearest", dict(scale_factor=1.5)),
    ("upsample_bilinear", dict(size=(5, 9))), ("upsample_bilinear", dict(scale_factor=2)),
])
def test_upsample_aliases_match_torch(torch, name, kwargs):
    import warnings
    x = np.random.default_rng(5).standard_normal((2, 3, 4, 6))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns that its aliases are deprecated
        compare_with_torch(torch, lambda t: getattr(F, name)(t, **kwargs),
                           lambda t: getattr(torch.nn.functional, name)(t, **kwargs), [x])


GRID_MODES = ["bilinear", "nearest"]
PADDINGS = ["zeros", "border", "reflection"]
HOSTILE_COORDINATES = [np.nan, np.inf, -np.inf, 1e30, -1e30, 3e9, -3e9]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", GRID_MODES)
@pytest.mark.parametrize("padding_mode", PADDINGS)
@pytest.mark.parametrize("align_corners", [False, True])
def test_grid_sample_non_finite_and_huge_coordinates_match_torch(torch, dtype, mode, padding_mode, align_corners):
    # Zeros padding gives NaN where a coordinate is NaN or infinite (its bilinear weights are);
    # border and reflection clamp such coordinates onto the plane, NaN onto 0.
    x = np.random.default_rng(3).standard_normal((1, 2, 4, 5)).astype(dtype)
    column = np.array(HOSTILE_COORDINATES + [0.3])
    grid = np.stack([np.stack([column, np.full_like(column, 0.2)], -1),
                     np.stack([np.full_like(column, -0.4), column], -1),
                     np.stack([column, column[::-1]], -1)])[None].astype(dtype)
    kwargs = dict(mode=mode, padding_mode=padding_mode, align_corners=align_corners)
    expected = torch.nn.functional.grid_sample(torch.tensor(x), torch.tensor(grid), **kwargs).numpy()
    np.testing.assert_allclose(ops.grid_sample(x, grid, **kwargs), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("mode", GRID_MODES)
@pytest.mark.parametrize("padding_mode", PADDINGS)
@pytest.mark.parametrize("align_corners", [False, True])
def test_grid_sample_reads_nan_pixels_only_where_torch_does(torch, mode, padding_mode, align_corners):
    # A corner outside the plane reads 0, never the in-plane pixel a kernel might reach instead;
    # forward, input and grid gradients.
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 2, 4, 5))
    x[0, 0, 0, 0] = x[1, 1, 3, 4] = np.nan
    x[0, 1, 2, 2] = np.inf
    grid = rng.uniform(-1.4, 1.4, (2, 3, 4, 2))
    grid[0, 0, 0] = [-1.19, 0.1]  # a sample straddling the left edge beside the NaN corner
    kwargs = dict(mode=mode, padding_mode=padding_mode, align_corners=align_corners)
    compare_with_torch(torch, lambda a, g: F.grid_sample(a, g, **kwargs),
                       lambda a, g: torch.nn.functional.grid_sample(a, g, **kwargs), [x, grid])
