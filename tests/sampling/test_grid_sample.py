import numpy as np
import pytest

from fastconv import _C, ops
from fastconv.backend import DeviceError, to_device, to_host
from tests.reference import affine_grid_reference, grid_sample_reference, numeric_gradient

MODES = ["bilinear", "nearest"]
PADDINGS = ["zeros", "border", "reflection"]


def random_grid(rng, n, out_h, out_w, height, width, align_corners, edges=True):
    """Grid points inside and outside [-1, 1], plus (edges=True) points exactly on the border
    (+-1) and on pixel centres and edges, where corner indices and padding rules switch."""
    grid = rng.uniform(-1.6, 1.6, (n, out_h, out_w, 2))
    if not edges:
        return grid
    flat = grid.reshape(-1, 2)
    special = []
    for size in (width, height):
        centres = np.arange(size) if align_corners else np.arange(size) + 0.5
        to_unit = (lambda p: 2 * p / (size - 1) - 1) if align_corners and size > 1 else (lambda p: 2 * p / size - 1)
        special.append(np.concatenate([[-1.0, 1.0], to_unit(centres), to_unit(np.arange(size + 1.0))]))
    m = min(len(flat) // 2, 40)
    flat[:m, 0] = rng.choice(special[0], m)
    flat[:m, 1] = rng.choice(special[1], m)
    return grid


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_grid_sample_matches_reference(device, rng, mode, padding, align_corners, dtype):
    x = rng.standard_normal((2, 3, 7, 5)).astype(dtype)
    # Pixel edges are nearest-mode ties, which float32 coordinates may round either way.
    edges = mode == "bilinear" or dtype == np.float64
    grid = random_grid(rng, 2, 9, 8, 7, 5, align_corners, edges).astype(dtype)
    y = to_host(ops.grid_sample(to_device(x, device), to_device(grid, device), mode, padding, align_corners))
    ref = grid_sample_reference(x, grid, mode, padding, align_corners)
    assert y.dtype == dtype and y.shape == (2, 3, 9, 8)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, ref, rtol=tol, atol=tol)


