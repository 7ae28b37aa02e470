"""fastconv's kernels as JAX functions: traceable under jax.jit, differentiable (jax.custom_vjp
with fastconv's own backward kernels), on CPU arrays.

    import jax, jax.numpy as jnp
    from fastconv import jax as fj

    @jax.jit
    def loss(x, w):
        y = fj.conv2d(x, w, padding=1)
        return jnp.sum(fj.max_pool2d(jax.nn.relu(y), 2) ** 2)

    value, grads = jax.value_and_grad(loss, argnums=(0, 1))(x, w)

Each call is an XLA custom call through jax.ffi (see _xla_ffi.py): XLA hands fastconv its
buffers, the inputs are read in place and each result is written once into XLA's buffer.
Arguments are checked when the function is traced, with the messages fastconv.ops gives.
Needs `pip install fastconv[jax]`. The targets are the CPU kernels: on a GPU backend XLA
refuses to lower them (no CUDA target is registered).
"""
import functools

import numpy as np

try:
    import jax
    import jax.numpy as jnp
except ImportError as e:  # an optional extra: say how to get it
    raise ImportError("fastconv.jax needs JAX: pip install 'fastconv[jax]' (or: pip install jax jaxlib)") from e

from fastconv import ops
from fastconv.jax._xla_ffi import register

__all__ = ["conv2d", "conv_transpose2d", "batch_norm", "max_pool2d", "avg_pool2d", "roi_align", "grid_sample",
           "interpolate"]


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else value


def _call(target, results, *operands):
    """The XLA custom call of `target` on `operands`, giving arrays shaped like `results` (the
    targets are registered for the CPU platform: XLA refuses to lower them for a GPU)."""
    return jax.ffi.ffi_call(target, results, vmap_method="sequential")(*operands)


def _writes(compute):
    """compute(*inputs) -> array or tuple of arrays, as an FFI body that writes XLA's results."""
    def body(inputs, outputs):
        values = compute(*inputs)
        for out, value in zip(outputs, values if isinstance(values, tuple) else (values,)):
            np.copyto(out, value)
    return body


def _like(shape, dtype):
    return jax.ShapeDtypeStruct(tuple(int(d) for d in shape), dtype)


def _empty_batch_shape(op, x, *args, **kwargs):
    """The output shape op gives x, from a call on an empty batch (cheap, and checks the arguments)."""
    shape = op(np.empty((0,) + tuple(x.shape[1:]), x.dtype), *args, **kwargs).shape
    return (x.shape[0],) + tuple(shape[1:])


def _single_input_op(name, forward, backward):
    """f(x, config): a differentiable op of one array whose static arguments are `config`, through
    two FFI targets: forward(x, *config) -> y and backward(dy, x, *config) -> dx."""
    @functools.lru_cache(maxsize=None)
    def targets(config):
        return (register(_writes(lambda x: forward(x, *config)), name),
                register(_writes(lambda dy, x: backward(dy, x, *config)), f"{name}_backward"))

    @functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
    def op(x, config):
        return _call(targets(config)[0], _like(_empty_batch_shape(forward, x, *config), x.dtype), x)

    def op_backward(config, x, dy):
        return (_call(targets(config)[1], _like(x.shape, x.dtype), dy, x),)

    op.defvjp(lambda x, config: (op(x, config), x), op_backward)
    return op


# ---- conv2d ---------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _conv2d_targets(stride, padding, dilation, groups, algo, relu, residual):
    """(forward, backward) FFI targets; the forward takes a residual operand when `residual`."""
    args = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, algo=algo)
    forward = register(_writes(lambda x, w, b, *z: ops.conv2d(x, w, b, **args, relu=relu,
                                                                  residual=z[0] if residual else None)), "conv2d")
    backward = register(_writes(lambda x, w, dy: ops.conv2d_backward(x, w, dy, **args)), "conv2d_backward")
    return forward, backward


