"""The two crossings between torch tensors and the numpy arrays fastconv's kernels read and
write. For a contiguous CPU tensor neither copies: the array is a view of the tensor's memory
(Tensor.numpy), and the result tensor is a view of the array the kernel wrote (torch.from_numpy,
which keeps the array alive)."""
import torch

_ARRAY_DTYPES = (torch.float32, torch.float64, torch.int64)


def as_array(tensor, name):
    """A numpy view of a CPU tensor (a non-contiguous tensor is copied once)."""
    if not tensor.is_cpu:  # (tensor.device.type builds a device object: 10x slower, on every call)
        raise ValueError(f"{name}: fastconv.torch runs on CPU tensors, got a tensor on {tensor.device} "
                         f"(move it with .cpu())")
    if tensor.dtype not in _ARRAY_DTYPES:
        raise TypeError(f"{name}: expected a float32 or float64 tensor, got {tensor.dtype}")
    if not tensor.is_contiguous():
        tensor = tensor.contiguous()
    return (tensor.detach() if tensor.requires_grad else tensor).numpy()


def as_optional_array(tensor, name):
    return None if tensor is None else as_array(tensor, name)


def as_tensor(array):
    """The tensor viewing the array a kernel wrote (no copy)."""
    return torch.from_numpy(array)


def as_tensor_or_empty(array, like):
    """A gradient the kernel skipped comes back from an op as an empty tensor (torch operators return
    tensors, never None); the autograd formula turns it into None."""
    return as_tensor(array) if array is not None else like.new_empty(0)


__all__ = ["as_array", "as_optional_array", "as_tensor", "as_tensor_or_empty"]
