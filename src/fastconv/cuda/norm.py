"""Fused batch norm on CUDA (csrc/norm/cuda/norm.cu): fastconv._C's batch_norm_train_forward,
batch_norm_eval_forward and batch_norm_backward, with their arguments and rules, for CuPy arrays.

Statistics are reduced one channel per block in double precision, the same way every run; the
normalisation and the gradient run one thread per element."""
import numpy as np

from fastconv import backend
from fastconv.cuda import _kernel_args as args
from fastconv.cuda import loader


def _channel_scratch(count, like):
    """`count` doubles on `like`'s device: per-channel statistics or coefficients."""
    return backend.empty(count, np.float64, backend.device_of(like))


def _views(x, residual, weight, bias, out):
    """x and the forward's other arrays checked against x's shape; (x, z, gamma, beta, dims)."""
    x = args.float_input(x, "input")
    dims = args.nchw_shape(x, "input")
    z = None if residual is None else args.float_input(residual, "residual", x.dtype)
    if z is not None and tuple(z.shape) != dims:
        raise ValueError(f"residual: expected shape {dims}, got {tuple(z.shape)}")
    args.output(out, "out", dims, x.dtype)
    gamma = args.vector_input(weight, "weight", dims[1], x.dtype)
    beta = args.vector_input(bias, "bias", dims[1], x.dtype)
    return x, args.NULL if z is None else z, gamma, beta, dims


def _state_vector(array, name, channels, dtype):
    """A per-channel array the kernel writes in place (running statistics, saved statistics)."""
    return args.NULL if array is None else args.output(array, name, (channels,), dtype)


def _apply(x, z, gamma, beta, mean, invstd, relu, out, dims):
    n, c, h, w = dims
    args.launch("norm", "batch_norm_apply", x.size, (c, h * w),
                (x, z, gamma, beta, mean, invstd, args.flag(relu), out))


def batch_norm_train_forward(input, residual, weight, bias, running_mean, running_var, out, save_mean, save_invstd,
                             momentum, eps, relu):
    x, z, gamma, beta, dims = _views(input, residual, weight, bias, out)
    n, c, h, w = dims
    if n * h * w <= 1:  # PyTorch: "Expected more than 1 value per channel when training"
        raise ValueError(f"input: expected more than 1 value per channel when training, got N={n} and H*W={h * w}")
    rm = _state_vector(running_mean, "running_mean", c, x.dtype)
    rv = _state_vector(running_var, "running_var", c, x.dtype)
    sm = _state_vector(save_mean, "save_mean", c, x.dtype)
    si = _state_vector(save_invstd, "save_invstd", c, x.dtype)
    mean, invstd = _channel_scratch(c, x), _channel_scratch(c, x)
    loader.launch_blocks(args.kernel("norm", "batch_norm_stats", x.dtype), c,
                         (x, *args.int64s(n, c, h * w), np.float64(momentum), np.float64(eps), rm, rv, sm, si, mean,
                          invstd))
    _apply(x, z, gamma, beta, mean, invstd, relu, out, dims)


def batch_norm_eval_forward(input, residual, weight, bias, running_mean, running_var, out, eps, relu):
    x, z, gamma, beta, dims = _views(input, residual, weight, bias, out)
    c = dims[1]
    for array, name in ((running_mean, "running_mean"), (running_var, "running_var")):
        if array is None:
            raise ValueError(f"{name}: required in evaluation")
    rm = args.vector_input(running_mean, "running_mean", c, x.dtype)
    rv = args.vector_input(running_var, "running_var", c, x.dtype)
    mean, invstd = _channel_scratch(c, x), _channel_scratch(c, x)
    loader.launch(args.kernel("norm", "batch_norm_eval_stats", x.dtype), c,
                  (rm, rv, np.int64(c), np.float64(eps), mean, invstd))
    _apply(x, z, gamma, beta, mean, invstd, relu, out, dims)


def batch_norm_backward(grad_output, input, output, weight, mean, invstd, training, grad_input, grad_residual,
                        grad_weight, grad_bias):
    x = args.float_input(input, "input")
    dims = args.nchw_shape(x, "input")
    n, c, h, w = dims
    arrays = {}
    for name, array in (("grad_output", grad_output), ("output", output)):
        if array is not None:
            arrays[name] = args.float_input(array, name, x.dtype)
            if tuple(arrays[name].shape) != dims:
                raise ValueError(f"{name}: expected shape {dims}, got {tuple(arrays[name].shape)}")
    if "grad_output" not in arrays:
        raise ValueError("grad_output: required")
    gamma = args.vector_input(weight, "weight", c, x.dtype)
    saved = [args.vector_input(v, name, c, x.dtype) for v, name in ((mean, "mean"), (invstd, "invstd"))]
    if any(v is args.NULL for v in saved):
        raise ValueError("mean, invstd: required (what the forward returned)")
    args.output(grad_input, "grad_input", dims, x.dtype)
    dz = args.optional_output(grad_residual, "grad_residual", dims, x.dtype)
    dgamma = args.output(grad_weight, "grad_weight", (c,), x.dtype)
    dbeta = args.output(grad_bias, "grad_bias", (c,), x.dtype)
    y = arrays.get("output", args.NULL)
    coefficients = _channel_scratch(3 * c, x)
    loader.launch_blocks(args.kernel("norm", "batch_norm_grad_sums", x.dtype), c,
                         (arrays["grad_output"], x, y, gamma, *saved, args.flag(training), *args.int64s(n, c, h * w),
                          dgamma, dbeta, coefficients))
    args.launch("norm", "batch_norm_grad_input", x.size, (c, h * w),
                (arrays["grad_output"], x, y, saved[0], coefficients, grad_input, dz))
