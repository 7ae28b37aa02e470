"""The two crossings between torch tensors and the numpy arrays fastconv's kernels read and
write. For a contiguous CPU tensor, or one in torch.channels_last memory format, neither copies:
the array is a view of the tensor's memory with the tensor's strides (Tensor.numpy), which
fastconv's ops read in place in either layout, and the result tensor is a view of the array the
kernel wrote (torch.from_numpy, which keeps the array alive and its strides: a channels_last
result is a channels_last tensor).

The layout rule is fastconv.ops.is_channels_last's: a 4-d tensor is channels_last when its memory
is NHWC and not also NCHW (a tensor with one channel, or 1x1 planes, is both, and counts as NCHW).
The fake implementations describe their outputs with it (empty_image), so that torch.compile
traces the strides the kernels write."""
import torch

_ARRAY_DTYPES = (torch.float32, torch.float64, torch.int64)


def is_channels_last(tensor):
    """Whether fastconv's ops read `tensor` as channels_last: 4-d NHWC memory that is not NCHW too."""
    return (tensor.dim() == 4 and not tensor.is_contiguous()
            and tensor.is_contiguous(memory_format=torch.channels_last))


def as_array(tensor, name):
    """A numpy view of a CPU tensor: contiguous and channels_last tensors as they are, any other
    strides copied once to contiguous."""
    if not tensor.is_cpu:  # (tensor.device.type builds a device object: 10x slower, on every call)
        raise ValueError(f"{name}: fastconv.torch runs on CPU tensors, got a tensor on {tensor.device} "
                         f"(move it with .cpu())")
    if tensor.dtype not in _ARRAY_DTYPES:
        raise TypeError(f"{name}: expected a float32 or float64 tensor, got {tensor.dtype}")
    if not tensor.is_contiguous() and not is_channels_last(tensor):
        tensor = tensor.contiguous()
    return (tensor.detach() if tensor.requires_grad else tensor).numpy()


def as_optional_array(tensor, name):
    return None if tensor is None else as_array(tensor, name)


def as_tensor(array):
    """The tensor viewing the array a kernel wrote (no copy; the array's strides, so its layout)."""
    return torch.from_numpy(array)


def as_tensor_or_empty(array, like):
    """A gradient the kernel skipped comes back from an op as an empty tensor (torch operators return
    tensors, never None); the autograd formula turns it into None."""
    return as_tensor(array) if array is not None else like.new_empty(0)


def in_layout_of(tensor, like):
    """`tensor` in channels_last memory when `like` is channels_last (one copy unless it already
    is), else itself: a gradient handed to a backward kernel in the layout of the forward's input,
    so that the kernel runs in place and returns the input gradient in that layout."""
    return tensor.contiguous(memory_format=torch.channels_last) if is_channels_last(like) else tensor


def empty_image(like, shape, channels_last, dtype=None):
    """An uninitialised 4-d result on like's device, in channels_last memory format when
    `channels_last`, else contiguous: what a fake implementation returns for a kernel that writes
    its result in that layout."""
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    return torch.empty(shape, dtype=dtype or like.dtype, device=like.device, memory_format=memory_format)


__all__ = ["is_channels_last", "as_array", "as_optional_array", "as_tensor", "as_tensor_or_empty", "in_layout_of",
           "empty_image"]
