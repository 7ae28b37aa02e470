import numpy as np
import pytest

from fastconv import _C, ops
from fastconv.backend import DeviceError, to_device, to_host
from tests.reference import filtered_interpolate_reference, interpolate_reference, numeric_gradient

# (input H, W, keyword arguments): sizes up and down, scale factors that do not divide, pairs.
RESIZES = [
    (5, 7, dict(size=(9, 4))),
    (6, 6, dict(size=13)),
    (1, 4, dict(size=(3, 1))),
    (8, 8, dict(scale_factor=2)),
    (7, 5, dict(scale_factor=1.7)),
    (9, 10, dict(scale_factor=(0.6, 2.3))),
    (10, 11, dict(scale_factor=0.35)),
    (7, 5, dict(scale_factor=1.7, recompute_scale_factor=True)),
    (4, 6, dict(scale_factor=3.0)),
    (3, 19, dict(scale_factor=2)),  # rows of 38 outputs: whole vectors of every ISA and a tail
]
MODES = [("bilinear", None), ("bilinear", False), ("bilinear", True), ("nearest", None)]


def output_and_scales(h, w, size=None, scale_factor=None, recompute_scale_factor=None):
    """torch's output size and the scales its source rules use (0: input size / output size)."""
    if size is not None:
        return ((size, size) if isinstance(size, int) else size), (0.0, 0.0)
    scales = scale_factor if isinstance(scale_factor, tuple) else (scale_factor, scale_factor)
    out = (int(np.floor(h * scales[0])), int(np.floor(w * scales[1])))
    return out, ((0.0, 0.0) if recompute_scale_factor else scales)


def _reference(x, mode, align_corners, **kwargs):
    """Output size and scales by torch's rules, then the reference."""
    out, scales = output_and_scales(*x.shape[2:], **kwargs)
    return interpolate_reference(x, out, mode, bool(align_corners), scales)


