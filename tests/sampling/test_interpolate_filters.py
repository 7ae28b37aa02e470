"""interpolate's filter modes, bicubic and antialias=True (bilinear, bicubic): against a float64
reference built from the filters' definitions (tests/reference.py), their gradients numerically,
and against torch.nn.functional.interpolate where torch computes what it defines (two cases where
it does not are named below)."""
import numpy as np
import pytest

from fastconv import functional as F
from fastconv import ops
from fastconv.autograd import Tensor
from fastconv.backend import to_device, to_host
from tests.reference import filtered_interpolate_reference, numeric_gradient, resampling_matrix
from tests.sampling.test_interpolate import RESIZES as BASE_RESIZES
from tests.sampling.test_interpolate import output_and_scales

# interpolate's resizes, plus downsampling by up to 5 (antialiased windows of 11 and 21 taps),
# one axis unchanged, one pixel out.
RESIZES = BASE_RESIZES + [
    (16, 11, dict(scale_factor=0.35)),
    (25, 6, dict(size=(5, 6))),
    (7, 9, dict(scale_factor=0.3, recompute_scale_factor=True)),
    (6, 5, dict(size=(1, 1))),
]
# (mode, antialias, align_corners)
FILTERS = [("bicubic", False, None), ("bicubic", False, True), ("bilinear", True, None),
           ("bilinear", True, True), ("bicubic", True, False)]


def _reference(x, mode, antialias, align_corners, **kwargs):
    out, scales = output_and_scales(*x.shape[2:], **kwargs)
    return filtered_interpolate_reference(x, out, mode, bool(align_corners), scales, antialias)


@pytest.mark.parametrize("resize", RESIZES)
@pytest.mark.parametrize("mode, antialias, align_corners", FILTERS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_filters_match_the_reference(device, rng, resize, mode, antialias, align_corners, dtype):
    h, w, kwargs = resize
    x = rng.standard_normal((2, 3, h, w)).astype(dtype)
    y = to_host(ops.interpolate(to_device(x, device), mode=mode, antialias=antialias, align_corners=align_corners,
                                **kwargs))
    ref = _reference(x, mode, antialias, align_corners, **kwargs)
    assert y.dtype == dtype and y.shape == ref.shape
    tol = 2e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, ref, rtol=tol, atol=tol)


@pytest.mark.parametrize("mode, antialias, align_corners", FILTERS)
def test_filter_gradients_match_the_numeric_gradient(device, rng, mode, antialias, align_corners):
    x = rng.standard_normal((1, 2, 9, 6))
    for kwargs in (dict(size=(4, 11)), dict(scale_factor=1.5), dict(scale_factor=(0.4, 1.1))):
        args = dict(mode=mode, antialias=antialias, align_corners=align_corners, **kwargs)
        gy = rng.standard_normal(ops.interpolate(x, **args).shape)
        dx = to_host(ops.interpolate_backward(to_device(gy, device), x.shape, **args))
        np.testing.assert_allclose(dx, numeric_gradient(lambda xx: ops.interpolate(xx, **args), x, gy),
                                   rtol=1e-7, atol=1e-8)


def test_functional_interpolate_differentiates_the_filters(rng):
    x = Tensor(rng.standard_normal((1, 1, 8, 8)), requires_grad=True)
    y = F.interpolate(x, size=(3, 5), mode="bicubic", antialias=True)
    (y * y).sum().backward()
    gy = 2 * y.numpy()
    np.testing.assert_allclose(x.grad.numpy(), ops.interpolate_backward(gy, x.shape, size=(3, 5), mode="bicubic",
                                                                        antialias=True))


def _torch_computes_it(h, w, antialias, kwargs, backward):
    """torch 2.x's CPU antialiased kernels differ from their own definition in two cases: the
    forward when the output is one column wide and more than one row high (every output row gets
    the first row's value), and the backward along an axis whose size does not change but that
    has a scale factor (the forward copies that axis, the backward resamples it)."""
    if not antialias:
        return True
    (oh, ow), scales = output_and_scales(h, w, **kwargs)
    if ow == 1 and oh > 1:
        return False
    return not (backward and any(s > 0 and n == m for s, n, m in zip(scales, (h, w), (oh, ow))))


