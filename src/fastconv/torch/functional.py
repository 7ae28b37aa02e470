"""fastconv's kernels as PyTorch operators, with torch.nn.functional's (and torchvision.ops')
names and arguments.

Each kernel family is a torch operator in the namespace "fastconv" (torch.ops.fastconv.conv2d,
...; defined on torch.library by fastconv.torch._library). An op's implementation hands its
tensors' memory to fastconv.ops without a copy and wraps the array the kernel wrote as the result
tensor, again without a copy (fastconv.torch._arrays). Each op registers

  - a fake implementation (the output's shape and dtype from the arguments alone), so that
    torch.compile(fullgraph=True) traces through it without a graph break;
  - its autograd formula (setup_context saves what the backward needs; the backward is itself a
    torch operator over fastconv's backward kernel), so gradients flow in eager mode and in compiled
    training steps alike.

Layouts are fastconv.ops': a channels_last tensor (torch.channels_last memory format) is read in
place, and the result is channels_last where the kernel writes it so (fastconv.torch._arrays);
the fake implementations describe the same strides, and a backward gives the input gradient in
the forward input's layout.

Window arguments are normalised here, with fastconv.ops' checks and messages, before they reach
an op, whose schema takes them as lists of ints.
"""
import functools
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from fastconv._typing import IntPair
from fastconv.functional._unbatched import run_batched
# The ops' family modules, not fastconv.ops' exports: those also take other frameworks' arrays
# (a check of every argument on each call), and the kernels here are only ever given numpy arrays.
from fastconv.ops import conv as _conv_ops
from fastconv.ops import conv_transpose as _conv_transpose_ops
from fastconv.ops import norm as _norm_ops
from fastconv.ops import pool as _pool_ops
from fastconv.ops import roi as _roi_ops
from fastconv.ops import sampling as _sampling_ops
from fastconv.ops._checks import an_int, positive_pair, window_pair
from fastconv.ops.conv import conv2d_arguments
from fastconv.ops.sampling import interpolate_arguments
from fastconv.torch import _library
from fastconv.torch._arrays import (as_array, as_optional_array, as_tensor, as_tensor_or_empty, empty_image,
                                    in_layout_of, is_channels_last)


def _op(name):
    """Decorates an op's kernel function: the op fastconv::<name> (fastconv.torch._library)."""
    return functools.partial(_library.define, name)


def _pair(value, name):
    return list(window_pair(value, name))


_register = _library.register


def _shape(tensor):
    return list(tensor.shape)


def _empty_in_layout_of(like, shape):
    """A fake's result for a kernel that writes in like's layout (channels_last or contiguous)."""
    return empty_image(like, shape, is_channels_last(like))


def _unbatched_as_batch_of_one(function):
    """torch's rule for conv2d, conv_transpose2d and the 2-d poolings: a (C, H, W) input is a
    batch of one, and the batch axis is dropped from the result."""
    @functools.wraps(function)
    def call(input, *args, **kwargs):
        return run_batched(function, input, *args, **kwargs)
    return call


# ---- conv2d ---------------------------------------------------------------------------------------

def _conv_padding(padding, same):
    return "same" if same else padding


@_op("conv2d")
def _conv2d(input: Tensor, weight: Tensor, bias: Optional[Tensor], stride: List[int], padding: List[int],
            dilation: List[int], groups: int, same: bool, algo: str) -> Tensor:
    return as_tensor(_conv_ops.conv2d(as_array(input, "input"), as_array(weight, "weight"),
                                      as_optional_array(bias, "bias"), stride, _conv_padding(padding, same),
                                      dilation, groups, algo=algo))


@_op("conv2d_input")
def _conv2d_input(grad_output: Tensor, weight: Tensor, input_size: List[int], stride: List[int],
                  padding: List[int], dilation: List[int], groups: int, same: bool, algo: str) -> Tensor:
    return as_tensor(_conv_ops.conv2d_input(input_size, as_array(weight, "weight"),
                                            as_array(grad_output, "grad_output"), stride,
                                            _conv_padding(padding, same), dilation, groups, algo=algo))


@_op("conv2d_weight")
def _conv2d_weight(grad_output: Tensor, input: Tensor, weight_size: List[int], stride: List[int],
                   padding: List[int], dilation: List[int], groups: int, same: bool, algo: str) -> Tensor:
    return as_tensor(_conv_ops.conv2d_weight(as_array(input, "input"), weight_size,
                                             as_array(grad_output, "grad_output"), stride,
                                             _conv_padding(padding, same), dilation, groups, algo=algo))


