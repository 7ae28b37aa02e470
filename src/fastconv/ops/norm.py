"""Fused batch normalisation, torch.nn.functional.batch_norm's semantics, plus an optional
residual add and ReLU: relu(batch_norm(x) + residual). Also folding BN into a conv for inference.
"""
from typing import Optional, Tuple

import numpy as np

from fastconv._typing import Array
from fastconv.backend import array_module, device_of, empty, kernels
from fastconv.ops._checks import (check_ndim, contiguous, empty_in_layout, float_array, image_input, in_layout,
                                  same_dtype)


def _vector(a, name):
    return None if a is None else contiguous(float_array(a, name))


def _input_arrays(input, residual, weight, bias, running_mean, running_var):
    x = image_input(input)
    z = None if residual is None else in_layout(float_array(residual, "residual"), x)
    vectors = {"weight": weight, "bias": bias, "running_mean": running_mean, "running_var": running_var}
    vectors = {name: _vector(a, name) for name, a in vectors.items()}
    same_dtype({"input": x, "residual": z, **vectors})
    return x, z, vectors


def _check_eps(eps, training):
    """PyTorch's rule: eps > 0 in training, >= 0 in evaluation (a NaN passes, as in PyTorch)."""
    eps = float(eps)
    if training and eps <= 0:
        raise ValueError(f"eps: batch_norm eps must be positive during training, but got {eps}")
    if eps < 0:
        raise ValueError(f"eps: batch_norm eps must be non-negative, but got {eps}")


def batch_norm(input: Array, running_mean: Array, running_var: Array, weight: Optional[Array] = None,
               bias: Optional[Array] = None, training: bool = False, momentum: float = 0.1, eps: float = 1e-5,
               residual: Optional[Array] = None, relu: bool = False) -> Tuple[Array, Array, Array]:
    """y = relu?(batch_norm(input) + residual?) over (N, C, H, W), as torch.nn.functional.batch_norm.
    A channels_last input (NHWC memory, as torch's channels_last) is read in place and y is
    channels_last too; residual is read in input's layout (converted once if it differs).

    Training normalises with the batch mean and biased variance and, when running_mean /
    running_var are given, updates them in place with `momentum` (the variance unbiased). Eval
    normalises with the running statistics. Returns (y, mean, invstd): the statistics used,
    invstd = 1/sqrt(var + eps), which batch_norm_backward needs.
    """
    lib = kernels(input, running_mean, running_var, weight, bias, residual, op="batch_norm")
    _check_eps(eps, training)
    x, z, v = _input_arrays(input, residual, weight, bias, running_mean, running_var)
    for name, given in (("running_mean", running_mean), ("running_var", running_var)):
        if training and v[name] is not None and v[name] is not given:  # a copy would lose the update
            raise ValueError(f"{name}: expected a C-contiguous float32/float64 ndarray (updated in place)")
    y = empty_in_layout(x.shape, x.dtype, x)
    channels = x.shape[1]
    if training:
        mean, invstd = empty(channels, x.dtype, device_of(x)), empty(channels, x.dtype, device_of(x))
        lib.batch_norm_train_forward(x, z, v["weight"], v["bias"], v["running_mean"], v["running_var"], y,
                                     mean, invstd, float(momentum), float(eps), bool(relu))
        return y, mean, invstd
    if v["running_mean"] is None or v["running_var"] is None:
        raise ValueError("running_mean, running_var: required when training=False")
    lib.batch_norm_eval_forward(x, z, v["weight"], v["bias"], v["running_mean"], v["running_var"], y,
                                float(eps), bool(relu))
    invstd = (1.0 / array_module(x).sqrt(v["running_var"].astype(np.float64) + eps)).astype(x.dtype)
    return y, v["running_mean"].copy(), invstd


def batch_norm_backward(grad_output: Array, input: Array, mean: Array, invstd: Array, weight: Optional[Array] = None,
                        training: bool = True, output: Optional[Array] = None, relu: bool = False,
                        residual: bool = False) -> Tuple[Array, Optional[Array], Optional[Array], Optional[Array]]:
    """Gradients of batch_norm in one pass: (grad_input, grad_weight, grad_bias, grad_residual).

    mean, invstd: what batch_norm returned. relu=True needs the forward's `output` (its mask);
    grad_residual is None unless residual=True; grad_weight and grad_bias are None when weight
    is None (no affine parameters). grad_input and grad_residual come in input's layout
    (channels_last or NCHW); grad_output and output may be in either.
    """
    lib = kernels(grad_output, input, mean, invstd, weight, output, op="batch_norm_backward")
    if relu and output is None:
        raise ValueError("output: required when relu=True (the ReLU mask is read from it)")
    x = image_input(input)
    arrays = {"grad_output": grad_output, "output": output if relu else None}
    arrays = {n: None if a is None else in_layout(float_array(a, n), x) for n, a in arrays.items()}
    vectors = {n: _vector(a, n) for n, a in (("weight", weight), ("mean", mean), ("invstd", invstd))}
    same_dtype({"input": x, **arrays, **vectors})
    dx = empty_in_layout(x.shape, x.dtype, x)
    dz = empty_in_layout(x.shape, x.dtype, x) if residual else None
    dgamma, dbeta = empty(x.shape[1], x.dtype, device_of(x)), empty(x.shape[1], x.dtype, device_of(x))
    lib.batch_norm_backward(arrays["grad_output"], x, arrays["output"], vectors["weight"], vectors["mean"],
                            vectors["invstd"], bool(training), dx, dz, dgamma, dbeta)
    if weight is None:
        dgamma = dbeta = None
    return dx, dgamma, dbeta, dz


def fold_bn_into_conv(weight: Array, bias: Optional[Array], running_mean: Optional[Array], running_var: Optional[Array],
                      gamma: Optional[Array], beta: Optional[Array], eps: float = 1e-5) -> Tuple[Array, Array]:
    """(weight', bias') of the conv2d equal to conv2d followed by eval-mode batch_norm:
    w' = w * gamma / sqrt(var + eps) per output channel, b' = (b - mean) * that + beta.
    bias, gamma, beta may be None (0, 1, 0). Computed in float64, returned in weight's dtype."""
    w = float_array(weight, "weight")
    check_ndim(w, 4, "weight", "(K, C/groups, R, S)")
    k = w.shape[0]
    xp = array_module(w)

    def channel_vector(a, name, default):
        if a is None:
            return xp.full(k, default, np.float64)
        a = float_array(a, name)
        if a.shape != (k,):
            raise ValueError(f"{name}: expected shape ({k},), got {a.shape}")
        return a.astype(np.float64)

    mean, var = channel_vector(running_mean, "running_mean", 0.0), channel_vector(running_var, "running_var", 1.0)
    scale = channel_vector(gamma, "gamma", 1.0) / xp.sqrt(var + eps)
    folded_bias = (channel_vector(bias, "bias", 0.0) - mean) * scale + channel_vector(beta, "beta", 0.0)
    return (w * scale[:, None, None, None]).astype(w.dtype), folded_bias.astype(w.dtype)
