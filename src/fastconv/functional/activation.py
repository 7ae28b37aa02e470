"""Differentiable ops with torch.nn.functional's names and argument rules.

Each op is a Function (forward and backward side by side) over raw arrays, or a composition of
Tensor operations where that is already efficient. Convolutions, pooling, batch norm and the
sampling ops (roi_pool, roi_align, grid_sample, affine_grid, interpolate) run the compiled
kernels of fastconv.ops; torchvision.ops' names and arguments for the roi ops.
"""
import numpy as np

from fastconv import ops
from fastconv.autograd import Function, Tensor
from fastconv.autograd.backend import generator
from fastconv.ops._checks import int_pair as _pair
from fastconv.ops._roi import roi_boxes as _roi_boxes


def _array(x):
    return x.data if isinstance(x, Tensor) else np.asarray(x)


def _check_reduction(reduction):
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction: expected 'mean', 'sum' or 'none', got {reduction!r}")


def _reduce(loss, reduction):
    _check_reduction(reduction)
    return loss.mean() if reduction == "mean" else loss.sum() if reduction == "sum" else loss


# ---- convolution and linear (compiled kernels) ---------------------------------------------

class Conv2d(Function):
    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation, groups):
        ctx.args = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
        ctx.save_for_backward(x, weight)
        return ops.conv2d(x, weight, bias=bias, **ctx.args)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_arrays
        need_x, need_weight, need_bias = ctx.needs_input_grad[:3]
        if need_x:
            return ops.conv2d_backward(x, weight, grad, **ctx.args, needs_bias=need_bias)
        # e.g. the first layer: skip the input gradient, about half of the backward's work
        grad_weight = ops.conv2d_weight(x, weight.shape, grad, **ctx.args) if need_weight else None
        return None, grad_weight, grad.sum(axis=(0, 2, 3)) if need_bias else None


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return Conv2d.apply(input, weight, bias, stride, padding, dilation, groups)


class ConvTranspose2d(Function):
    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, output_padding, groups, dilation):
        ctx.args = dict(stride=stride, padding=padding, output_padding=output_padding, groups=groups,
                        dilation=dilation)
        ctx.save_for_backward(x, weight)
        return ops.conv_transpose2d(x, weight, bias, **ctx.args)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_arrays
        need_bias = ctx.needs_input_grad[2]
        return ops.conv_transpose2d_backward(x, weight, grad, **ctx.args, needs_bias=need_bias)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """torch.nn.functional.conv_transpose2d: weight (C_in, C_out/groups, R, S)."""
    return ConvTranspose2d.apply(input, weight, bias, stride, padding, output_padding, groups, dilation)