@_op("conv2d_add_relu")
def _conv2d_add_relu(input: Tensor, weight: Tensor, bias: Optional[Tensor], residual: Optional[Tensor],
                     stride: List[int], padding: List[int], dilation: List[int], groups: int, same: bool, algo: str,
                     relu: bool) -> Tensor:
    return as_tensor(_conv_ops.conv2d(as_array(input, "input"), as_array(weight, "weight"),
                                      as_optional_array(bias, "bias"), stride, _conv_padding(padding, same),
                                      dilation, groups, algo=algo, relu=relu,
                                      residual=as_optional_array(residual, "residual")))


def _conv2d_output_shape(input_shape, weight_shape, stride, padding, dilation, groups, same):
    stride, begin, end, dilation, _ = conv2d_arguments(tuple(weight_shape), stride, _conv_padding(padding, same),
                                                       dilation, groups)
    size = [(n + b + e - d * (k - 1) - 1) // s + 1
            for n, b, e, d, k, s in zip(input_shape[2:], begin, end, dilation, weight_shape[2:], stride)]
    return [input_shape[0], weight_shape[0], *size]


def _conv2d_fake(input, weight, bias, stride, padding, dilation, groups, same, algo):
    return _empty_in_layout_of(input, _conv2d_output_shape(input.shape, weight.shape, stride, padding, dilation,
                                                           groups, same))


def _save_input_and_weight(ctx, inputs, output):
    """setup_context of the (input, weight, bias, *arguments) ops: conv2d and conv_transpose2d."""
    input, weight, _, *ctx.arguments = inputs
    ctx.save_for_backward(input, weight)


def _conv2d_gradients(ctx, grad, input, weight):
    """(grad_input, grad_weight, grad_bias) of conv2d(input, weight, bias, *ctx.arguments) for the
    output's gradient `grad`, each None unless ctx asks for it (its first three inputs)."""
    need_input, need_weight, need_bias = ctx.needs_input_grad[:3]
    grad = in_layout_of(grad, input)  # both gradient kernels then read it in place, and grad_input has input's layout
    grad_input = _conv2d_input(grad, weight, _shape(input), *ctx.arguments) if need_input else None
    grad_weight = _conv2d_weight(grad, input, _shape(weight), *ctx.arguments) if need_weight else None
    grad_bias = grad.sum((0, 2, 3)) if need_bias else None
    return grad_input, grad_weight, grad_bias


def _conv2d_backward(ctx, grad):
    return _conv2d_gradients(ctx, grad, *ctx.saved_tensors) + (None,) * 6


_register(_conv2d, _conv2d_fake, _save_input_and_weight, _conv2d_backward)


def _save_input_weight_and_output(ctx, inputs, output):
    """setup_context of conv2d_add_relu: the output too, where ReLU's gradient reads its mask."""
    input, weight, _, _, *arguments = inputs
    *ctx.arguments, ctx.relu = arguments
    ctx.save_for_backward(input, weight, output if ctx.relu else None)


def _conv2d_add_relu_backward(ctx, grad):
    input, weight, output = ctx.saved_tensors
    if ctx.relu:  # torch's threshold_backward: no gradient where the output is <= 0 (NaN passes)
        grad = grad.masked_fill(output <= 0, 0)
    grad_residual = grad if ctx.needs_input_grad[3] else None  # the sum passes it on unchanged
    return _conv2d_gradients(ctx, grad, input, weight) + (grad_residual,) + (None,) * 7


_register(_conv2d_add_relu, lambda input, weight, bias, residual, *arguments: _conv2d_fake(input, weight, bias,
                                                                                         *arguments[:-1]),
          _save_input_weight_and_output, _conv2d_add_relu_backward)
_register(_conv2d_input, lambda grad_output, weight, input_size, *_:
          _empty_in_layout_of(grad_output, input_size))
_register(_conv2d_weight, lambda grad_output, input, weight_size, *_: grad_output.new_empty(weight_size))


