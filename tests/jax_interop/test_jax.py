"""fastconv.jax: each op under jax.jit gives fastconv.ops' answer, and its custom_vjp gradient
matches JAX's numerical differences (float64)."""
import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")
from jax.test_util import check_grads  # noqa: E402

from fastconv import ops  # noqa: E402

fj = pytest.importorskip("fastconv.jax")


@pytest.fixture(autouse=True, scope="module")
def float64():
    previous = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)


def jitted(f, *arrays):
    return np.asarray(jax.jit(f)(*[jnp.asarray(a) for a in arrays]))


def gradients_match_numerical(f, *arrays):
    check_grads(f, tuple(jnp.asarray(a) for a in arrays), order=1, modes=["rev"], atol=1e-6, rtol=1e-6)


def test_conv2d(rng):
    x, w, b = rng.standard_normal((2, 4, 7, 6)), rng.standard_normal((6, 2, 3, 3)), rng.standard_normal(6)
    f = lambda x, w, b: fj.conv2d(x, w, b, stride=(2, 1), padding=1, groups=2)
    np.testing.assert_array_equal(jitted(f, x, w, b), ops.conv2d(x, w, b, stride=(2, 1), padding=1, groups=2))
    gradients_match_numerical(f, x, w, b)


def test_conv2d_without_bias_and_a_pinned_algorithm(rng):
    x, w = rng.standard_normal((1, 3, 9, 9)), rng.standard_normal((4, 3, 3, 3))
    f = lambda x, w: fj.conv2d(x, w, padding=1, algo="winograd_2x3")
    np.testing.assert_allclose(jitted(f, x, w), ops.conv2d(x, w, padding=1), rtol=1e-10, atol=1e-10)
    gradients_match_numerical(f, x, w)


@pytest.mark.parametrize("with_residual", [False, True])
def test_conv2d_adds_a_residual_and_applies_relu_in_the_kernel(rng, with_residual):
    x, w, b = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    z = rng.standard_normal((2, 4, 4, 3))
    if with_residual:
        f = lambda x, w, b, z: fj.conv2d(x, w, b, stride=2, padding=1, relu=True, residual=z)
        arrays = (x, w, b, z)
    else:
        f = lambda x, w, b: fj.conv2d(x, w, b, stride=2, padding=1, relu=True)
        arrays = (x, w, b)
    expected = ops.conv2d(x, w, b, stride=2, padding=1, relu=True, residual=z if with_residual else None)
    assert (expected == 0).any() and (expected > 0).any()  # the ReLU's both sides are exercised
    np.testing.assert_array_equal(jitted(f, *arrays), expected)
    gradients_match_numerical(f, *arrays)
    loss = lambda *a: jnp.sum(f(*a) ** 2)
    argnums = tuple(range(len(arrays)))
    inputs = [jnp.asarray(a) for a in arrays]
    for compiled, eager in zip(jax.jit(jax.grad(loss, argnums))(*inputs), jax.grad(loss, argnums)(*inputs)):
        np.testing.assert_allclose(np.asarray(compiled), np.asarray(eager), rtol=1e-12, atol=1e-12)


def test_conv_transpose2d(rng):
    x, w, b = rng.standard_normal((2, 4, 5, 5)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(3)
    f = lambda x, w, b: fj.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1)
    np.testing.assert_array_equal(jitted(f, x, w, b),
                                  ops.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1))
    gradients_match_numerical(f, x, w, b)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_with_fused_relu_returns_the_new_running_statistics(training, rng):
    x, w, b = rng.standard_normal((3, 4, 5, 5)), rng.uniform(0.5, 2, 4), rng.standard_normal(4)
    mean, var = rng.standard_normal(4), rng.uniform(0.5, 2, 4)
    f = lambda x, w, b: fj.batch_norm(x, w, b, jnp.asarray(mean), jnp.asarray(var), training, 0.2, 1e-3, relu=True)
    y, new_mean, new_var = jax.jit(f)(jnp.asarray(x), jnp.asarray(w), jnp.asarray(b))
    expected_mean, expected_var = mean.copy(), var.copy()
    expected = ops.batch_norm(x, expected_mean, expected_var, w, b, training, 0.2, 1e-3, relu=True)[0]
    np.testing.assert_array_equal(np.asarray(y), expected)
    np.testing.assert_array_equal(np.asarray(new_mean), expected_mean)
    np.testing.assert_array_equal(np.asarray(new_var), expected_var)
    assert training != np.array_equal(expected_mean, mean)  # updated in training only
    gradients_match_numerical(lambda x, w, b: f(x, w, b)[0], x, w, b)