class Linear(Function):
    """y = x W^T + b in one GEMM call plus an in-place bias add; x may have leading batch dims."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        if weight.ndim != 2 or x.ndim < 1 or x.shape[-1] != weight.shape[1]:
            raise ValueError(f"linear: input of shape {x.shape} does not match weight of shape "
                             f"{weight.shape} (need input.shape[-1] == weight.shape[1])")
        rows = x.reshape(-1, x.shape[-1])
        y = ops.matmul(rows, weight.T)
        if bias is not None:
            y += bias
        ctx.save_for_backward(rows, weight)
        ctx.input_shape = x.shape
        return y.reshape(x.shape[:-1] + (weight.shape[0],))

    @staticmethod
    def backward(ctx, grad):
        rows, weight = ctx.saved_arrays
        need_x, need_weight, need_bias = ctx.needs_input_grad
        grad_rows = np.ascontiguousarray(grad).reshape(-1, weight.shape[0])
        grad_x = ops.matmul(grad_rows, weight).reshape(ctx.input_shape) if need_x else None
        grad_weight = ops.matmul(grad_rows.T, rows) if need_weight else None
        return grad_x, grad_weight, grad_rows.sum(axis=0) if need_bias else None


def linear(input, weight, bias=None):
    return Linear.apply(input, weight, bias)


# ---- activations ----------------------------------------------------------------------------

def relu(input):
    return input.relu()


def sigmoid(input):
    return input.sigmoid()


def tanh(input):
    return input.tanh()


class LeakyReLU(Function):
    @staticmethod
    def forward(ctx, x, negative_slope):
        ctx.slope = np.where(x > 0, 1, negative_slope).astype(x.dtype)
        return x * ctx.slope

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.slope


def leaky_relu(input, negative_slope=0.01):
    return LeakyReLU.apply(input, negative_slope)


class ELU(Function):
    @staticmethod
    def forward(ctx, x, alpha):
        negative_part = alpha * np.expm1(np.minimum(x, 0))  # clipped: no overflow for large x
        ctx.save_for_backward(x, negative_part)
        ctx.alpha = alpha
        return np.where(x > 0, x, negative_part)

    @staticmethod
    def backward(ctx, grad):
        x, negative_part = ctx.saved_arrays
        return grad * np.where(x > 0, 1, negative_part + ctx.alpha)


def elu(input, alpha=1.0):
    return ELU.apply(input, alpha)


def _log_softmax_array(x, axis):
    shifted = x - x.max(axis=axis, keepdims=True)  # exp never overflows
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


class LogSoftmax(Function):
    output = staticmethod(lambda log_probs: log_probs)

    @classmethod
    def forward(cls, ctx, x, dim):
        out = cls.output(_log_softmax_array(x, dim))
        ctx.save_for_backward(out)
        ctx.dim = dim
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_arrays
        return grad - np.exp(out) * grad.sum(axis=ctx.dim, keepdims=True)


class Softmax(LogSoftmax):
    output = staticmethod(np.exp)

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_arrays
        return out * (grad - (grad * out).sum(axis=ctx.dim, keepdims=True))


def softmax(input, dim):
    return Softmax.apply(input, dim)


def log_softmax(input, dim):
    return LogSoftmax.apply(input, dim)


class Dropout(Function):
    @staticmethod
    def forward(ctx, x, p):
        keep = generator().random(x.shape) >= p
        # inverted dropout: scale at training time so evaluation is the identity
        ctx.mask = keep.astype(x.dtype) * (0 if p == 1 else 1 / (1 - p))
        return x * ctx.mask

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.mask


def dropout(input, p=0.5, training=True):
    if not 0 <= p <= 1:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    return Dropout.apply(input, p) if training and p > 0 else input


def embedding(input, weight):
    """Rows of weight (num_embeddings, dim) picked by the integer array input."""
    indices = _array(input)
    if indices.dtype.kind not in "iu":
        raise TypeError(f"embedding: input must hold integer indices, got dtype {indices.dtype}")
    return weight[indices]


# ---- pooling: the compiled kernels of ops/pooling.py ------------------------------------------

class MaxPool2d(Function):
    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, dilation, ceil_mode):
        y, indices = ops.max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices=True)
        ctx.input_shape = x.shape
        ctx.save_for_backward(indices)
        return y

    @staticmethod
    def backward(ctx, grad):
        (indices,) = ctx.saved_arrays
        return ops.max_pool2d_backward(grad, ctx.input_shape, indices)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    return MaxPool2d.apply(input, kernel_size, stride, padding, dilation, ceil_mode)


class AvgPool2d(Function):
    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, ceil_mode, count_include_pad):
        ctx.input_shape, ctx.args = x.shape, (kernel_size, stride, padding, ceil_mode, count_include_pad)
        return ops.avg_pool2d(x, *ctx.args)

    @staticmethod
    def backward(ctx, grad):
        return ops.avg_pool2d_backward(grad, ctx.input_shape, *ctx.args)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    return AvgPool2d.apply(input, kernel_size, stride, padding, ceil_mode, count_include_pad)


class AdaptiveAvgPool2d(Function):
    @staticmethod
    def forward(ctx, x, output_size):
        ctx.input_shape = x.shape
        return ops.adaptive_avg_pool2d(x, output_size)

    @staticmethod
    def backward(ctx, grad):
        return ops.adaptive_avg_pool2d_backward(grad, ctx.input_shape)


def adaptive_avg_pool2d(input, output_size):
    return AdaptiveAvgPool2d.apply(input, output_size)


# ---- batch normalisation: the fused kernel of ops/batch_norm.py ------------------------------

class BatchNorm(Function):
    """relu?(batch_norm(x) + residual?) over every axis but the channel axis 1: (N, C), (N, C, L)
    or (N, C, H, W). The compiled kernel works on (N, C, H, W); lower ranks are viewed as such.
    The residual add and the ReLU run inside the normalising pass, and the backward reads the
    ReLU mask from the saved output: no intermediate array in either direction."""

    @staticmethod
    def forward(ctx, x, running_mean, running_var, weight, bias, residual, training, momentum, eps, relu):
        as_4d = x.reshape(x.shape + (1,) * (4 - x.ndim))
        z = None if residual is None else residual.reshape(as_4d.shape)
        y, mean, invstd = ops.batch_norm(as_4d, running_mean, running_var, weight, bias, training, momentum, eps,
                                         residual=z, relu=relu)
        ctx.training, ctx.relu = training, relu
        ctx.save_for_backward(as_4d, mean, invstd, weight, y if relu else None)
        return y.reshape(x.shape)

    @staticmethod
    def backward(ctx, grad):
        x, mean, invstd, weight, y = ctx.saved_arrays
        need_weight, need_bias, need_residual = ctx.needs_input_grad[3:6]
        grad_x, grad_weight, grad_bias, grad_residual = ops.batch_norm_backward(
            grad.reshape(x.shape), x, mean, invstd, weight, ctx.training, output=y, relu=ctx.relu,
            residual=need_residual)
        return (grad_x.reshape(grad.shape), None, None, grad_weight if need_weight else None,
                grad_bias if need_bias else None, grad_residual.reshape(grad.shape) if need_residual else None)


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5, *, residual=None, relu=False):
    """torch.nn.functional.batch_norm, plus two keyword-only fusions (off by default, so a
    PyTorch call means the same here): relu(batch_norm(input) + residual), the tail of a ResNet
    block, in one pass over memory. `residual` has input's shape and gets a gradient."""
    if not training and running_mean is None:
        raise ValueError("batch_norm: evaluation mode needs running_mean and running_var")
    if residual is not None and tuple(residual.shape) != tuple(input.shape):
        raise ValueError(f"batch_norm: residual of shape {tuple(residual.shape)} does not match input of shape "
                         f"{tuple(input.shape)}")
    return BatchNorm.apply(input, running_mean, running_var, weight, bias, residual, training, momentum, eps,
                           bool(relu))