@_unbatched_as_batch_of_one
def conv2d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride: IntPair = 1,
           padding: Union[str, IntPair] = 0, dilation: IntPair = 1, groups: int = 1, *, algo: str = "auto",
           relu: bool = False, residual: Optional[Tensor] = None) -> Tensor:
    """torch.nn.functional.conv2d on fastconv's kernels; `algo` as fastconv.ops.conv2d's
    ('auto', 'winograd' or one of fastconv.ops.conv_algo.algorithms()), for the forward and both
    gradients. relu=True and `residual` (a tensor of the output's shape and dtype) give
    relu(conv2d(...) + residual) with the sum and the ReLU done where the kernel stores each
    output (fastconv.ops.conv2d's epilogue), differentiable in every input."""
    same = padding == "same"
    if isinstance(padding, str):
        conv2d_arguments(tuple(weight.shape), stride, padding, dilation, groups)  # checks the string
        padding = 0
    arguments = (_pair(stride, "stride"), _pair(padding, "padding"), _pair(dilation, "dilation"),
                 an_int(groups, "groups"), same, algo)
    if relu or residual is not None:
        if residual is not None and residual.dim() == 3 and input.shape[0] == 1:
            residual = residual.unsqueeze(0)  # an unbatched call's residual, as its input is seen here
        return _conv2d_add_relu(input, weight, bias, residual, *arguments, bool(relu))
    return _conv2d(input, weight, bias, *arguments)


def _residual_fits(residual: Tensor, input: Tensor, weight: Tensor, stride: IntPair, padding: Union[str, IntPair],
                   dilation: IntPair, groups: int) -> bool:
    """Whether `residual` can be conv2d's residual= for these arguments: a tensor of the output's
    shape and of the input's dtype and device (a batched input; anything else is added after)."""
    if (residual.dtype != input.dtype or residual.device != input.device or input.dim() != 4
            or residual.dim() != 4):
        return False
    same = padding == "same"
    padding = (0, 0) if isinstance(padding, str) else _pair(padding, "padding")
    return list(residual.shape) == _conv2d_output_shape(input.shape, weight.shape, _pair(stride, "stride"), padding,
                                                         _pair(dilation, "dilation"), groups, same)


# ---- conv_transpose2d -------------------------------------------------------------------------------

@_op("conv_transpose2d")
def _conv_transpose2d(input: Tensor, weight: Tensor, bias: Optional[Tensor], stride: List[int], padding: List[int],
                      output_padding: List[int], groups: int, dilation: List[int], algo: str) -> Tensor:
    return as_tensor(_conv_transpose_ops.conv_transpose2d(as_array(input, "input"), as_array(weight, "weight"),
                                                          as_optional_array(bias, "bias"), stride, padding,
                                                          output_padding, groups, dilation, algo=algo))


@_op("conv_transpose2d_backward")
def _conv_transpose2d_backward(grad_output: Tensor, input: Tensor, weight: Tensor, stride: List[int],
                               padding: List[int], output_padding: List[int], groups: int, dilation: List[int],
                               algo: str) -> Tuple[Tensor, Tensor]:
    grad_input, grad_weight, _ = _conv_transpose_ops.conv_transpose2d_backward(
        as_array(input, "input"), as_array(weight, "weight"), as_array(grad_output, "grad_output"), stride, padding,
        output_padding, groups, dilation, needs_bias=False, algo=algo)
    return as_tensor(grad_input), as_tensor(grad_weight)


def _conv_transpose2d_fake(input, weight, bias, stride, padding, output_padding, groups, dilation, algo):
    size = [(n - 1) * s - 2 * p + d * (k - 1) + o + 1
            for n, s, p, d, k, o in zip(input.shape[2:], stride, padding, dilation, weight.shape[2:], output_padding)]
    return _empty_in_layout_of(input, [input.shape[0], weight.shape[1] * groups, *size])


def _conv_transpose2d_grad(ctx, grad):
    input, weight = ctx.saved_tensors
    need_input, need_weight, need_bias = ctx.needs_input_grad[:3]
    grad_input = grad_weight = None
    if need_input or need_weight:  # one kernel call computes both (they share grad_output's columns)
        grad_input, grad_weight = _conv_transpose2d_backward(grad, input, weight, *ctx.arguments)
    return ((grad_input if need_input else None, grad_weight if need_weight else None,
             grad.sum((0, 2, 3)) if need_bias else None) + (None,) * 6)


_register(_conv_transpose2d, _conv_transpose2d_fake, _save_input_and_weight, _conv_transpose2d_grad)
_register(_conv_transpose2d_backward, lambda grad_output, input, weight, *_: (
    _empty_in_layout_of(input, input.shape), weight.new_empty(weight.shape)))