@pytest.mark.parametrize("resize", RESIZES)
@pytest.mark.parametrize("mode,align_corners", MODES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_interpolate_matches_reference(device, isa, rng, resize, mode, align_corners, dtype):
    h, w, kwargs = resize
    x = rng.standard_normal((2, 3, h, w)).astype(dtype)
    y = to_host(ops.interpolate(to_device(x, device), mode=mode, align_corners=align_corners, **kwargs))
    ref = _reference(x, mode, align_corners, **kwargs)
    assert y.dtype == dtype and y.shape == ref.shape
    tol = 1e-5 if dtype == np.float32 else 1e-13  # float32 source coordinates: ~1 ulp of W
    np.testing.assert_allclose(y, ref, rtol=tol, atol=tol)


@pytest.mark.parametrize("resize", RESIZES)
@pytest.mark.parametrize("mode,align_corners", MODES)
def test_interpolate_against_torch(torch, device, rng, resize, mode, align_corners):
    h, w, kwargs = resize
    x = rng.standard_normal((2, 3, h, w))
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.interpolate(tx, mode=mode, align_corners=align_corners, **kwargs)
    gy = rng.standard_normal(ty.shape)
    ty.backward(torch.tensor(gy))
    y = ops.interpolate(to_device(x, device), mode=mode, align_corners=align_corners, **kwargs)
    np.testing.assert_allclose(to_host(y), ty.detach().numpy(), atol=1e-13)
    dx = ops.interpolate_backward(to_device(gy, device), x.shape, mode=mode, align_corners=align_corners, **kwargs)
    np.testing.assert_allclose(to_host(dx), tx.grad.numpy(), atol=1e-12)


def test_interpolate_float32_against_torch(torch, device, rng):
    x = rng.standard_normal((4, 8, 17, 23)).astype(np.float32)
    for kwargs in (dict(scale_factor=2, mode="bilinear"), dict(size=(40, 9), mode="bilinear", align_corners=True),
                   dict(scale_factor=1.3, mode="nearest")):
        ref = torch.nn.functional.interpolate(torch.from_numpy(x), **kwargs).numpy()
        np.testing.assert_allclose(to_host(ops.interpolate(to_device(x, device), **kwargs)), ref, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("mode,align_corners", MODES)
def test_interpolate_backward_matches_numeric_gradient(device, rng, mode, align_corners):
    x = rng.standard_normal((1, 2, 5, 4))
    for kwargs in (dict(size=(7, 3)), dict(scale_factor=1.5)):
        y = ops.interpolate(to_device(x, device), mode=mode, align_corners=align_corners, **kwargs)
        gy = rng.standard_normal(y.shape)
        dx = to_host(ops.interpolate_backward(to_device(gy, device), x.shape, mode=mode, align_corners=align_corners,
                                              **kwargs))
        ref = numeric_gradient(lambda xx: _reference(xx, mode, align_corners, **kwargs), x, gy)
        np.testing.assert_allclose(dx, ref, rtol=1e-7, atol=1e-8)


def transposed(reference, x_shape, gy):
    """The gradient of a linear map given as its float64 reference: x's pixel (h, w) gets the sum of
    gy times the reference's output for an image that is 1 at (h, w) and 0 elsewhere."""
    dx = np.zeros(x_shape)
    for h in range(x_shape[2]):
        for w in range(x_shape[3]):
            basis = np.zeros(x_shape)
            basis[:, :, h, w] = 1.0
            dx[:, :, h, w] = (reference(basis) * gy).sum(axis=(2, 3))
    return dx


# Rows wide enough for whole vectors of every ISA and a tail, in both directions: forward rows
# of W_out values, backward rows of W (each value summing its readers, padded where fewer). A
# vector's taps are fetched from a window of one or two vectors of the row where they lie in one
# (upsampling; 2x's backward), else gathered (downsampling).
GATHERED_ROWS = [
    (3, 19, dict(mode="bilinear", scale_factor=2)),
    (3, 70, dict(mode="bilinear", size=(3, 35))),  # 16 outputs read 32 inputs: a window of two vectors
    (3, 40, dict(mode="nearest", size=(3, 41))),  # backward: one input read twice, the second taps mostly padding
    (4, 53, dict(mode="bilinear", size=(3, 18), align_corners=True)),
    (3, 21, dict(mode="bicubic", scale_factor=(1, 1.9))),
    (4, 53, dict(mode="bilinear", size=(3, 18), antialias=True)),
    (4, 61, dict(mode="bicubic", size=(2, 17), antialias=True)),
    (3, 19, dict(mode="nearest", scale_factor=2)),
    (4, 29, dict(mode="nearest", scale_factor=1.7)),
    (5, 53, dict(mode="nearest-exact", size=(3, 18))),
]


@pytest.mark.parametrize("h,w,kwargs", GATHERED_ROWS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_gathers_match_the_reference_on_every_isa(isa, rng, h, w, kwargs, dtype):
    x = rng.standard_normal((1, 2, h, w))
    y = ops.interpolate(x.astype(dtype), **kwargs)
    mode, align = kwargs["mode"], bool(kwargs.get("align_corners"))
    out, scales = output_and_scales(h, w, kwargs.get("size"), kwargs.get("scale_factor"))
    if mode == "nearest-exact":
        def reference(xx): return _nearest_exact_reference(xx, out, scales)
    elif mode in ("bilinear", "nearest") and not kwargs.get("antialias"):
        def reference(xx): return interpolate_reference(xx, out, mode, align, scales)
    else:
        def reference(xx): return filtered_interpolate_reference(xx, out, mode, align, scales, kwargs.get("antialias", False))
    tol = 2e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, reference(x), rtol=tol, atol=tol)
    gy = rng.standard_normal(y.shape)
    dx = ops.interpolate_backward(gy.astype(dtype), x.shape, **kwargs)
    assert dx.dtype == dtype
    np.testing.assert_allclose(dx, transposed(reference, x.shape, gy), rtol=tol, atol=tol)


@pytest.mark.parametrize("out_w", [19, 41, 83])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_padding_taps_read_nothing_on_every_isa(isa, out_w, dtype):
    """The backward's gather tables pad inputs with fewer readers with taps that read nothing, also
    in vectors whose taps come from a window of the row: an infinite gradient at one output column
    reaches exactly the inputs that column reads (nearest: every weight 1, no zero-weight taps)."""
    w = 40
    reads = interpolate_reference(np.eye(w).reshape(w, 1, 1, w), (1, out_w), "nearest")[:, 0, 0, :] == 1  # [i, o]
    for o in range(out_w):
        gy = np.ones((1, 1, 2, out_w), dtype)
        gy[..., o] = np.inf
        dx = ops.interpolate_backward(gy, (1, 1, 2, w), size=(2, out_w), mode="nearest")
        np.testing.assert_array_equal(np.isinf(dx[0, 0]), np.broadcast_to(reads[:, o], (2, w)), err_msg=f"output {o}")
        assert not np.isnan(dx).any()


@pytest.mark.parametrize("mode", [0, 1])
def test_interpolate_writes_every_output(rng, mode):
    x = rng.standard_normal((2, 3, 5, 6))
    out, dx = np.full((2, 3, 11, 4), np.nan), np.full(x.shape, np.nan)
    _C.interpolate_forward(x, out, mode, False, 0.0, 0.0)
    _C.interpolate_backward(np.ones_like(out), dx, mode, False, 0.0, 0.0)
    assert np.isfinite(out).all() and np.isfinite(dx).all()


def test_interpolate_empty_batch(device):
    x = to_device(np.zeros((0, 3, 4, 4)), device)
    assert ops.interpolate(x, scale_factor=2, mode="bilinear").shape == (0, 3, 8, 8)


X = np.zeros((2, 3, 6, 6))


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(size=4, scale_factor=2), ValueError, "either size or scale_factor should be defined, not both"),
    (dict(), ValueError, "either size or scale_factor should be defined"),
    (dict(size=4, align_corners=True), ValueError, "align_corners: can only be set with .* 'bilinear'"),
    (dict(size=4, mode="trilinear"), ValueError, "mode: expected 'nearest', 'nearest-exact', 'bilinear', 'bicubic' or 'area'"),
    (dict(size=(4, -1)), ValueError, "size: input and output sizes should be greater than 0"),
    (dict(size=(4, 2, 2)), TypeError, "size: expected an int or a pair of ints"),
    (dict(scale_factor=0.1), ValueError, "size: input and output sizes should be greater than 0"),
    (dict(scale_factor=-2), ValueError, "scale_factor: must be positive and finite"),
    (dict(scale_factor=(1, 2, 3)), ValueError, "scale_factor: expected a number or a pair"),
    (dict(size=4, recompute_scale_factor=True), ValueError, "recompute_scale_factor: is not meaningful"),
])
def test_interpolate_bad_input_raises_clearly(kwargs, error, match):
    with pytest.raises(error, match=match):
        ops.interpolate(X, **kwargs)