# ---- sampling: roi_pool, roi_align, grid_sample, affine_grid, interpolate --------------------

def _roi_array(boxes, dtype):
    """torchvision's boxes, a (K, 5) array/Tensor or a list of (Ki, 4) per image, as the (K, 5)
    array the kernels take. Boxes get no gradient (as in torchvision), so they leave the graph here."""
    if isinstance(boxes, (list, tuple)):
        return _roi_boxes([_array(b) for b in boxes], dtype)
    return _roi_boxes(_array(boxes), dtype)


class RoIPool(Function):
    @staticmethod
    def forward(ctx, x, rois, output_size, spatial_scale):
        y, argmax = ops.roi_pool(x, rois, output_size, spatial_scale)
        ctx.input_shape = x.shape
        ctx.save_for_backward(argmax)
        return y

    @staticmethod
    def backward(ctx, grad):
        (argmax,) = ctx.saved_arrays
        return ops.roi_pool_backward(grad, argmax, ctx.input_shape), None


def roi_pool(input, boxes, output_size, spatial_scale=1.0):
    """torchvision.ops.roi_pool: input (N, C, H, W), boxes (K, 5) [batch_index, x1, y1, x2, y2] or a
    list of (Ki, 4) per image -> (K, C, PH, PW)."""
    return RoIPool.apply(input, _roi_array(boxes, input.dtype), output_size, spatial_scale)


class RoIAlign(Function):
    @staticmethod
    def forward(ctx, x, rois, output_size, spatial_scale, sampling_ratio, aligned):
        ctx.input_shape, ctx.args = x.shape, (spatial_scale, sampling_ratio, aligned)
        ctx.save_for_backward(rois)
        return ops.roi_align(x, rois, output_size, *ctx.args)

    @staticmethod
    def backward(ctx, grad):
        (rois,) = ctx.saved_arrays
        return ops.roi_align_backward(grad, rois, ctx.input_shape, *ctx.args), None


def roi_align(input, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    """torchvision.ops.roi_align: boxes as in roi_pool; sampling_ratio <= 0 adapts to the box size."""
    return RoIAlign.apply(input, _roi_array(boxes, input.dtype), output_size, spatial_scale, sampling_ratio,
                          aligned)


class GridSample(Function):
    @staticmethod
    def forward(ctx, x, grid, mode, padding_mode, align_corners):
        ctx.args = dict(mode=mode, padding_mode=padding_mode, align_corners=align_corners)
        ctx.save_for_backward(x, grid)
        return ops.grid_sample(x, grid, **ctx.args)

    @staticmethod
    def backward(ctx, grad):
        x, grid = ctx.saved_arrays
        need_x, need_grid = ctx.needs_input_grad[:2]
        return ops.grid_sample_backward(grad, x, grid, **ctx.args, needs_input_grad=need_x,
                                        needs_grid_grad=need_grid)


def grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=None):
    """torch.nn.functional.grid_sample (4-d): gradients for input and grid. align_corners=None
    means False, PyTorch's default."""
    return GridSample.apply(input, grid, mode, padding_mode, bool(align_corners))