# residual: () or (z,), a pytree, so that one custom_vjp serves calls with and without one;
# config: (stride, padding, dilation, groups, algo, relu, whether there is a residual).
@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def _conv2d(x, w, b, residual, config):
    y_shape = ops.conv2d(np.empty((0,) + x.shape[1:], x.dtype), np.empty(w.shape, w.dtype),
                         **dict(zip(("stride", "padding", "dilation", "groups"), config[:4]))).shape
    return _call(_conv2d_targets(*config)[0], _like((x.shape[0],) + y_shape[1:], x.dtype), x, w, b, *residual)


def _conv2d_forward(x, w, b, residual, config):
    y = _conv2d(x, w, b, residual, config)
    return y, (x, w, y if config[5] else None)


def _conv2d_backward(config, saved, dy):
    x, w, y = saved
    relu, has_residual = config[5:]
    if relu:  # torch's threshold_backward: no gradient where the output is <= 0 (NaN passes)
        dy = jnp.where(y <= 0, jnp.zeros_like(dy), dy)
    results = (_like(x.shape, x.dtype), _like(w.shape, w.dtype), _like(w.shape[:1], w.dtype))
    dx, dw, db = _call(_conv2d_targets(*config)[1], results, x, w, dy)
    return dx, dw, db, (dy,) if has_residual else ()


_conv2d.defvjp(_conv2d_forward, _conv2d_backward)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, algo="auto", relu=False,
           residual=None):
    """torch.nn.functional.conv2d on JAX arrays (NCHW input, (K, C/groups, R, S) weight).
    relu=True and `residual` (an array of the output's shape) give relu(conv2d(...) + residual),
    the sum and the ReLU done as the kernel stores each output (fastconv.ops.conv2d's epilogue),
    differentiable in every input."""
    bias = jnp.zeros(weight.shape[:1], weight.dtype) if bias is None else bias
    residual = () if residual is None else (residual,)
    return _conv2d(input, weight, bias, residual, (_pair(stride), _pair(padding), _pair(dilation), groups, algo,
                                                   bool(relu), bool(residual)))


# ---- conv_transpose2d ------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _conv_transpose2d_targets(config):
    args = dict(zip(("stride", "padding", "output_padding", "groups", "dilation"), config))
    forward = register(_writes(lambda x, w, b: ops.conv_transpose2d(x, w, b, **args)), "conv_transpose2d")
    backward = register(_writes(lambda x, w, dy: ops.conv_transpose2d_backward(x, w, dy, **args)),
                        "conv_transpose2d_backward")
    return forward, backward


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _conv_transpose2d(x, w, b, config):
    args = dict(zip(("stride", "padding", "output_padding", "groups", "dilation"), config))
    y_shape = ops.conv_transpose2d(np.empty((0,) + x.shape[1:], x.dtype), np.empty(w.shape, w.dtype), **args).shape
    return _call(_conv_transpose2d_targets(config)[0], _like((x.shape[0],) + y_shape[1:], x.dtype), x, w, b)


def _conv_transpose2d_forward(x, w, b, config):
    return _conv_transpose2d(x, w, b, config), (x, w)


def _conv_transpose2d_backward(config, saved, dy):
    x, w = saved
    results = (_like(x.shape, x.dtype), _like(w.shape, w.dtype), _like(dy.shape[1:2], w.dtype))
    return tuple(_call(_conv_transpose2d_targets(config)[1], results, x, w, dy))


_conv_transpose2d.defvjp(_conv_transpose2d_forward, _conv_transpose2d_backward)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """torch.nn.functional.conv_transpose2d on JAX arrays (weight (C_in, C_out/groups, R, S))."""
    bias = jnp.zeros((weight.shape[1] * groups,), weight.dtype) if bias is None else bias
    config = (_pair(stride), _pair(padding), _pair(output_padding), groups, _pair(dilation))
    return _conv_transpose2d(input, weight, bias, config)