@_unbatched_as_batch_of_one
def conv_transpose2d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride: IntPair = 1,
                     padding: IntPair = 0, output_padding: IntPair = 0, groups: int = 1, dilation: IntPair = 1, *,
                     algo: str = "auto") -> Tensor:
    """torch.nn.functional.conv_transpose2d on fastconv's kernels."""
    return _conv_transpose2d(input, weight, bias, _pair(stride, "stride"), _pair(padding, "padding"),
                             _pair(output_padding, "output_padding"), an_int(groups, "groups"),
                             _pair(dilation, "dilation"), algo)


# ---- batch_norm ---------------------------------------------------------------------------------------

def _running_statistic(running, name, training):
    """The array the kernel reads a running statistic from: in training a copy, which the kernel
    updates and the op returns (an op with an autograd formula must not write its inputs;
    batch_norm() copies the update back), else the tensor's own memory."""
    array = as_optional_array(running, name)
    return array.copy() if training and array is not None else array


@_op("batch_norm")
def _batch_norm(input: Tensor, running_mean: Optional[Tensor], running_var: Optional[Tensor], weight: Optional[Tensor],
                bias: Optional[Tensor], residual: Optional[Tensor], training: bool, momentum: float, eps: float,
                relu: bool) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """(output, mean, invstd, new running_mean, new running_var): the statistics used, which the
    backward reads, and in training the updated running statistics (empty when not updated)."""
    mean_array, var_array = (_running_statistic(running_mean, "running_mean", training),
                             _running_statistic(running_var, "running_var", training))
    y, mean, invstd = _norm_ops.batch_norm(as_array(input, "input"), mean_array, var_array,
                                           as_optional_array(weight, "weight"), as_optional_array(bias, "bias"),
                                           training, momentum, eps, as_optional_array(residual, "residual"), relu)
    updated = (mean_array, var_array) if training else (None, None)
    return (as_tensor(y), as_tensor(mean), as_tensor(invstd)) + tuple(as_tensor_or_empty(u, input) for u in updated)


@_op("batch_norm_backward")
def _batch_norm_backward(grad_output: Tensor, input: Tensor, mean: Tensor, invstd: Tensor, weight: Optional[Tensor],
                         output: Optional[Tensor], training: bool, relu: bool,
                         residual: bool) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """(grad_input, grad_weight, grad_bias, grad_residual); empty tensors for those not asked."""
    grads = _norm_ops.batch_norm_backward(as_array(grad_output, "grad_output"), as_array(input, "input"),
                                          as_array(mean, "mean"), as_array(invstd, "invstd"),
                                          as_optional_array(weight, "weight"), training,
                                          as_optional_array(output, "output"), relu, residual)
    return tuple(as_tensor_or_empty(g, input) for g in grads)


def _batch_norm_fake(input, running_mean, running_var, weight, bias, residual, training, momentum, eps, relu):
    channels = input.shape[1]
    updated = [input.new_empty(channels if training and r is not None else 0) for r in (running_mean, running_var)]
    output = _empty_in_layout_of(input, input.shape)
    return output, input.new_empty(channels), input.new_empty(channels), *updated


def _batch_norm_backward_fake(grad_output, input, mean, invstd, weight, output, training, relu, residual):
    vector = input.new_empty(input.shape[1] if weight is not None else 0)
    grad_input = _empty_in_layout_of(input, input.shape)
    grad_residual = torch.empty_like(grad_input) if residual else input.new_empty(0)
    return grad_input, vector, vector.new_empty(vector.shape), grad_residual


def _batch_norm_setup(ctx, inputs, output):
    input, _, _, weight, _, _, ctx.training, _, _, ctx.relu = inputs
    output, mean, invstd, *updated = output
    ctx.mark_non_differentiable(mean, invstd, *updated)
    ctx.save_for_backward(input, mean, invstd, weight, output if ctx.relu else None)


def _batch_norm_grad(ctx, grad, *_statistics_grads):
    input, mean, invstd, weight, output = ctx.saved_tensors
    need_input, _, _, need_weight, need_bias, need_residual = ctx.needs_input_grad[:6]
    grad_input, grad_weight, grad_bias, grad_residual = _batch_norm_backward(
        grad, input, mean, invstd, weight, output, ctx.training, ctx.relu, need_residual)
    return (grad_input if need_input else None, None, None, grad_weight if need_weight else None,
            grad_bias if need_bias else None, grad_residual if need_residual else None, None, None, None, None)


_register(_batch_norm, _batch_norm_fake, _batch_norm_setup, _batch_norm_grad)
_register(_batch_norm_backward, _batch_norm_backward_fake)