def test_max_and_avg_pool2d(rng):
    x = rng.standard_normal((2, 3, 7, 7))
    pool_max = lambda x: fj.max_pool2d(x, 3, 2, padding=1, ceil_mode=True)
    pool_avg = lambda x: fj.avg_pool2d(x, 3, 2, padding=1, count_include_pad=False)
    np.testing.assert_array_equal(jitted(pool_max, x), ops.max_pool2d(x, 3, 2, padding=1, ceil_mode=True))
    np.testing.assert_array_equal(jitted(pool_avg, x), ops.avg_pool2d(x, 3, 2, padding=1, count_include_pad=False))
    gradients_match_numerical(pool_max, x)
    gradients_match_numerical(pool_avg, x)


def test_roi_align(rng):
    x = rng.standard_normal((2, 3, 10, 10))
    boxes = np.array([[0, 1.2, 0.5, 7.3, 6.1], [1, 0.0, 2.5, 9.0, 9.5], [0, 3.3, 3.3, 4.1, 8.8]])
    f = lambda x: fj.roi_align(x, jnp.asarray(boxes), (3, 2), spatial_scale=0.9, sampling_ratio=2, aligned=True)
    np.testing.assert_array_equal(jitted(f, x), ops.roi_align(x, boxes, (3, 2), 0.9, 2, True))
    gradients_match_numerical(f, x)


def test_grid_sample_gradients_reach_input_and_grid(rng):
    x, grid = rng.standard_normal((2, 2, 5, 6)), rng.uniform(-0.9, 0.9, (2, 4, 3, 2))
    f = lambda x, g: fj.grid_sample(x, g, padding_mode="border", align_corners=True)
    np.testing.assert_array_equal(jitted(f, x, grid), ops.grid_sample(x, grid, padding_mode="border",
                                                                      align_corners=True))
    gradients_match_numerical(f, x, grid)


@pytest.mark.parametrize("kwargs", [dict(scale_factor=1.5, mode="bilinear", align_corners=False),
                                    dict(size=(3, 7), mode="bicubic", antialias=True)])
def test_interpolate(rng, kwargs):
    x = rng.standard_normal((1, 2, 6, 5))
    f = lambda x: fj.interpolate(x, **kwargs)
    np.testing.assert_array_equal(jitted(f, x), ops.interpolate(x, **kwargs))
    gradients_match_numerical(f, x)


def test_a_small_network_trains_under_jit(rng):
    x, target = rng.standard_normal((4, 1, 8, 8)), rng.standard_normal((4, 3, 4, 4))
    w = rng.standard_normal((3, 1, 3, 3)) * 0.3

    @jax.jit
    def loss(w):
        return jnp.mean((fj.max_pool2d(jax.nn.relu(fj.conv2d(jnp.asarray(x), w, padding=1)), 2) - target) ** 2)

    losses = []
    for _ in range(30):
        value, grad = jax.value_and_grad(loss)(w)
        w = w - 0.2 * grad
        losses.append(float(value))
    assert losses[-1] < 0.8 * losses[0]


def test_vmap_runs_each_element(rng):
    x, w = rng.standard_normal((3, 1, 2, 5, 5)), rng.standard_normal((2, 2, 3, 3))
    y = jax.vmap(lambda xi: fj.conv2d(xi, jnp.asarray(w)))(jnp.asarray(x))
    for i in range(3):
        np.testing.assert_array_equal(np.asarray(y[i]), ops.conv2d(x[i], w))


def test_bad_arguments_raise_fastconv_errors_while_tracing(rng):
    x, w = jnp.asarray(rng.standard_normal((1, 3, 5, 5))), jnp.asarray(rng.standard_normal((4, 2, 3, 3)))
    with pytest.raises(ValueError, match="weight"):
        jax.jit(lambda x, w: fj.conv2d(x, w))(x, w)
    with pytest.raises(ValueError, match="boxes: expected a \\(K, 5\\) array"):
        fj.roi_align(x, jnp.zeros((2, 4)), 2)


def test_an_error_inside_the_kernel_reaches_the_caller(rng):
    x = jnp.asarray(rng.standard_normal((1, 2, 6, 6)))
    boxes = jnp.asarray([[3.0, 0, 0, 4, 4]])  # batch index 3 of a batch of 1: found only when it runs
    with pytest.raises(Exception, match="roi_align.*batch"):
        np.asarray(fj.roi_align(x, boxes, 2))