# ---- batch_norm -----------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _batch_norm_targets(config):
    training, momentum, eps, relu = config

    def forward(x, w, b, running_mean, running_var):
        running_mean, running_var = running_mean.copy(), running_var.copy()  # the kernel updates them
        y, mean, invstd = ops.batch_norm(x, running_mean, running_var, w, b, training, momentum, eps, relu=relu)
        return y, mean, invstd, running_mean, running_var

    def backward(dy, x, w, mean, invstd, y):
        return ops.batch_norm_backward(dy, x, mean, invstd, w, training, output=y, relu=relu)[:3]
    return register(_writes(forward), "batch_norm"), register(_writes(backward), "batch_norm_backward")


def _batch_norm_call(x, w, b, running_mean, running_var, config):
    vector = _like(x.shape[1:2], x.dtype)
    return _call(_batch_norm_targets(config)[0], (_like(x.shape, x.dtype), vector, vector, vector, vector),
                 x, w, b, running_mean, running_var)


@functools.partial(jax.custom_vjp, nondiff_argnums=(5,))
def _batch_norm(x, w, b, running_mean, running_var, config):
    y, _, _, new_mean, new_var = _batch_norm_call(x, w, b, running_mean, running_var, config)
    return y, new_mean, new_var


def _batch_norm_forward(x, w, b, running_mean, running_var, config):
    y, mean, invstd, new_mean, new_var = _batch_norm_call(x, w, b, running_mean, running_var, config)
    return (y, new_mean, new_var), (x, w, mean, invstd, y, running_mean, running_var)


def _batch_norm_backward(config, saved, cotangents):
    x, w, mean, invstd, y, running_mean, running_var = saved
    vector = _like(w.shape, w.dtype)
    dx, dw, db = _call(_batch_norm_targets(config)[1], (_like(x.shape, x.dtype), vector, vector),
                       cotangents[0], x, w, mean, invstd, y)
    # the running statistics are state, not parameters: no gradient flows into them
    return dx, dw, db, jnp.zeros_like(running_mean), jnp.zeros_like(running_var)


_batch_norm.defvjp(_batch_norm_forward, _batch_norm_backward)


def batch_norm(input, weight, bias, running_mean, running_var, training=True, momentum=0.1, eps=1e-5,
               relu=False):
    """torch.nn.functional.batch_norm (with an optional fused ReLU) on JAX arrays, the functional
    way: returns (y, new_running_mean, new_running_var) instead of updating the statistics in
    place. Training normalises with the batch's statistics, eval with the running ones."""
    return _batch_norm(input, weight, bias, running_mean, running_var,
                       (bool(training), float(momentum), float(eps), bool(relu)))


# ---- pooling --------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _max_pool2d_targets(config):
    kernel_size, stride, padding, dilation, ceil_mode = config
    forward = register(_writes(lambda x: ops.max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode,
                                                        return_indices=True)), "max_pool2d")
    backward = register(_writes(lambda dy, indices, x: ops.max_pool2d_backward(dy, x.shape, indices)),
                        "max_pool2d_backward")
    return forward, backward


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _max_pool2d(x, config):
    return _max_pool2d_with_indices(x, config)[0]


def _max_pool2d_with_indices(x, config):
    shape = _empty_batch_shape(ops.max_pool2d, x, *config)
    return _call(_max_pool2d_targets(config)[0], (_like(shape, x.dtype), _like(shape, np.int64)), x)


def _max_pool2d_forward(x, config):
    y, indices = _max_pool2d_with_indices(x, config)
    return y, (x, indices)


def _max_pool2d_backward(config, saved, dy):
    x, indices = saved
    return (_call(_max_pool2d_targets(config)[1], _like(x.shape, x.dtype), dy, indices, x),)


_max_pool2d.defvjp(_max_pool2d_forward, _max_pool2d_backward)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """torch.nn.functional.max_pool2d on JAX arrays; its gradient goes to each window's maximum."""
    return _max_pool2d(input, (_pair(kernel_size), _pair(stride), _pair(padding), _pair(dilation), bool(ceil_mode)))