def batch_norm(input: Tensor, running_mean: Optional[Tensor], running_var: Optional[Tensor],
               weight: Optional[Tensor] = None, bias: Optional[Tensor] = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5, *, residual: Optional[Tensor] = None,
               relu: bool = False) -> Tensor:
    """torch.nn.functional.batch_norm on an (N, C, H, W) batch, plus fastconv's two fusions
    (keyword-only, off by default): relu(batch_norm(input) + residual) in one pass. Training
    updates running_mean and running_var in place, as PyTorch does."""
    if not training and (running_mean is None or running_var is None):
        raise ValueError("running_mean, running_var: required when training=False")
    output, _, _, new_mean, new_var = _batch_norm(input, running_mean, running_var, weight, bias, residual,
                                                  bool(training), float(momentum), float(eps), bool(relu))
    if training:
        for running, new in ((running_mean, new_mean), (running_var, new_var)):
            if running is not None:
                running.copy_(new)
    return output


# ---- pooling ---------------------------------------------------------------------------------------------

def _pooled_size(size, kernel, stride, padding, dilation, ceil_mode):
    """PyTorch's pooling_output_shape: with ceil_mode the last window must start inside the
    input or its left padding."""
    out = (size + 2 * padding - dilation * (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def _pooled_fake(input, kernel, stride, padding, dilation, ceil_mode):
    size = [_pooled_size(*args, ceil_mode) for args in zip(input.shape[2:], kernel, stride, padding, dilation)]
    return _empty_in_layout_of(input, [*input.shape[:2], *size])


def _window(kernel_size, stride, padding, dilation=1):
    kernel = _pair(kernel_size, "kernel_size")
    stride = kernel if stride is None or stride == [] or stride == () else _pair(stride, "stride")
    return kernel, stride, _pair(padding, "padding"), _pair(dilation, "dilation")


@_op("max_pool2d")
def _max_pool2d(input: Tensor, kernel_size: List[int], stride: List[int], padding: List[int], dilation: List[int],
                ceil_mode: bool) -> Tuple[Tensor, Tensor]:
    y, indices = _pool_ops.max_pool2d(as_array(input, "input"), kernel_size, stride, padding, dilation, ceil_mode,
                                      return_indices=True)
    return as_tensor(y), as_tensor(indices)


@_op("max_pool2d_backward")
def _max_pool2d_backward(grad_output: Tensor, indices: Tensor, input_size: List[int], channels_last: bool) -> Tensor:
    return as_tensor(_pool_ops.max_pool2d_backward(as_array(grad_output, "grad_output"), input_size,
                                                   as_array(indices, "indices"), check_indices=False,
                                                   channels_last=channels_last))


def _max_pool2d_fake(input, kernel_size, stride, padding, dilation, ceil_mode):
    y = _pooled_fake(input, kernel_size, stride, padding, dilation, ceil_mode)
    return y, torch.empty_like(y, dtype=torch.int64)


def _save_input_geometry(ctx, input):
    """The input's size and layout, all a pooling gradient needs of it (its gradient is written
    in the input's layout)."""
    ctx.input_size, ctx.channels_last = _shape(input), is_channels_last(input)


def _save_input_size_and_indices(ctx, inputs, output):
    """setup_context of an op returning (values, indices of what they came from): the backward
    needs the input's size and layout and the indices, which have no gradient."""
    _save_input_geometry(ctx, inputs[0])
    ctx.mark_non_differentiable(output[1])
    ctx.save_for_backward(output[1])


def _max_pool2d_grad(ctx, grad, _grad_indices):
    return (_max_pool2d_backward(grad, ctx.saved_tensors[0], ctx.input_size, ctx.channels_last),) + (None,) * 5


_register(_max_pool2d, _max_pool2d_fake, _save_input_size_and_indices, _max_pool2d_grad)
_register(_max_pool2d_backward, lambda grad_output, indices, input_size, channels_last:
          empty_image(grad_output, input_size, channels_last))


@_unbatched_as_batch_of_one
def max_pool2d(input: Tensor, kernel_size: IntPair, stride: Optional[IntPair] = None, padding: IntPair = 0,
               dilation: IntPair = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Union[Tensor, Tuple[Tensor, Tensor]]:
    """torch.nn.functional.max_pool2d on fastconv's kernel."""
    y, indices = _max_pool2d(input, *_window(kernel_size, stride, padding, dilation), bool(ceil_mode))
    return (y, indices) if return_indices else y


@_op("avg_pool2d")
def _avg_pool2d(input: Tensor, kernel_size: List[int], stride: List[int], padding: List[int], ceil_mode: bool,
                count_include_pad: bool, divisor_override: Optional[int]) -> Tensor:
    return as_tensor(_pool_ops.avg_pool2d(as_array(input, "input"), kernel_size, stride, padding, ceil_mode,
                                          count_include_pad, divisor_override))


@_op("avg_pool2d_backward")
def _avg_pool2d_backward(grad_output: Tensor, input_size: List[int], kernel_size: List[int], stride: List[int],
                         padding: List[int], ceil_mode: bool, count_include_pad: bool,
                         divisor_override: Optional[int], channels_last: bool) -> Tensor:
    return as_tensor(_pool_ops.avg_pool2d_backward(as_array(grad_output, "grad_output"), input_size, kernel_size,
                                                   stride, padding, ceil_mode, count_include_pad, divisor_override,
                                                   channels_last))


def _save_input_size(ctx, inputs, output):
    """setup_context of the one-input ops whose gradient needs only the input's size and layout
    and the call's arguments: avg_pool2d, adaptive_avg_pool2d and interpolate."""
    input, *ctx.arguments = inputs
    _save_input_geometry(ctx, input)


def _avg_pool2d_grad(ctx, grad):
    return (_avg_pool2d_backward(grad, ctx.input_size, *ctx.arguments, ctx.channels_last),) + (None,) * 6


_register(_avg_pool2d, lambda input, kernel, stride, padding, ceil_mode, *_:
          _pooled_fake(input, kernel, stride, padding, [1, 1], ceil_mode), _save_input_size, _avg_pool2d_grad)
_register(_avg_pool2d_backward, lambda grad_output, input_size, *arguments:
          empty_image(grad_output, input_size, arguments[-1]))


@_unbatched_as_batch_of_one
def avg_pool2d(input: Tensor, kernel_size: IntPair, stride: Optional[IntPair] = None, padding: IntPair = 0,
               ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: Optional[int] = None) -> Tensor:
    """torch.nn.functional.avg_pool2d on fastconv's kernel."""
    kernel, stride, padding, _ = _window(kernel_size, stride, padding)
    return _avg_pool2d(input, kernel, stride, padding, bool(ceil_mode), bool(count_include_pad), divisor_override)


@_op("adaptive_avg_pool2d")
def _adaptive_avg_pool2d(input: Tensor, output_size: List[int]) -> Tensor:
    return as_tensor(_pool_ops.adaptive_avg_pool2d(as_array(input, "input"), output_size))


@_op("adaptive_avg_pool2d_backward")
def _adaptive_avg_pool2d_backward(grad_output: Tensor, input_size: List[int], channels_last: bool) -> Tensor:
    return as_tensor(_pool_ops.adaptive_avg_pool2d_backward(as_array(grad_output, "grad_output"), input_size,
                                                            channels_last))


_register(_adaptive_avg_pool2d, lambda input, output_size:
          _empty_in_layout_of(input, [*input.shape[:2], *output_size]),
          _save_input_size,
          lambda ctx, grad: (_adaptive_avg_pool2d_backward(grad, ctx.input_size, ctx.channels_last), None))
_register(_adaptive_avg_pool2d_backward, empty_image)  # (grad_output, input_size, channels_last)


@_unbatched_as_batch_of_one
def adaptive_avg_pool2d(input: Tensor, output_size: Union[int, Sequence[Optional[int]]]) -> Tensor:
    """torch.nn.functional.adaptive_avg_pool2d on fastconv's kernel (a None size keeps the input's)."""
    if isinstance(output_size, (tuple, list)) and len(output_size) == 2:
        output_size = [input.shape[2 + d] if s is None else s for d, s in enumerate(output_size)]
    return _adaptive_avg_pool2d(input, list(positive_pair(output_size, "output_size")))


# ---- roi_align, roi_pool -------------------------------------------------------------------------------

def _roi_boxes(boxes, input):
    """torchvision's convert_boxes_to_roi_format: a list of (Ki, 4) tensors, one per image, as
    one (K, 5) tensor of [batch_index, x1, y1, x2, y2]."""
    if isinstance(boxes, Tensor):
        return boxes
    rows = [torch.cat([torch.full((len(b), 1), i, dtype=b.dtype, device=b.device), b], dim=1)
            for i, b in enumerate(boxes)]
    return torch.cat(rows) if rows else input.new_zeros((0, 5))


def _roi_fake(input, boxes, output_size):
    return input.new_empty([boxes.shape[0], input.shape[1], *output_size])


@_op("roi_align")
def _roi_align(input: Tensor, boxes: Tensor, output_size: List[int], spatial_scale: float, sampling_ratio: int,
               aligned: bool) -> Tensor:
    return as_tensor(_roi_ops.roi_align(as_array(input, "input"), as_array(boxes, "boxes"), output_size, spatial_scale,
                                        sampling_ratio, aligned))


@_op("roi_align_backward")
def _roi_align_backward(grad_output: Tensor, boxes: Tensor, input_size: List[int], spatial_scale: float,
                        sampling_ratio: int, aligned: bool) -> Tensor:
    return as_tensor(_roi_ops.roi_align_backward(as_array(grad_output, "grad_output"), as_array(boxes, "boxes"),
                                                 input_size, spatial_scale, sampling_ratio, aligned))


def _roi_align_setup(ctx, inputs, output):
    input, boxes, _, *ctx.arguments = inputs
    ctx.input_size = _shape(input)
    ctx.save_for_backward(boxes)


def _roi_align_grad(ctx, grad):
    grad_input = _roi_align_backward(grad, ctx.saved_tensors[0], ctx.input_size, *ctx.arguments)
    return (grad_input,) + (None,) * 5


_register(_roi_align, lambda input, boxes, output_size, *_: _roi_fake(input, boxes, output_size),
          _roi_align_setup, _roi_align_grad)
_register(_roi_align_backward, lambda grad_output, boxes, input_size, *_: grad_output.new_empty(input_size))


def roi_align(input: Tensor, boxes: Union[Tensor, List[Tensor]], output_size: IntPair, spatial_scale: float = 1.0,
              sampling_ratio: int = -1, aligned: bool = False) -> Tensor:
    """torchvision.ops.roi_align on fastconv's kernel: boxes (K, 5) [batch_index, x1, y1, x2, y2]
    or a list of (Ki, 4) per image. No gradient flows to the boxes, as in torchvision."""
    return _roi_align(input, _roi_boxes(boxes, input), list(positive_pair(output_size, "output_size")),
                      float(spatial_scale), an_int(sampling_ratio, "sampling_ratio"), bool(aligned))


@_op("roi_pool")
def _roi_pool(input: Tensor, boxes: Tensor, output_size: List[int], spatial_scale: float) -> Tuple[Tensor, Tensor]:
    out, argmax = _roi_ops.roi_pool(as_array(input, "input"), as_array(boxes, "boxes"), output_size, spatial_scale)
    return as_tensor(out), as_tensor(argmax)


@_op("roi_pool_backward")
def _roi_pool_backward(grad_output: Tensor, argmax: Tensor, input_size: List[int]) -> Tensor:
    return as_tensor(_roi_ops.roi_pool_backward(as_array(grad_output, "grad_output"), as_array(argmax, "argmax"),
                                                input_size))


def _roi_pool_fake(input, boxes, output_size, spatial_scale):
    out = _roi_fake(input, boxes, output_size)
    return out, out.new_empty(out.shape, dtype=torch.int64)


def _roi_pool_grad(ctx, grad, _grad_argmax):
    return (_roi_pool_backward(grad, ctx.saved_tensors[0], ctx.input_size),) + (None,) * 3


_register(_roi_pool, _roi_pool_fake, _save_input_size_and_indices, _roi_pool_grad)
_register(_roi_pool_backward, lambda grad_output, argmax, input_size: grad_output.new_empty(input_size))


def roi_pool(input: Tensor, boxes: Union[Tensor, List[Tensor]], output_size: IntPair,
             spatial_scale: float = 1.0) -> Tensor:
    """torchvision.ops.roi_pool on fastconv's kernel."""
    return _roi_pool(input, _roi_boxes(boxes, input), list(positive_pair(output_size, "output_size")),
                     float(spatial_scale))[0]


# ---- grid_sample, interpolate ----------------------------------------------------------------------------

@_op("grid_sample")
def _grid_sample(input: Tensor, grid: Tensor, mode: str, padding_mode: str, align_corners: bool) -> Tensor:
    return as_tensor(_sampling_ops.grid_sample(as_array(input, "input"), as_array(grid, "grid"), mode, padding_mode,
                                               align_corners))


@_op("grid_sample_backward")
def _grid_sample_backward(grad_output: Tensor, input: Tensor, grid: Tensor, mode: str, padding_mode: str,
                          align_corners: bool, needs_input_grad: bool, needs_grid_grad: bool) -> Tuple[Tensor, Tensor]:
    grad_input, grad_grid = _sampling_ops.grid_sample_backward(
        as_array(grad_output, "grad_output"), as_array(input, "input"), as_array(grid, "grid"), mode, padding_mode,
        align_corners, needs_input_grad, needs_grid_grad)
    return as_tensor_or_empty(grad_input, input), as_tensor_or_empty(grad_grid, grid)


def _grid_sample_backward_fake(grad_output, input, grid, mode, padding_mode, align_corners, needs_input, needs_grid):
    grad_input = _empty_in_layout_of(input, input.shape) if needs_input else input.new_empty(0)
    return grad_input, grid.new_empty(grid.shape if needs_grid else 0)


def _grid_sample_setup(ctx, inputs, output):
    input, grid, *ctx.arguments = inputs
    ctx.save_for_backward(input, grid)


def _grid_sample_grad(ctx, grad):
    input, grid = ctx.saved_tensors
    need_input, need_grid = ctx.needs_input_grad[:2]
    grad_input, grad_grid = _grid_sample_backward(grad, input, grid, *ctx.arguments, need_input, need_grid)
    return grad_input if need_input else None, grad_grid if need_grid else None, None, None, None


_register(_grid_sample, lambda input, grid, *_:
          _empty_in_layout_of(input, [*input.shape[:2], *grid.shape[1:3]]),
          _grid_sample_setup, _grid_sample_grad)
_register(_grid_sample_backward, _grid_sample_backward_fake)


def grid_sample(input: Tensor, grid: Tensor, mode: str = "bilinear", padding_mode: str = "zeros",
                align_corners: Optional[bool] = None) -> Tensor:
    """torch.nn.functional.grid_sample (4-d; 'bilinear' and 'nearest') on fastconv's kernel."""
    return _grid_sample(input, grid, mode, padding_mode, bool(align_corners))


def _scales(scale_factor):
    if scale_factor is None:
        return None
    return [float(s) for s in scale_factor] if isinstance(scale_factor, (tuple, list)) else [float(scale_factor)] * 2


@_op("interpolate")
def _interpolate(input: Tensor, size: Optional[List[int]], scale_factor: Optional[List[float]], mode: str,
                 align_corners: Optional[bool], recompute_scale_factor: Optional[bool], antialias: bool) -> Tensor:
    return as_tensor(_sampling_ops.interpolate(as_array(input, "input"), size, scale_factor, mode, align_corners,
                                               recompute_scale_factor, antialias))


@_op("interpolate_backward")
def _interpolate_backward(grad_output: Tensor, input_size: List[int], size: Optional[List[int]],
                          scale_factor: Optional[List[float]], mode: str, align_corners: Optional[bool],
                          recompute_scale_factor: Optional[bool], antialias: bool, channels_last: bool) -> Tensor:
    return as_tensor(_sampling_ops.interpolate_backward(as_array(grad_output, "grad_output"), input_size, size,
                                                        scale_factor, mode, align_corners, recompute_scale_factor,
                                                        antialias, channels_last))


def _interpolate_fake(input, size, scale_factor, mode, align_corners, recompute_scale_factor, antialias):
    out_hw = interpolate_arguments(tuple(input.shape[2:]), size, scale_factor, mode, align_corners,
                                   recompute_scale_factor, antialias)[0]
    return _empty_in_layout_of(input, [*input.shape[:2], *out_hw])


_register(_interpolate, _interpolate_fake, _save_input_size,
          lambda ctx, grad: (_interpolate_backward(grad, ctx.input_size, *ctx.arguments, ctx.channels_last),)
          + (None,) * 6)
_register(_interpolate_backward, lambda grad_output, input_size, *arguments:
          empty_image(grad_output, input_size, arguments[-1]))


def interpolate(input: Tensor, size: Optional[IntPair] = None, scale_factor: Union[float, Sequence[float], None] = None,
                mode: str = "nearest", align_corners: Optional[bool] = None,
                recompute_scale_factor: Optional[bool] = None, antialias: bool = False) -> Tensor:
    """torch.nn.functional.interpolate of an (N, C, H, W) batch on fastconv's kernels: modes
    'nearest', 'nearest-exact', 'bilinear', 'bicubic' (these two also antialiased) and 'area'."""
    size = None if size is None else _pair(size, "size")
    return _interpolate(input, size, _scales(scale_factor), mode, align_corners, recompute_scale_factor,
                        bool(antialias))


__all__ = ["conv2d", "conv_transpose2d", "batch_norm", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d",
           "roi_align", "roi_pool", "grid_sample", "interpolate"]