@pytest.mark.parametrize("resize", RESIZES)
@pytest.mark.parametrize("mode, antialias, align_corners", FILTERS)
def test_filters_match_torch(torch, rng, resize, mode, antialias, align_corners):
    h, w, kwargs = resize
    args = dict(mode=mode, antialias=antialias, align_corners=align_corners, **kwargs)
    x = rng.standard_normal((2, 3, h, w))
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.interpolate(tx, **args)
    gy = rng.standard_normal(ty.shape)
    ty.backward(torch.tensor(gy))
    if _torch_computes_it(h, w, antialias, kwargs, backward=False):
        np.testing.assert_allclose(ops.interpolate(x, **args), ty.detach().numpy(), atol=1e-12)
    if _torch_computes_it(h, w, antialias, kwargs, backward=True):
        np.testing.assert_allclose(ops.interpolate_backward(gy, x.shape, **args), tx.grad.numpy(), atol=1e-12)


def test_torch_float32_bicubic_and_antialias(torch, rng):
    x = rng.standard_normal((2, 4, 31, 23)).astype(np.float32)
    for kwargs in (dict(scale_factor=2.3, mode="bicubic"), dict(size=(8, 6), mode="bilinear", antialias=True),
                   dict(size=(12, 40), mode="bicubic", antialias=True, align_corners=True)):
        ref = torch.nn.functional.interpolate(torch.from_numpy(x), **kwargs).numpy()
        # each side is ~1e-5 from the float64 answer: cubic weights have negative lobes
        np.testing.assert_allclose(ops.interpolate(x, **kwargs), ref, rtol=1e-5, atol=3e-5)


def test_nan_reaches_the_outputs_whose_window_reads_it(torch):
    """As in torch: bicubic reads four pixels even where a weight is 0; an antialiased window only
    the pixels inside it."""
    x = np.zeros((1, 1, 6, 6))
    x[0, 0, 2, 2] = np.nan
    for kwargs in (dict(size=(6, 6), mode="bicubic"), dict(size=(6, 12), mode="bicubic"),
                   dict(size=(6, 12), mode="bilinear", antialias=True), dict(size=(3, 3), mode="bicubic",
                                                                           antialias=True)):
        ref = torch.nn.functional.interpolate(torch.tensor(x), **kwargs).numpy()
        np.testing.assert_array_equal(np.isnan(ops.interpolate(x, **kwargs)), np.isnan(ref))


@pytest.mark.parametrize("kwargs, match", [
    (dict(mode="nearest", antialias=True), "antialias: is restricted to the modes 'bilinear' and 'bicubic'"),
    (dict(mode="nearest", align_corners=True), "align_corners: can only be set with the interpolating modes"),
    (dict(mode="linear"), "mode: expected 'nearest', 'nearest-exact', 'bilinear', 'bicubic' or 'area'"),
])
def test_bad_filter_arguments_raise_naming_them(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ops.interpolate(np.zeros((1, 1, 4, 4)), size=(2, 2), **kwargs)


def test_a_tall_thin_resize_keeps_its_memory_small():
    """The kernels filter along the height first, into one row of scratch: a 100,000 x 1 column
    resized to 1 x 100,000 needs no 10^10-element intermediate."""
    n = 100_000
    x = np.arange(n, dtype=np.float64).reshape(1, 1, n, 1)
    y = ops.interpolate(x, size=(1, n), mode="bilinear", antialias=True)
    np.testing.assert_allclose(y, np.full((1, 1, 1, n), x.mean()), rtol=1e-9)  # a symmetric window's mean
    dx = ops.interpolate_backward(np.ones_like(y), x.shape, size=(1, n), mode="bilinear", antialias=True)
    weights = resampling_matrix(n, 1, "bilinear", antialias=True)[0]
    np.testing.assert_allclose(dx[0, 0, :, 0], n * weights, rtol=1e-9)
