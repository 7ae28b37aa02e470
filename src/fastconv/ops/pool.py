"""2-d pooling with torch.nn.functional's argument rules: max_pool2d (indices as PyTorch's, flat
h*W+w per plane), avg_pool2d, adaptive_avg_pool2d, and their gradients.

A channels_last input (NHWC memory, as torch's channels_last) is read in place and its outputs
(indices too) are channels_last; a gradient comes in the layout its `channels_last` argument
names, by default grad_output's."""
from typing import Optional, Sequence, Tuple, Union

import numpy as np

from fastconv._typing import Array, IntPair, Shape4
from fastconv.backend import array_module, device_of, kernels
from fastconv.ops._checks import (an_int, check_ndim, check_size, empty_image, empty_in_layout, float_array,
                                  image_input, in_layout, int_pair, is_channels_last, pooled_input, shape4,
                                  window_pair)


def _window(kernel_size, stride, padding, dilation=1):
    """kernel, stride (None or an empty sequence: the kernel, as PyTorch), padding, dilation."""
    kernel = window_pair(kernel_size, "kernel_size")
    if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0):
        stride = kernel
    else:
        stride = window_pair(stride, "stride")
    return kernel, stride, window_pair(padding, "padding"), window_pair(dilation, "dilation")


def _grad_arrays(grad_output, input_shape, channels_last):
    """(grad_output, grad_input to fill): grad_input channels_last when channels_last says so (None:
    when grad_output is), grad_output then read in grad_input's layout."""
    dy = float_array(grad_output, "grad_output")
    check_ndim(dy, 4, "grad_output", "(N, C, H, W)")
    shape = shape4(input_shape, "input_shape")
    if channels_last is None:
        channels_last = is_channels_last(dy)
    on_host = isinstance(dy, np.ndarray)  # device arrays stay NCHW
    dx = empty_image(shape, dy.dtype, device_of(dy), channels_last and on_host)
    return in_layout(dy, dx), dx


