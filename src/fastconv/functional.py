"""Differentiable ops with torch.nn.functional's names and argument rules.

Each op is a Function (forward and backward side by side) over raw arrays, or a composition of
Tensor operations where that is already efficient. conv2d and linear run on the compiled
kernels; the numpy pooling and batch-norm sections are marked for swapping in compiled ones.
"""
import numpy as np

from fastconv import ops
from fastconv.autograd import Function, Tensor
from fastconv.autograd.backend import generator
from fastconv.ops.conv import _pair


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


# ---- pooling --------------------------------------------------------------------------------
# NUMPY POOLING, to be replaced by the compiled max_pool2d / avg_pool2d / adaptive_avg_pool2d
# kernels at merge: only the forward/backward bodies of MaxPool2d, AvgPool2d and
# AdaptiveAvgPool2d below call numpy; the public functions keep their signatures.

def _pool_geometry(shape, kernel_size, stride, padding, dilation):
    """Normalised (kernel, stride, padding, dilation, output size) with PyTorch's rules."""
    kernel, padding, dilation = _pair(kernel_size, "kernel_size"), _pair(padding, "padding"), _pair(dilation, "dilation")
    stride = kernel if stride is None else _pair(stride, "stride")
    if len(shape) != 4:
        raise ValueError(f"pooling: expected a 4-d input (N, C, H, W), got shape {shape}")
    if any(2 * p > k for p, k in zip(padding, kernel)):
        raise ValueError(f"pooling: padding {padding} must be at most half of kernel_size {kernel}")
    out = tuple((n + 2 * p - d * (k - 1) - 1) // s + 1
                for n, p, d, k, s in zip(shape[2:], padding, dilation, kernel, stride))
    if min(out) < 1:
        raise ValueError(f"pooling: input of shape {shape} is too small for kernel_size {kernel}")
    return kernel, stride, padding, dilation, out


def _window_taps(kernel, stride, dilation, out):
    """(tap, slices): for each kernel offset, the padded-input elements it reads for all outputs.
    Loops run over the kernel's taps (few), never over pixels."""
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            rows = slice(i * dilation[0], i * dilation[0] + stride[0] * (out[0] - 1) + 1, stride[0])
            cols = slice(j * dilation[1], j * dilation[1] + stride[1] * (out[1] - 1) + 1, stride[1])
            yield i * kernel[1] + j, (Ellipsis, rows, cols)


def _pad(x, padding, value):
    (ph, pw) = padding
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def _crop(padded, padding):
    (ph, pw) = padding
    return padded[:, :, ph:padded.shape[2] - ph, pw:padded.shape[3] - pw]


class MaxPool2d(Function):
    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, dilation):
        geometry = _pool_geometry(x.shape, kernel_size, stride, padding, dilation)
        padded = _pad(x, geometry[2], -np.inf)
        best = np.full(x.shape[:2] + geometry[4], -np.inf, dtype=x.dtype)
        best_tap = np.zeros(best.shape, dtype=np.int32)
        for tap, window in _window_taps(geometry[0], geometry[1], geometry[3], geometry[4]):
            better = padded[window] > best  # strict: the first maximum wins, as in PyTorch
            best = np.where(better, padded[window], best)
            best_tap[better] = tap
        ctx.geometry, ctx.padded_shape = geometry, padded.shape
        ctx.save_for_backward(best_tap)
        return best

    @staticmethod
    def backward(ctx, grad):
        (best_tap,) = ctx.saved_arrays
        kernel, stride, padding, dilation, out = ctx.geometry
        grad_padded = np.zeros(ctx.padded_shape, dtype=grad.dtype)
        for tap, window in _window_taps(kernel, stride, dilation, out):
            grad_padded[window] += np.where(best_tap == tap, grad, 0)
        return _crop(grad_padded, padding)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1):
    return MaxPool2d.apply(input, kernel_size, stride, padding, dilation)


class AvgPool2d(Function):
    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, count_include_pad):
        kernel, stride, padding, dilation, out = _pool_geometry(x.shape, kernel_size, stride, padding, 1)
        taps = list(_window_taps(kernel, stride, dilation, out))
        padded = _pad(x, padding, 0)
        total = sum(padded[window] for _, window in taps)
        if count_include_pad:
            divisor = kernel[0] * kernel[1]
        else:  # count only the real input elements under each window
            inside = _pad(np.ones((1, 1) + x.shape[2:], dtype=x.dtype), padding, 0)
            divisor = sum(inside[window] for _, window in taps)
        ctx.taps, ctx.divisor, ctx.padding, ctx.padded_shape = taps, divisor, padding, padded.shape
        return total / divisor

    @staticmethod
    def backward(ctx, grad):
        grad_padded = np.zeros(ctx.padded_shape, dtype=grad.dtype)
        share = grad / ctx.divisor
        for _, window in ctx.taps:
            grad_padded[window] += share
        return _crop(grad_padded, ctx.padding)


