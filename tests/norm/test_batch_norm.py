import numpy as np
import pytest

from fastconv import ops
from fastconv.backend import DeviceError, to_device, to_host
from tests.reference import batch_norm_reference, batch_stats_reference, conv2d_reference, numeric_gradient

# (N, C, H, W)
SHAPES = [(1, 1, 1, 2), (1, 3, 5, 7), (4, 5, 3, 3), (2, 17, 9, 11), (8, 2, 1, 1)]
FUSIONS = [(False, False), (True, False), (False, True), (True, True)]  # (relu, residual)


def _params(rng, c, dtype):
    gamma = rng.standard_normal(c).astype(dtype)
    beta = rng.standard_normal(c).astype(dtype)
    running_mean = rng.standard_normal(c).astype(dtype)
    running_var = (rng.random(c) + 0.5).astype(dtype)
    return gamma, beta, running_mean, running_var


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("relu,residual", FUSIONS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm_train_forward_matches_reference(isa, device, rng, stream_stores, shape, relu, residual, dtype):
    x = (rng.standard_normal(shape) * 2 + 0.5).astype(dtype)
    z = rng.standard_normal(shape).astype(dtype) if residual else None
    gamma, beta, rm, rv = _params(rng, shape[1], dtype)
    rm0, rv0 = rm.copy(), rv.copy()
    x_dev, rm_dev, rv_dev, gamma_dev, beta_dev = (to_device(a, device) for a in (x, rm, rv, gamma, beta))
    z_dev = None if z is None else to_device(z, device)
    y, mean, invstd = map(to_host, ops.batch_norm(x_dev, rm_dev, rv_dev, gamma_dev, beta_dev, training=True,
                                                  momentum=0.3, eps=1e-3, residual=z_dev, relu=relu))
    rm, rv = to_host(rm_dev), to_host(rv_dev)  # updated in place
    ref_mean, ref_var = batch_stats_reference(x)
    count = shape[0] * shape[2] * shape[3]
    tol = 2e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, batch_norm_reference(x, ref_mean, ref_var, gamma, beta, 1e-3, z, relu), rtol=tol, atol=tol)
    np.testing.assert_allclose(mean, ref_mean, rtol=tol, atol=tol)
    np.testing.assert_allclose(invstd, 1 / np.sqrt(ref_var + 1e-3), rtol=tol, atol=tol)
    np.testing.assert_allclose(rm, 0.7 * rm0 + 0.3 * ref_mean, rtol=tol, atol=tol)
    np.testing.assert_allclose(rv, 0.7 * rv0 + 0.3 * ref_var * count / (count - 1), rtol=tol, atol=tol)


