"""Argument checks shared by the ops: each raises naming the argument and what was expected.

Arrays stay on the device they are on: array calls go through backend.array_module. numpy
arrays, which nearly every call passes, skip asking for it: asking costs about half a
microsecond per array, four times what the check itself costs."""
import numpy as np

from fastconv.backend import array_module, device_of, empty, empty_channels_last, is_cuda_array, layout_copy

FLOAT_DTYPES = (np.float32, np.float64)


def float_array(x, name):
    """x as a float32/float64 array; integer, bool or complex arrays are refused, not cast."""
    if not isinstance(x, np.ndarray) and not is_cuda_array(x):
        x = np.asarray(x)  # a list or a scalar: host data
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name}: expected a float32 or float64 array, got dtype {x.dtype}")
    return x


def same_dtype(arrays):
    """arrays: dict name -> array (None entries skipped); all must share one dtype."""
    named = [(n, a) for n, a in arrays.items() if a is not None]
    first_name, first = named[0]
    for name, a in named[1:]:
        if a.dtype != first.dtype:
            raise TypeError(f"{name}: dtype {a.dtype} does not match {first_name}'s {first.dtype}")
    return first.dtype


def check_ndim(x, ndim, name, layout):
    if x.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-d array {layout}, got shape {x.shape}")


def contiguous(x):
    """x as a C-contiguous array on its device (a non-contiguous view is copied once)."""
    if (type(x) is np.ndarray or is_cuda_array(x)) and x.flags.c_contiguous:
        return x  # itself: an array updated in place (running statistics) must stay the caller's
    if is_channels_last(x):
        return layout_copy(x, channels_last=False)
    return array_module(x).ascontiguousarray(x)


# Window arguments and sizes (stride, padding, kernel_size, output_size, groups, ...) are refused
# beyond int64, as PyTorch refuses them, checked here before pybind11 sees them (it refuses such
# ints with a message naming no argument). Within int64 the C++ geometry is computed in checked
# int64 arithmetic and refuses what overflows, naming the argument; pooling and roi_align, whose
# PyTorch arguments are 32-bit ints, refuse more there.
ARGUMENT_LIMIT = 2**63 - 1
# The most bytes numpy can address.
MAX_BYTES = np.iinfo(np.intp).max


def is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _in_range(values, value, name):
    if any(not -ARGUMENT_LIMIT - 1 <= int(v) <= ARGUMENT_LIMIT for v in values):  # int64, as PyTorch
        raise ValueError(f"{name}: expected values of magnitude at most 2**63 - 1, got {value!r}")


def an_int(value, name):
    """value as an int; bools and other numbers are refused, as PyTorch refuses them."""
    if not is_int(value):
        raise TypeError(f"{name}: expected an int, got {value!r}")
    _in_range((value,), value, name)
    return int(value)


def _plain_int64(value):
    """A Python int (not a bool, not a numpy integer) within int64: what nearly every call passes."""
    return type(value) is int and -ARGUMENT_LIMIT - 1 <= value <= ARGUMENT_LIMIT


def int_pair(value, name):
    """An int or a pair of ints -> (int, int), as PyTorch accepts them."""
    # Plain ints first, without the general path's isinstance walks and generators: window
    # arguments are checked on every op call, and fastconv.torch passes them as lists.
    if _plain_int64(value):
        return (value, value)
    if type(value) in (tuple, list) and len(value) == 2 and _plain_int64(value[0]) and _plain_int64(value[1]):
        return (value[0], value[1])
    if is_int(value):
        _in_range((value,), value, name)
        return (int(value), int(value))
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(is_int(v) for v in value):
        _in_range(value, value, name)
        return (int(value[0]), int(value[1]))
    raise TypeError(f"{name}: expected an int or a pair of ints, got {value!r}")


def window_pair(value, name):
    """int_pair for kernel_size, stride, padding, dilation and output_padding, which PyTorch also
    takes as a one-element sequence, (2,) meaning (2, 2)."""
    if isinstance(value, (tuple, list)) and len(value) == 1:
        value = (value[0], value[0])
    return int_pair(value, name)


def positive_pair(value, name):
    """int_pair, each at least 1 (output sizes)."""
    pair = int_pair(value, name)
    if min(pair) < 1:
        raise ValueError(f"{name}: must be >= 1, got {pair}")
    return pair