def avg_pool2d(input, kernel_size, stride=None, padding=0, count_include_pad=True):
    return AvgPool2d.apply(input, kernel_size, stride, padding, count_include_pad)


def _adaptive_pool_matrix(in_size, out_size, dtype):
    """(out, in) averaging matrix over PyTorch's bins [floor(i*in/out), ceil((i+1)*in/out))."""
    i = np.arange(out_size)
    starts, ends = (i * in_size) // out_size, -((-(i + 1) * in_size) // out_size)
    inside = (np.arange(in_size) >= starts[:, None]) & (np.arange(in_size) < ends[:, None])
    return (inside / (ends - starts)[:, None]).astype(dtype)


class AdaptiveAvgPool2d(Function):
    @staticmethod
    def forward(ctx, x, output_size):
        if x.ndim != 4:
            raise ValueError(f"adaptive_avg_pool2d: expected a 4-d input (N, C, H, W), got shape {x.shape}")
        out_h, out_w = _pair(output_size, "output_size")
        ctx.rows = _adaptive_pool_matrix(x.shape[2], out_h, x.dtype)
        ctx.cols = _adaptive_pool_matrix(x.shape[3], out_w, x.dtype)
        return np.einsum("ph,nchw,qw->ncpq", ctx.rows, x, ctx.cols, optimize=True)

    @staticmethod
    def backward(ctx, grad):
        return np.einsum("ph,ncpq,qw->nchw", ctx.rows, grad, ctx.cols, optimize=True)


def adaptive_avg_pool2d(input, output_size):
    return AdaptiveAvgPool2d.apply(input, output_size)


# ---- batch normalisation --------------------------------------------------------------------
# NUMPY BATCH NORM, to be replaced by the compiled fused batchnorm kernel at merge: only the
# forward/backward bodies of BatchNorm below call numpy.

class BatchNorm(Function):
    """Normalises over every axis but the channel axis 1: (N, C), (N, C, L) or (N, C, H, W)."""

    @staticmethod
    def forward(ctx, x, running_mean, running_var, weight, bias, training, momentum, eps):
        axes = (0,) + tuple(range(2, x.ndim))
        channel_shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
        if training:
            count = x.size // x.shape[1]
            if count < 2:
                raise ValueError(f"batch_norm: expected more than 1 value per channel when training, "
                                 f"got input of shape {x.shape}")
            mean, var = x.mean(axis=axes), x.var(axis=axes)
            if running_mean is not None:  # running var is unbiased, as in PyTorch
                running_mean += momentum * (mean - running_mean)
                running_var += momentum * (var * count / (count - 1) - running_var)
        else:
            mean, var = running_mean, running_var
        inv_std = (1 / np.sqrt(var + eps)).reshape(channel_shape)
        normalized = (x - mean.reshape(channel_shape)) * inv_std
        ctx.axes, ctx.training = axes, training
        ctx.save_for_backward(normalized, inv_std, weight)
        out = normalized if weight is None else normalized * weight.reshape(channel_shape)
        return out if bias is None else out + bias.reshape(channel_shape)

    @staticmethod
    def backward(ctx, grad):
        normalized, inv_std, weight = ctx.saved_arrays
        need_weight, need_bias = ctx.needs_input_grad[3:5]
        grad_normalized = grad if weight is None else grad * weight.reshape(inv_std.shape)
        if ctx.training:  # the batch statistics depend on x too
            mean_of = lambda a: a.mean(axis=ctx.axes, keepdims=True)  # noqa: E731
            grad_x = inv_std * (grad_normalized - mean_of(grad_normalized)
                                - normalized * mean_of(grad_normalized * normalized))
        else:
            grad_x = grad_normalized * inv_std
        grad_weight = (grad * normalized).sum(axis=ctx.axes) if need_weight else None
        grad_bias = grad.sum(axis=ctx.axes) if need_bias else None
        return grad_x, None, None, grad_weight, grad_bias


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    if not training and running_mean is None:
        raise ValueError("batch_norm: evaluation mode needs running_mean and running_var")
    return BatchNorm.apply(input, running_mean, running_var, weight, bias, training, momentum, eps)


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