@pytest.mark.parametrize("relu,residual", FUSIONS)
def test_batch_norm_eval_forward_matches_reference(isa, device, rng, stream_stores, relu, residual):
    x = rng.standard_normal((3, 6, 5, 4))
    z = rng.standard_normal(x.shape) if residual else None
    gamma, beta, rm, rv = _params(rng, 6, np.float64)
    x_dev, rm_dev, rv_dev, gamma_dev, beta_dev = (to_device(a, device) for a in (x, rm, rv, gamma, beta))
    z_dev = None if z is None else to_device(z, device)
    y, mean, invstd = map(to_host, ops.batch_norm(x_dev, rm_dev, rv_dev, gamma_dev, beta_dev, training=False,
                                                  eps=1e-4, residual=z_dev, relu=relu))
    np.testing.assert_allclose(y, batch_norm_reference(x, rm, rv, gamma, beta, 1e-4, z, relu), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(mean, rm)
    np.testing.assert_allclose(invstd, 1 / np.sqrt(rv + 1e-4), rtol=1e-15)


def _forward_fn(training, relu, rm, rv, eps=1e-3):
    """f(x, gamma, beta, z) by the reference, with the statistics a real forward would use."""
    def f(x, gamma, beta, z):
        mean, var = batch_stats_reference(x) if training else (rm, rv)
        return batch_norm_reference(x, mean, var, gamma, beta, eps, z, relu)
    return f


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("relu,residual", FUSIONS)
def test_batch_norm_gradients_match_numeric(isa, device, rng, stream_stores, training, relu, residual):
    shape = (2, 3, 3, 5)  # planes of 15: streamed rows start and end unaligned
    x = rng.standard_normal(shape)
    z = rng.standard_normal(shape) if residual else np.zeros(shape)
    gamma, beta, rm, rv = _params(rng, 3, np.float64)
    x_dev, gamma_dev = to_device(x, device), to_device(gamma, device)
    y, mean, invstd = ops.batch_norm(x_dev, to_device(rm.copy(), device), to_device(rv.copy(), device), gamma_dev,
                                     to_device(beta, device), training=training, eps=1e-3,
                                     residual=to_device(z, device) if residual else None, relu=relu)
    gy = rng.standard_normal(shape)
    grads = ops.batch_norm_backward(to_device(gy, device), x_dev, mean, invstd, gamma_dev, training=training,
                                    output=y, relu=relu, residual=residual)
    dx, dgamma, dbeta, dz = (None if g is None else to_host(g) for g in grads)
    f = _forward_fn(training, relu, rm, rv)
    kw = dict(rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dx, numeric_gradient(lambda a: f(a, gamma, beta, z), x, gy), **kw)
    np.testing.assert_allclose(dgamma, numeric_gradient(lambda a: f(x, a, beta, z), gamma, gy), **kw)
    np.testing.assert_allclose(dbeta, numeric_gradient(lambda a: f(x, gamma, a, z), beta, gy), **kw)
    if residual:
        np.testing.assert_allclose(dz, numeric_gradient(lambda a: f(x, gamma, beta, a), z, gy), **kw)
    else:
        assert dz is None


def _training_backward_reference(gy, x, y, gamma, relu):
    """(dx, dgamma, dbeta) of training batch_norm in float64 from the closed form (the batch
    statistics recomputed here): dx = gamma * invstd * (g - mean(g) - xhat * mean(g * xhat)),
    g being gy where the ReLU passed it."""
    g = np.where(y > 0, gy, 0).astype(np.float64) if relu else gy.astype(np.float64)
    mean, var = batch_stats_reference(x)
    invstd = 1 / np.sqrt(var + 1e-5)
    xhat = (x.astype(np.float64) - mean[None, :, None, None]) * invstd[None, :, None, None]
    axes = (0, 2, 3)
    k = (gamma * invstd)[None, :, None, None]
    dx = k * (g - g.mean(axis=axes, keepdims=True) - xhat * (g * xhat).mean(axis=axes, keepdims=True))
    return dx, (g * xhat).sum(axis=axes), g.sum(axis=axes)


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
@pytest.mark.parametrize("relu,residual", FUSIONS)
def test_batch_norm_backward_matches_closed_form(isa, rng, stream_stores, layout, relu, residual):
    """float32 over planes and channel rows of several whole vectors and a tail on every ISA."""
    shape = (3, 20, 9, 13)
    x, gy = (rng.standard_normal(shape).astype(np.float32) for _ in range(2))
    gamma, beta, _, _ = _params(rng, shape[1], np.float32)
    z = rng.standard_normal(shape).astype(np.float32) if residual else None
    put = ops.to_channels_last if layout == "channels_last" else np.ascontiguousarray
    y, mean, invstd = ops.batch_norm(put(x), None, None, gamma, beta, training=True, relu=relu,
                                     residual=None if z is None else put(z))
    dx, dgamma, dbeta, dz = ops.batch_norm_backward(put(gy), put(x), mean, invstd, gamma, training=True,
                                                    output=y, relu=relu, residual=residual)
    want_dx, want_dgamma, want_dbeta = _training_backward_reference(gy, x, np.asarray(y), gamma, relu)
    np.testing.assert_allclose(dx, want_dx, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dgamma, want_dgamma, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(dbeta, want_dbeta, rtol=1e-4, atol=1e-3)
    if residual:
        np.testing.assert_array_equal(dz, np.where(np.asarray(y) > 0, gy, 0) if relu else gy)


def _random_shape(rng):
    return (int(rng.integers(1, 5)), int(rng.integers(1, 9)), int(rng.integers(1, 12)), int(rng.integers(2, 12)))


@pytest.mark.parametrize("seed", range(12))
def test_batch_norm_random_shapes_against_torch(torch, device, seed):
    rng = np.random.default_rng(seed)
    shape = _random_shape(rng)
    relu, residual = FUSIONS[seed % 4]
    affine = seed % 3 != 0
    x, z, gy = (rng.standard_normal(shape) for _ in range(3))
    gamma, beta, rm, rv = _params(rng, shape[1], np.float64)
    if not affine:
        gamma = beta = None
    t = {k: torch.tensor(v, requires_grad=True) for k, v in dict(x=x, z=z, g=gamma, b=beta).items() if v is not None}
    trm, trv = torch.tensor(rm), torch.tensor(rv)
    ty = torch.nn.functional.batch_norm(t["x"], trm, trv, t.get("g"), t.get("b"), True, 0.2, 1e-4)
    ty = ty + t["z"] if residual else ty
    ty = torch.relu(ty) if relu else ty
    ty.backward(torch.tensor(gy))
    put = lambda a: None if a is None else to_device(a, device)
    x_dev, rm_dev, rv_dev, gamma_dev = put(x), put(rm), put(rv), put(gamma)
    y, mean, invstd = ops.batch_norm(x_dev, rm_dev, rv_dev, gamma_dev, put(beta), True, 0.2, 1e-4,
                                     put(z) if residual else None, relu)
    grads = ops.batch_norm_backward(put(gy), x_dev, mean, invstd, gamma_dev, True, y, relu, residual)
    y, rm, rv = to_host(y), to_host(rm_dev), to_host(rv_dev)
    dx, dgamma, dbeta, dz = (None if g is None else to_host(g) for g in grads)
    pairs = [(y, ty), (rm, trm), (rv, trv), (dx, t["x"].grad)]
    pairs += [(dgamma, t["g"].grad), (dbeta, t["b"].grad)] if affine else []
    pairs += [(dz, t["z"].grad)] if residual else []
    for ours, theirs in pairs:
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-9, atol=1e-10)
    if not affine:
        assert dgamma is None and dbeta is None


def test_batch_norm_float32_stats_stable_with_large_offset(torch, rng):
    # |mean| / std = 1e4: the textbook E[x^2] - E[x]^2 in float would lose every digit.
    x = (1e4 + rng.standard_normal((8, 4, 16, 16))).astype(np.float32)
    rm, rv = np.zeros(4, np.float32), np.ones(4, np.float32)
    y, mean, invstd = ops.batch_norm(x, rm, rv, training=True)
    ref_mean, ref_var = batch_stats_reference(x)
    np.testing.assert_allclose(1 / invstd ** 2 - 1e-5, ref_var, rtol=1e-5)
    ty = torch.nn.functional.batch_norm(torch.from_numpy(x), None, None, training=True)
    np.testing.assert_allclose(y, ty.numpy(), rtol=1e-3, atol=1e-3)


def test_batch_norm_without_running_stats(rng):
    x = rng.standard_normal((2, 3, 4, 4))
    y, mean, invstd = ops.batch_norm(x, None, None, training=True)
    np.testing.assert_allclose(mean, x.mean(axis=(0, 2, 3)), rtol=1e-12, atol=1e-14)


def test_batch_norm_outputs_are_fully_written(rng):
    x = rng.standard_normal((3, 5, 7, 9)).astype(np.float32)
    gamma, beta, rm, rv = _params(rng, 5, np.float32)
    ops.batch_norm(np.full_like(x, np.nan), rm.copy(), rv.copy(), gamma, beta, training=True)
    y, mean, invstd = ops.batch_norm(x, rm, rv, gamma, beta, training=True, residual=x, relu=True)
    grads = ops.batch_norm_backward(np.ones_like(x), x, mean, invstd, gamma, output=y, relu=True, residual=True)
    for a in (y, mean, invstd, rm, rv, *grads):
        assert np.isfinite(a).all()


def test_fold_bn_into_conv_matches_conv_then_bn(device, rng):
    x = rng.standard_normal((2, 3, 6, 6))
    w, b = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    gamma, beta, rm, rv = _params(rng, 4, np.float64)
    w_dev, b_dev, gamma_dev, beta_dev, rm_dev, rv_dev = (to_device(a, device) for a in (w, b, gamma, beta, rm, rv))
    bn_y, _, _ = ops.batch_norm(ops.conv2d(to_device(x, device), w_dev, b_dev, padding=1), rm_dev, rv_dev, gamma_dev,
                                beta_dev, eps=1e-3)
    w2, b2 = map(to_host, ops.fold_bn_into_conv(w_dev, b_dev, rm_dev, rv_dev, gamma_dev, beta_dev, eps=1e-3))
    np.testing.assert_allclose(conv2d_reference(x, w2, b2, pad_begin=(1, 1), pad_end=(1, 1)), to_host(bn_y),
                               rtol=1e-10, atol=1e-10)
    w3, b3 = map(to_host, ops.fold_bn_into_conv(to_device(w.astype(np.float32), device), None, rm_dev, rv_dev,
                                                None, None))
    assert w3.dtype == np.float32
    np.testing.assert_allclose(b3, -rm / np.sqrt(rv + 1e-5), rtol=1e-6)


X = np.zeros((2, 3, 4, 4))
V = np.ones(3)


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(input=np.zeros((2, 3, 4)), running_mean=V, running_var=V), ValueError, "input: expected a 4-d array"),
    (dict(input=X, running_mean=np.zeros(4), running_var=V), ValueError, "running_mean: expected shape \\(3,\\)"),
    (dict(input=X, running_mean=V, running_var=np.ones((3, 1)), training=True), ValueError, "running_var: expected a 1-d"),
    (dict(input=X, running_mean=V, running_var=V, weight=np.ones(2)), ValueError, "weight: expected shape \\(3,\\)"),
    (dict(input=X, running_mean=V.astype(np.float32), running_var=V), TypeError, "running_mean: dtype float32 does not match"),
    (dict(input=X.astype(np.int64), running_mean=V, running_var=V), TypeError, "input: expected a float32 or float64"),
    (dict(input=X, running_mean=V, running_var=V, residual=np.zeros((2, 3, 4, 5))), ValueError, "residual: expected shape"),
    (dict(input=np.zeros((1, 3, 1, 1)), running_mean=V, running_var=V, training=True), ValueError,
     "expected more than 1 value per channel when training"),
    (dict(input=X, running_mean=None, running_var=None), ValueError, "required when training=False"),
    (dict(input=X, running_mean=[0.0, 0.0, 0.0], running_var=V, training=True), ValueError, "updated in place"),
])
def test_batch_norm_bad_input_raises_clearly(kwargs, error, match):
    with pytest.raises(error, match=match):
        ops.batch_norm(**kwargs)