def check_size(shape, name):
    """An output shape built from the argument `name` must fit in an array numpy can allocate."""
    numel = 1
    for s in shape:
        numel *= int(s)
    if numel * 8 > MAX_BYTES:
        raise ValueError(f"{name}: the output shape {tuple(shape)} it gives holds {numel} elements, "
                         f"more than an array can address")


def nchw_input(x, name="input"):
    """A float, C-contiguous (N, C, H, W) array (a non-contiguous view is copied once)."""
    x = float_array(x, name)
    check_ndim(x, 4, name, "(N, C, H, W)")
    return contiguous(x)


def is_channels_last(x):
    """Whether x is a 4-d host array stored channels_last: NCHW axes over NHWC memory (each pixel's
    channels adjacent), as torch's channels_last tensors and x_nhwc.transpose(0, 3, 1, 2) are. An
    array that is both (C == 1, or 1x1 planes) counts as NCHW: the memory is the same."""
    return (type(x) is np.ndarray and x.ndim == 4 and not x.flags.c_contiguous
            and x.transpose(0, 2, 3, 1).flags.c_contiguous)


def to_channels_last(x):
    """x (N, C, H, W) with channels_last memory: itself when it already is, else one copy."""
    if is_channels_last(x) or x.flags.c_contiguous and (x.shape[1] == 1 or x.shape[2] * x.shape[3] == 1):
        return x
    return layout_copy(x if x.flags.c_contiguous else np.ascontiguousarray(x), channels_last=True)


def in_layout_of(result, x):
    """result in x's memory layout, as torch keeps a channels_last input's layout in the output:
    for ops whose kernels read and write NCHW only, the one copy a channels_last input costs."""
    return to_channels_last(result) if is_channels_last(x) else result


def image_input(x, name="input", channels_last=None):
    """A float (N, C, H, W) array as kernels that read both layouts take it: channels_last when
    `channels_last` says so (None: when x is; True also when another array of the call is), else
    C-contiguous; itself when it already is, else one copy."""
    x = float_array(x, name)
    check_ndim(x, 4, name, "(N, C, H, W)")
    if channels_last is None:
        channels_last = is_channels_last(x)
    return to_channels_last(x) if channels_last else contiguous(x)


def in_layout(a, like):
    """a in like's layout, as a kernel reading both takes it: channels_last when like is (and a is
    4-d), else C-contiguous; itself when it already is, else one copy."""
    if is_channels_last(like) and a.ndim == 4:
        return to_channels_last(a)
    return contiguous(a)


def empty_image(shape, dtype, device, channels_last):
    """An uninitialised (N, C, H, W) result, channels_last or C-contiguous."""
    return empty_channels_last(shape, dtype) if channels_last else empty(shape, dtype, device)


def empty_in_layout(shape, dtype, like):
    """An uninitialised (N, C, H, W) result on like's device, channels_last when like is."""
    return empty_image(shape, dtype, device_of(like), is_channels_last(like))


def pooled_input(x, name="input"):
    """PyTorch's rule for pooling: channels and planes non-empty; the batch may be empty."""
    if 0 in x.shape[1:]:
        raise ValueError(f"{name}: expected a (N, C, H, W) batch with non-zero C, H and W (N may be 0), "
                         f"got shape {x.shape}")
    return x


def convolved_input(x, name="input"):
    """PyTorch's rule for convolutions: an empty plane only in an empty batch (N or C of 0)."""
    if x.shape[0] and x.shape[1] and 0 in x.shape[2:]:
        raise ValueError(f"{name}: only zero batch or zero channel inputs are supported, got shape {x.shape}")
    return x


def shape4(shape, name):
    """Four non-negative sizes (N, C, H, W) as a tuple of ints."""
    shape = tuple(shape)
    if len(shape) != 4 or not all(is_int(s) and 0 <= s <= ARGUMENT_LIMIT for s in shape):
        raise ValueError(f"{name}: expected 4 sizes (N, C, H, W) >= 0 and at most 2**63 - 1, got {shape}")
    shape = tuple(int(s) for s in shape)
    check_size(shape, name)
    return shape