_avg_pool2d = _single_input_op("avg_pool2d", ops.avg_pool2d,
                               lambda dy, x, *config: ops.avg_pool2d_backward(dy, x.shape, *config))


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """torch.nn.functional.avg_pool2d on JAX arrays."""
    return _avg_pool2d(input, (_pair(kernel_size), _pair(stride), _pair(padding), bool(ceil_mode),
                               bool(count_include_pad), divisor_override))


# ---- roi_align ------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _roi_align_targets(config):
    output_size, spatial_scale, sampling_ratio, aligned = config
    forward = register(_writes(lambda x, boxes: ops.roi_align(x, boxes, *config)), "roi_align")
    backward = register(_writes(lambda dy, boxes, x: ops.roi_align_backward(
        dy, boxes, x.shape, spatial_scale, sampling_ratio, aligned)), "roi_align_backward")
    return forward, backward


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _roi_align(x, boxes, config):
    (ph, pw) = config[0]
    return _call(_roi_align_targets(config)[0], _like((boxes.shape[0], x.shape[1], ph, pw), x.dtype), x, boxes)


def _roi_align_backward(config, saved, dy):
    x, boxes = saved
    dx = _call(_roi_align_targets(config)[1], _like(x.shape, x.dtype), dy, boxes, x)
    return dx, jnp.zeros_like(boxes)  # torchvision's roi_align has no gradient for the boxes either


_roi_align.defvjp(lambda x, boxes, config: (_roi_align(x, boxes, config), (x, boxes)), _roi_align_backward)


def roi_align(input, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    """torchvision.ops.roi_align on JAX arrays; boxes (K, 5) rows [batch_index, x1, y1, x2, y2]."""
    size = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    if boxes.ndim != 2 or boxes.shape[1] != 5:
        raise ValueError(f"boxes: expected a (K, 5) array [batch_index, x1, y1, x2, y2], got shape {boxes.shape}")
    return _roi_align(input, boxes, (size, float(spatial_scale), int(sampling_ratio), bool(aligned)))


# ---- grid_sample and interpolate ----------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _grid_sample_targets(config):
    forward = register(_writes(lambda x, grid: ops.grid_sample(x, grid, *config)), "grid_sample")
    backward = register(_writes(lambda dy, x, grid: ops.grid_sample_backward(dy, x, grid, *config)),
                        "grid_sample_backward")
    return forward, backward


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _grid_sample(x, grid, config):
    shape = (x.shape[0], x.shape[1], grid.shape[1], grid.shape[2])
    return _call(_grid_sample_targets(config)[0], _like(shape, x.dtype), x, grid)


def _grid_sample_backward(config, saved, dy):
    x, grid = saved
    return tuple(_call(_grid_sample_targets(config)[1], (_like(x.shape, x.dtype), _like(grid.shape, grid.dtype)),
                       dy, x, grid))


_grid_sample.defvjp(lambda x, grid, config: (_grid_sample(x, grid, config), (x, grid)), _grid_sample_backward)


def grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=False):
    """torch.nn.functional.grid_sample on JAX arrays: input (N, C, H, W), grid (N, Hg, Wg, 2)."""
    ops.grid_sample(np.empty((0,) + input.shape[1:], input.dtype), np.empty((0,) + grid.shape[1:], grid.dtype),
                    mode, padding_mode, align_corners)  # checks the arguments while tracing
    return _grid_sample(input, grid, (mode, padding_mode, bool(align_corners)))


_interpolate = _single_input_op("interpolate", ops.interpolate,
                                lambda dy, x, *config: ops.interpolate_backward(dy, x.shape, *config))


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """torch.nn.functional.interpolate on JAX arrays (every mode fastconv.ops.interpolate has)."""
    return _interpolate(input, (_pair(size), _pair(scale_factor), mode, align_corners, recompute_scale_factor,
                                bool(antialias)))