class AffineGrid(Function):
    @staticmethod
    def forward(ctx, theta, size, align_corners):
        ctx.size, ctx.align_corners = size, align_corners
        return ops.affine_grid(theta, size, align_corners)

    @staticmethod
    def backward(ctx, grad):
        return ops.affine_grid_backward(grad, ctx.size, ctx.align_corners)


def affine_grid(theta, size, align_corners=None):
    """torch.nn.functional.affine_grid (4-d): theta (N, 2, 3), size (N, C, H, W) -> (N, H, W, 2)."""
    return AffineGrid.apply(theta, tuple(size), bool(align_corners))


class Interpolate(Function):
    @staticmethod
    def forward(ctx, x, size, scale_factor, mode, align_corners, recompute_scale_factor):
        ctx.input_shape = x.shape
        ctx.args = dict(size=size, scale_factor=scale_factor, mode=mode, align_corners=align_corners,
                        recompute_scale_factor=recompute_scale_factor)
        return ops.interpolate(x, **ctx.args)

    @staticmethod
    def backward(ctx, grad):
        return ops.interpolate_backward(grad, ctx.input_shape, **ctx.args)


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None):
    """torch.nn.functional.interpolate for 4-d input, modes "nearest" and "bilinear"."""
    return Interpolate.apply(input, size, scale_factor, mode, align_corners, recompute_scale_factor)


# ---- losses ---------------------------------------------------------------------------------

class CrossEntropy(Function):
    """Stable log-softmax and negative log-likelihood in one pass; class axis 1."""

    @staticmethod
    def forward(ctx, logits, target, ignore_index, reduction):
        valid = target != ignore_index
        safe_target = np.where(valid, target, 0)[:, None]
        if safe_target.min() < 0 or safe_target.max() >= logits.shape[1]:
            raise ValueError(f"cross_entropy: target values must be in [0, {logits.shape[1]}) "
                             f"or equal ignore_index={ignore_index}")
        log_probs = _log_softmax_array(logits, axis=1)
        losses = -np.take_along_axis(log_probs, safe_target, axis=1)[:, 0] * valid
        ctx.save_for_backward(log_probs, safe_target, valid)
        ctx.scale = 1 / valid.sum() if reduction == "mean" else 1
        return losses if reduction == "none" else np.asarray(losses.sum() * ctx.scale, logits.dtype)

    @staticmethod
    def backward(ctx, grad):
        log_probs, safe_target, valid = ctx.saved_arrays
        grad_logits = np.exp(log_probs)
        picked = np.take_along_axis(grad_logits, safe_target, axis=1)
        np.put_along_axis(grad_logits, safe_target, picked - 1, axis=1)
        return grad_logits * np.expand_dims(grad * valid * ctx.scale, 1).astype(log_probs.dtype)


def cross_entropy(input, target, ignore_index=-100, reduction="mean"):
    """input (N, C) or (N, C, d1, ...) logits; target (N,) or (N, d1, ...) class indices."""
    target = _array(target)
    if input.ndim < 2 or target.shape != input.shape[:1] + input.shape[2:]:
        raise ValueError(f"cross_entropy: input of shape {input.shape} and target of shape "
                         f"{target.shape} do not match (need input (N, C, ...) and target (N, ...))")
    if target.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: target must hold class indices, got dtype {target.dtype}")
    _check_reduction(reduction)
    return CrossEntropy.apply(input, target, ignore_index, reduction)


def multi_margin_loss(input, target, p=1, margin=1.0, reduction="mean"):
    """Multiclass SVM hinge: sum over j != y of max(0, margin - x[y] + x[j])**p, divided by C."""
    target = _array(target)
    if input.ndim != 2 or target.shape != input.shape[:1]:
        raise ValueError(f"multi_margin_loss: input of shape {input.shape} and target of shape "
                         f"{target.shape} do not match (need (N, C) and (N,))")
    if p not in (1, 2):
        raise ValueError(f"multi_margin_loss: p must be 1 or 2, got {p}")
    rows = np.arange(len(target))
    correct = input[rows, target].reshape(-1, 1)
    other_class = np.ones(input.shape, dtype=input.dtype)
    other_class[rows, target] = 0
    hinge = (input - correct + margin).relu() * other_class
    return _reduce((hinge ** p).sum(axis=1) / input.shape[1], reduction)


def _check_same_shape(name, input, target):
    if input.shape != target.shape:
        raise ValueError(f"{name}: input of shape {input.shape} and target of shape {target.shape} differ")


def mse_loss(input, target, reduction="mean"):
    _check_same_shape("mse_loss", input, target)
    return _reduce((input - target) ** 2, reduction)


def l1_loss(input, target, reduction="mean"):
    _check_same_shape("l1_loss", input, target)
    return _reduce((input - target).abs(), reduction)