def test_batch_norm_backward_relu_needs_output():
    with pytest.raises(ValueError, match="output: required when relu=True"):
        ops.batch_norm_backward(X, X, V, V, relu=True)


@pytest.mark.parametrize("position", ["input", "running_mean", "running_var", "weight", "bias", "residual"])
def test_batch_norm_refuses_a_device_array_before_any_kernel_runs(cuda_array, position):
    arrays = dict(input=X, running_mean=V, running_var=V, weight=V, bias=V, residual=X)
    arrays[position] = cuda_array
    with pytest.raises(DeviceError, match="^batch_norm: fastconv has no CUDA kernels"):
        ops.batch_norm(**arrays)


@pytest.mark.parametrize("position", ["grad_output", "input", "mean", "invstd", "weight", "output"])
def test_batch_norm_backward_refuses_a_device_array_before_any_kernel_runs(cuda_array, position):
    arrays = dict(grad_output=X, input=X, mean=V, invstd=V, weight=V, output=X)
    arrays[position] = cuda_array
    with pytest.raises(DeviceError, match="^batch_norm_backward: fastconv has no CUDA kernels"):
        ops.batch_norm_backward(**arrays, relu=True)


def test_eval_forward_and_gradient_pass_are_the_same_bits_on_every_isa(rng):
    """The element-wise passes (no sums) compiled per ISA, without fused multiply-adds."""
    import fastconv
    from fastconv import _runtime
    x, z, gy = (rng.standard_normal((2, 5, 9, 23)).astype(np.float32) for _ in range(3))
    gamma, beta, rm, rv = _params(rng, 5, np.float32)
    previous, results = _runtime.get_isa(), []
    try:
        for isa in _runtime.supported_isas():
            fastconv.set_isa(isa)
            y, mean, invstd = ops.batch_norm(x, rm, rv, gamma, beta, training=False, residual=z, relu=True)
            dx = ops.batch_norm_backward(gy, x, mean, invstd, gamma, training=False, output=y, relu=True)[0]
            results.append((y, dx))
    finally:
        fastconv.set_isa(previous)
    for y, dx in results[1:]:
        np.testing.assert_array_equal(y, results[0][0])
        np.testing.assert_array_equal(dx, results[0][1])