def test_interpolate_backward_checks_shapes():
    with pytest.raises(ValueError, match=r"grad_output: expected shape \(2, 3, 12, 12\)"):
        ops.interpolate_backward(np.zeros((2, 3, 12, 11)), X.shape, scale_factor=2)
    with pytest.raises(ValueError, match=r"input: expected a 4-d array"):
        ops.interpolate(X[0], size=3)


@pytest.mark.parametrize("op,call", [
    pytest.param("interpolate", lambda d: ops.interpolate(d, size=3), id="interpolate-input"),
    pytest.param("interpolate_backward", lambda d: ops.interpolate_backward(d, X.shape, scale_factor=2),
                 id="interpolate_backward-grad_output"),
])
def test_interpolate_refuses_a_device_array_before_any_kernel_runs(cuda_array, op, call):
    with pytest.raises(DeviceError, match=f"^{op}: fastconv has no CUDA kernels"):
        call(cuda_array)


def _nearest_exact_reference(x, out_hw, scales):
    """'nearest-exact' by its definition: output pixel d reads the input pixel under its centre,
    floor((d + 0.5) * scale), scale = 1 / scale_factor or in / out, computed in float32 as PyTorch
    computes it."""
    def sources(n_in, n_out, scale_factor):
        scale = np.float32(1.0 / scale_factor) if scale_factor > 0 else np.float32(n_in) / np.float32(n_out)
        return [min(int(np.floor(np.float32((d + 0.5) * np.float64(scale)))), n_in - 1) for d in range(n_out)]
    rows, columns = sources(x.shape[2], out_hw[0], scales[0]), sources(x.shape[3], out_hw[1], scales[1])
    return x[:, :, rows][:, :, :, columns]


@pytest.mark.parametrize("resize", RESIZES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nearest_exact_matches_its_definition(device, rng, resize, dtype):
    h, w, kwargs = resize
    x = rng.standard_normal((2, 3, h, w)).astype(dtype)
    out, scales = output_and_scales(h, w, **kwargs)
    y = to_host(ops.interpolate(to_device(x, device), mode="nearest-exact", **kwargs))
    np.testing.assert_array_equal(y, _nearest_exact_reference(x, out, scales))
    gy = rng.standard_normal(y.shape)
    dx = to_host(ops.interpolate_backward(to_device(gy, device), x.shape, mode="nearest-exact", **kwargs))
    np.testing.assert_allclose(dx, numeric_gradient(
        lambda a: _nearest_exact_reference(a, out, scales), x.astype(np.float64), gy), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("resize", RESIZES)
def test_nearest_exact_and_area_match_torch(torch, rng, resize):
    """float32, where PyTorch's index rule is float32 arithmetic as fastconv's. (Its float64 kernel
    can pick the next pixel where (d + 0.5) * scale is an integer in exact arithmetic; fastconv
    computes the index in float32 for both dtypes.)"""
    h, w, kwargs = resize
    x = rng.standard_normal((2, 3, h, w)).astype(np.float32)
    for mode in ("nearest-exact", "area"):
        tx = torch.tensor(x, requires_grad=True)
        ty = torch.nn.functional.interpolate(tx, mode=mode, **kwargs)
        gy = rng.standard_normal(ty.shape).astype(np.float32)
        ty.backward(torch.tensor(gy))
        np.testing.assert_allclose(ops.interpolate(x, mode=mode, **kwargs), ty.detach().numpy(), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(ops.interpolate_backward(gy, x.shape, mode=mode, **kwargs), tx.grad.numpy(),
                                   rtol=1e-6, atol=1e-6)


def test_area_is_adaptive_average_pooling_to_the_output_size(rng):
    x = rng.standard_normal((2, 3, 9, 7))
    np.testing.assert_array_equal(ops.interpolate(x, size=(4, 3), mode="area"), ops.adaptive_avg_pool2d(x, (4, 3)))
    np.testing.assert_array_equal(ops.interpolate(x, scale_factor=0.5, mode="area"), ops.adaptive_avg_pool2d(x, (4, 3)))
    with pytest.raises(ValueError, match="align_corners: can only be set"):
        ops.interpolate(x, size=(4, 3), mode="area", align_corners=False)
    with pytest.raises(ValueError, match="antialias: is restricted"):
        ops.interpolate(x, size=(4, 3), mode="area", antialias=True)