@pytest.mark.parametrize("seed", range(12))
def test_grid_sample_against_torch(torch, device, seed):
    rng = np.random.default_rng(seed)
    mode, padding, align = MODES[seed % 2], PADDINGS[seed % 3], bool(seed // 6)
    n, c, h, w = 1 + seed % 3, int(rng.integers(1, 5)), int(rng.integers(1, 9)), int(rng.integers(1, 9))
    x = rng.standard_normal((n, c, h, w))
    grid = random_grid(rng, n, int(rng.integers(1, 8)), int(rng.integers(1, 8)), h, w, align)
    tx, tg = torch.tensor(x, requires_grad=True), torch.tensor(grid, requires_grad=True)
    ty = torch.nn.functional.grid_sample(tx, tg, mode, padding, align)
    gy = rng.standard_normal(ty.shape)
    ty.backward(torch.tensor(gy))
    x_dev, grid_dev = to_device(x, device), to_device(grid, device)
    dx, dg = map(to_host, ops.grid_sample_backward(to_device(gy, device), x_dev, grid_dev, mode, padding, align))
    np.testing.assert_allclose(to_host(ops.grid_sample(x_dev, grid_dev, mode, padding, align)), ty.detach().numpy(),
                               atol=1e-12)
    np.testing.assert_allclose(dx, tx.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(dg, tg.grad.numpy(), atol=1e-11)


def test_grid_sample_float32_against_torch(torch, device, rng):
    x = rng.standard_normal((4, 16, 20, 24)).astype(np.float32)
    grid = rng.uniform(-1.1, 1.1, (4, 15, 17, 2)).astype(np.float32)
    for padding in PADDINGS:
        ref = torch.nn.functional.grid_sample(torch.from_numpy(x), torch.from_numpy(grid), "bilinear", padding, False)
        y = ops.grid_sample(to_device(x, device), to_device(grid, device), "bilinear", padding)
        np.testing.assert_allclose(to_host(y), ref.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("align_corners", [False, True])
def test_grid_sample_gradients_match_numeric(device, rng, padding, align_corners):
    x = rng.standard_normal((1, 2, 4, 5))
    grid = rng.uniform(-1.2, 1.2, (1, 3, 4, 2))  # random points: away from the kinks
    gy = rng.standard_normal((1, 2, 3, 4))
    dx, dg = map(to_host, ops.grid_sample_backward(*(to_device(a, device) for a in (gy, x, grid)), "bilinear", padding,
                                                   align_corners))
    f = lambda xx, gg: grid_sample_reference(xx, gg, "bilinear", padding, align_corners)
    np.testing.assert_allclose(dx, numeric_gradient(lambda xx: f(xx, grid), x, gy), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dg, numeric_gradient(lambda gg: f(x, gg), grid, gy), rtol=1e-5, atol=1e-6)


def test_grid_sample_backward_parts_on_request(device, rng):
    x, grid = rng.standard_normal((2, 3, 6, 6)), rng.uniform(-1, 1, (2, 4, 4, 2))
    gy = rng.standard_normal((2, 3, 4, 4))
    gy, x, grid = (to_device(a, device) for a in (gy, x, grid))
    dx, dg = map(to_host, ops.grid_sample_backward(gy, x, grid))
    only_dx = ops.grid_sample_backward(gy, x, grid, needs_grid_grad=False)
    only_dg = ops.grid_sample_backward(gy, x, grid, needs_input_grad=False)
    assert only_dx[1] is None and only_dg[0] is None
    np.testing.assert_array_equal(to_host(only_dx[0]), dx)
    np.testing.assert_array_equal(to_host(only_dg[1]), dg)
    assert not to_host(ops.grid_sample_backward(gy, x, grid, mode="nearest")[1]).any()


def test_grid_sample_writes_every_output(rng):
    x, grid = rng.standard_normal((2, 3, 6, 6)), rng.uniform(-1.5, 1.5, (2, 300, 2, 2))  # > one point block
    out, dx, dg = np.full((2, 3, 300, 2), np.nan), np.full(x.shape, np.nan), np.full(grid.shape, np.nan)
    _C.grid_sample_forward(x, grid, out, 0, 0, False)
    _C.grid_sample_backward(x, grid, np.ones_like(out), dx, dg, 0, 0, False)
    assert np.isfinite(out).all() and np.isfinite(dx).all() and np.isfinite(dg).all()


def test_grid_sample_empty_batch_and_grid():
    assert ops.grid_sample(np.zeros((0, 2, 3, 3)), np.zeros((0, 4, 4, 2))).shape == (0, 2, 4, 4)
    assert ops.grid_sample(np.zeros((1, 2, 3, 3)), np.zeros((1, 0, 4, 2))).shape == (1, 2, 0, 4)


@pytest.mark.filterwarnings("ignore:Since version 1.3.0, affine_grid")  # torch's note on unit-size grids
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("size", [(2, 3, 5, 4), (1, 1, 1, 6), (3, 2, 7, 1)])
def test_affine_grid_against_torch_and_reference(torch, device, rng, align_corners, size):
    theta = rng.standard_normal((size[0], 2, 3))
    grid = to_host(ops.affine_grid(to_device(theta, device), size, align_corners))
    np.testing.assert_allclose(grid, affine_grid_reference(theta, size, align_corners), atol=1e-14)
    tt = torch.tensor(theta, requires_grad=True)
    tgrid = torch.nn.functional.affine_grid(tt, size, align_corners)
    gg = rng.standard_normal(tgrid.shape)
    tgrid.backward(torch.tensor(gg))
    np.testing.assert_allclose(grid, tgrid.detach().numpy(), atol=1e-14)
    dtheta = to_host(ops.affine_grid_backward(to_device(gg, device), size, align_corners))
    np.testing.assert_allclose(dtheta, tt.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(
        dtheta, numeric_gradient(lambda t: affine_grid_reference(t, size, align_corners), theta, gg), atol=1e-7)


def test_spatial_transformer_identity_reproduces_the_input(device, rng):
    x = rng.standard_normal((2, 3, 6, 7)).astype(np.float32)
    theta = np.tile(np.array([[1, 0, 0], [0, 1, 0]], np.float32), (2, 1, 1))
    for align in (False, True):
        grid = ops.affine_grid(to_device(theta, device), x.shape, align)
        y = ops.grid_sample(to_device(x, device), grid, align_corners=align)
        np.testing.assert_allclose(to_host(y), x, atol=1e-5)


X = np.zeros((2, 3, 6, 6))
G = np.zeros((2, 4, 4, 2))


@pytest.mark.parametrize("args,kwargs,error,match", [
    ((X, np.zeros((2, 4, 4, 3))), {}, ValueError, r"grid: expected shape \(2, H_out, W_out, 2\)"),
    ((X, np.zeros((3, 4, 4, 2))), {}, ValueError, r"grid: expected shape \(2, H_out, W_out, 2\)"),
    ((X, np.zeros((2, 4, 2))), {}, ValueError, "grid: expected a 4-d array"),
    ((X, G.astype(np.float32)), {}, TypeError, "grid: dtype float32 does not match input's float64"),
    ((X, G), dict(mode="bicubic"), ValueError, "mode: expected 'bilinear' or 'nearest'"),
    ((X, G), dict(padding_mode="wrap"), ValueError, "padding_mode: expected 'zeros', 'border' or 'reflection'"),
    ((np.zeros((2, 3, 0, 6)), G), {}, ValueError, "input: expected non-empty spatial dimensions"),
    ((X[0], G), {}, ValueError, "input: expected a 4-d array"),
])
def test_grid_sample_bad_input_raises_clearly(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        ops.grid_sample(*args, **kwargs)


def test_affine_grid_bad_input_raises_clearly():
    with pytest.raises(ValueError, match=r"theta: expected shape \(2, 2, 3\), got \(2, 3, 3\)"):
        ops.affine_grid(np.zeros((2, 3, 3)), (2, 3, 4, 4))
    with pytest.raises(ValueError, match=r"theta: expected shape \(3, 2, 3\)"):
        ops.affine_grid(np.zeros((2, 2, 3)), (3, 3, 4, 4))
    with pytest.raises(ValueError, match=r"size: expected 4 sizes \(N, C, H, W\) >= 0"):
        ops.affine_grid(np.zeros((2, 2, 3)), (2, 3, -4, 4))
    with pytest.raises(ValueError, match=r"grad_grid: expected shape \(2, 4, 4, 2\)"):
        ops.affine_grid_backward(np.zeros((2, 4, 5, 2)), (2, 3, 4, 4))
    with pytest.raises(TypeError, match="theta: expected a float32 or float64"):
        ops.affine_grid(np.zeros((2, 2, 3), np.int32), (2, 3, 4, 4))


@pytest.mark.parametrize("op,call", [
    pytest.param("grid_sample", lambda d: ops.grid_sample(d, G), id="grid_sample-input"),
    pytest.param("grid_sample", lambda d: ops.grid_sample(X, d), id="grid_sample-grid"),
    pytest.param("grid_sample_backward", lambda d: ops.grid_sample_backward(d, X, G),
                 id="grid_sample_backward-grad_output"),
    pytest.param("grid_sample_backward", lambda d: ops.grid_sample_backward(np.zeros((2, 3, 4, 4)), d, G),
                 id="grid_sample_backward-input"),
    pytest.param("grid_sample_backward", lambda d: ops.grid_sample_backward(np.zeros((2, 3, 4, 4)), X, d),
                 id="grid_sample_backward-grid"),
    pytest.param("affine_grid", lambda d: ops.affine_grid(d, (2, 3, 4, 4)), id="affine_grid-theta"),
    pytest.param("affine_grid_backward", lambda d: ops.affine_grid_backward(d, (2, 3, 4, 4)),
                 id="affine_grid_backward-grad_grid"),
])
def test_grid_sample_and_affine_grid_refuse_a_device_array_before_any_kernel_runs(cuda_array, op, call):
    with pytest.raises(DeviceError, match=f"^{op}: fastconv has no CUDA kernels"):
        call(cuda_array)