def max_pool2d(input: Array, kernel_size: IntPair, stride: Optional[IntPair] = None, padding: IntPair = 0,
               dilation: IntPair = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Union[Array, Tuple[Array, Array]]:
    """As torch.nn.functional.max_pool2d; with return_indices, (output, int64 indices)."""
    lib = kernels(input, op="max_pool2d")
    x = image_input(input)
    kernel, stride, padding, dilation = _window(kernel_size, stride, padding, dilation)
    # the window's arguments first, then the input's emptiness: PyTorch's order of checks
    shape = lib.pool2d_output_shape(x.shape, kernel, stride, padding, dilation, bool(ceil_mode))
    pooled_input(x)
    y = empty_in_layout(shape, x.dtype, x)
    indices = empty_in_layout(shape, np.int64, x) if return_indices else None
    lib.max_pool2d_forward(x, y, indices, kernel, stride, padding, dilation, bool(ceil_mode))
    return (y, indices) if return_indices else y


def _check_index_range(indices, input_shape):
    """The kernel adds each gradient at the input its index names and skips one outside the plane
    (PyTorch's CPU kernel writes out of bounds there): user-given indices outside it are refused.
    One min and one max, cheap beside the scatter."""
    if indices.size == 0:
        return
    h, w = input_shape[2:]
    lowest, highest = int(indices.min()), int(indices.max())
    if lowest < 0 or highest >= h * w:
        raise ValueError(f"indices: expected values in [0, {h * w}) (h*W+w in an input plane of {h}x{w}), "
                         f"got values from {lowest} to {highest}")


def max_pool2d_backward(grad_output: Array, input_shape: Shape4, indices: Array, check_indices: bool = True,
                        channels_last: Optional[bool] = None) -> Array:
    """Gradient of max_pool2d: each output's gradient goes to the input its index names.

    check_indices=False skips the range check, for indices straight from max_pool2d: a dilated
    window that holds only padding gets an index past the plane there (as in PyTorch), and its
    output, -inf, routes no gradient. channels_last: the gradient's layout (the input's), by
    default grad_output's.
    """
    lib = kernels(grad_output, indices, op="max_pool2d_backward")
    dy, dx = _grad_arrays(grad_output, input_shape, channels_last)
    indices = array_module(indices).asarray(indices)
    if indices.dtype != np.int64:
        raise TypeError(f"indices: expected an int64 array (from max_pool2d), got dtype {indices.dtype}")
    if check_indices:
        _check_index_range(indices, dx.shape)
    lib.max_pool2d_backward(dy, in_layout(indices, dx), dx)
    return dx


def _divisor(divisor_override):
    """None -> 0 (no override), as the C++ kernel takes it; PyTorch refuses 0."""
    if divisor_override is None:
        return 0
    divisor = an_int(divisor_override, "divisor_override")
    if divisor == 0:
        raise ValueError("divisor_override: must be non-zero")
    return divisor


def avg_pool2d(input: Array, kernel_size: IntPair, stride: Optional[IntPair] = None, padding: IntPair = 0,
               ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: Optional[int] = None) -> Array:
    """As torch.nn.functional.avg_pool2d."""
    lib = kernels(input, op="avg_pool2d")
    x = image_input(input)
    kernel, stride, padding, _ = _window(kernel_size, stride, padding)
    shape = lib.pool2d_output_shape(x.shape, kernel, stride, padding, (1, 1), bool(ceil_mode))
    pooled_input(x)  # after the window's arguments, as in max_pool2d
    y = empty_in_layout(shape, x.dtype, x)
    lib.avg_pool2d_forward(x, y, kernel, stride, padding, bool(ceil_mode), bool(count_include_pad),
                           _divisor(divisor_override))
    return y


def avg_pool2d_backward(grad_output: Array, input_shape: Shape4, kernel_size: IntPair, stride: Optional[IntPair] = None,
                        padding: IntPair = 0, ceil_mode: bool = False, count_include_pad: bool = True,
                        divisor_override: Optional[int] = None, channels_last: Optional[bool] = None) -> Array:
    """Gradient of avg_pool2d with the same arguments; channels_last: its layout (the input's), by
    default grad_output's."""
    lib = kernels(grad_output, op="avg_pool2d_backward")
    dy, dx = _grad_arrays(grad_output, input_shape, channels_last)
    kernel, stride, padding, _ = _window(kernel_size, stride, padding)
    lib.avg_pool2d_backward(dy, dx, kernel, stride, padding, bool(ceil_mode), bool(count_include_pad),
                            _divisor(divisor_override))
    return dx


def _adaptive_size(output_size, input_shape):
    """An int, or a pair whose None entries keep the input's size (as PyTorch)."""
    if isinstance(output_size, (tuple, list)) and len(output_size) == 2:
        output_size = tuple(input_shape[2 + d] if s is None else s for d, s in enumerate(output_size))
    return int_pair(output_size, "output_size")


def adaptive_avg_pool2d(input: Array, output_size: Union[int, Sequence[Optional[int]]]) -> Array:
    """As torch.nn.functional.adaptive_avg_pool2d."""
    lib = kernels(input, op="adaptive_avg_pool2d")
    x = image_input(input)
    size = _adaptive_size(output_size, x.shape)
    if min(size) < 1:
        raise ValueError(f"output_size: must be >= 1, got {size}")
    check_size(x.shape[:2] + size, "output_size")
    y = empty_in_layout(x.shape[:2] + size, x.dtype, x)
    lib.adaptive_avg_pool2d_forward(x, y)
    return y


def adaptive_avg_pool2d_backward(grad_output: Array, input_shape: Shape4,
                                 channels_last: Optional[bool] = None) -> Array:
    """Gradient of adaptive_avg_pool2d; the output size is grad_output's. channels_last: the
    gradient's layout (the input's), by default grad_output's."""
    lib = kernels(grad_output, op="adaptive_avg_pool2d_backward")
    dy, dx = _grad_arrays(grad_output, input_shape, channels_last)
    lib.adaptive_avg_pool2d_backward(dy, dx)
    return dx
