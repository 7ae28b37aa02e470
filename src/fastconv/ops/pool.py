"""2-d pooling with torch.nn.functional's argument rules: max_pool2d (indices as PyTorch's, flat
h*W+w per plane), avg_pool2d, adaptive_avg_pool2d, and their gradients."""
import numpy as np

from fastconv import _C
from fastconv.ops._alloc import empty
from fastconv.ops._checks import check_ndim, float_array
from fastconv.ops._checks import int_pair, shape4


def _input(x, name="input"):
    x = np.ascontiguousarray(float_array(x, name))
    check_ndim(x, 4, name, "(N, C, H, W)")
    return x


def _window(kernel_size, stride, padding, dilation=1):
    """kernel, stride (None or an empty sequence: the kernel, as PyTorch), padding, dilation."""
    kernel = int_pair(kernel_size, "kernel_size")
    stride = kernel if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) else int_pair(stride, "stride")
    return kernel, stride, int_pair(padding, "padding"), int_pair(dilation, "dilation")


def _grad_arrays(grad_output, input_shape):
    dy = _input(grad_output, "grad_output")
    dx = empty(shape4(input_shape, "input_shape"), dtype=dy.dtype)
    return dy, dx


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """As torch.nn.functional.max_pool2d; with return_indices, (output, int64 indices)."""
    x = _input(input)
    kernel, stride, padding, dilation = _window(kernel_size, stride, padding, dilation)
    shape = _C.pool2d_output_shape(x.shape, kernel, stride, padding, dilation, bool(ceil_mode))
    y = empty(shape, dtype=x.dtype)
    indices = empty(shape, dtype=np.int64) if return_indices else None
    _C.max_pool2d_forward(x, y, indices, kernel, stride, padding, dilation, bool(ceil_mode))
    return (y, indices) if return_indices else y


def max_pool2d_backward(grad_output, input_shape, indices):
    """Gradient of max_pool2d: each output's gradient goes to the input its index names."""
    dy, dx = _grad_arrays(grad_output, input_shape)
    indices = np.asarray(indices)
    if indices.dtype != np.int64:
        raise TypeError(f"indices: expected an int64 array (from max_pool2d), got dtype {indices.dtype}")
    _C.max_pool2d_backward(dy, np.ascontiguousarray(indices), dx)
    return dx


def _divisor(divisor_override):
    """None -> 0 (no override), as the C++ kernel takes it; PyTorch refuses 0."""
    if divisor_override is None:
        return 0
    if isinstance(divisor_override, bool) or not isinstance(divisor_override, (int, np.integer)):
        raise TypeError(f"divisor_override: expected an int or None, got {divisor_override!r}")
    if divisor_override == 0:
        raise ValueError("divisor_override: must be non-zero")
    return int(divisor_override)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """As torch.nn.functional.avg_pool2d."""
    x = _input(input)
    kernel, stride, padding, _ = _window(kernel_size, stride, padding)
    y = empty(_C.pool2d_output_shape(x.shape, kernel, stride, padding, (1, 1), bool(ceil_mode)), dtype=x.dtype)
    _C.avg_pool2d_forward(x, y, kernel, stride, padding, bool(ceil_mode), bool(count_include_pad),
                          _divisor(divisor_override))
    return y


def avg_pool2d_backward(grad_output, input_shape, kernel_size, stride=None, padding=0, ceil_mode=False,
                        count_include_pad=True, divisor_override=None):
    """Gradient of avg_pool2d with the same arguments."""
    dy, dx = _grad_arrays(grad_output, input_shape)
    kernel, stride, padding, _ = _window(kernel_size, stride, padding)
    _C.avg_pool2d_backward(dy, dx, kernel, stride, padding, bool(ceil_mode), bool(count_include_pad),
                           _divisor(divisor_override))
    return dx


def _adaptive_size(output_size, input_shape):
    """An int, or a pair whose None entries keep the input's size (as PyTorch)."""
    if isinstance(output_size, (tuple, list)) and len(output_size) == 2:
        output_size = tuple(input_shape[2 + d] if s is None else s for d, s in enumerate(output_size))
    return int_pair(output_size, "output_size")


def adaptive_avg_pool2d(input, output_size):
    """As torch.nn.functional.adaptive_avg_pool2d."""
    x = _input(input)
    size = _adaptive_size(output_size, x.shape)
    if min(size) < 1:
        raise ValueError(f"output_size: must be >= 1, got {size}")
    y = empty(x.shape[:2] + size, dtype=x.dtype)
    _C.adaptive_avg_pool2d_forward(x, y)
    return y


def adaptive_avg_pool2d_backward(grad_output, input_shape):
    """Gradient of adaptive_avg_pool2d; the output size is grad_output's."""
    dy, dx = _grad_arrays(grad_output, input_shape)
    _C.adaptive_avg_pool2d_backward(dy, dx)
    return dx
