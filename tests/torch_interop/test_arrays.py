"""How tensors cross into fastconv and back: without a copy when contiguous, converted when not,
refused with a clear message when they cannot be read (wrong dtype, wrong device, a tensor
that requires grad given to an op that records no gradient)."""
import subprocess
import sys

import numpy as np
import pytest

import fastconv
from fastconv import ops


@pytest.fixture
def spy_max_pool(monkeypatch):
    """Records the input array the max_pool2d op (fastconv.ops.pool's, which fastconv.torch calls)
    receives and the array it returns."""
    from fastconv.ops import pool
    seen = {}
    original = pool.max_pool2d

    def spy(input, *args, **kwargs):
        seen["input"] = input
        seen["output"] = original(input, *args, **kwargs)
        return seen["output"]

    monkeypatch.setattr(pool, "max_pool2d", spy)
    return seen


def test_fastconv_torch_copies_nothing_for_contiguous_tensors(torch, fct, spy_max_pool):
    x = torch.randn(2, 3, 8, 8)
    y = fct.functional.max_pool2d(x, 2)
    y_array, _ = spy_max_pool["output"]
    assert np.shares_memory(spy_max_pool["input"], x.numpy())
    assert spy_max_pool["input"].ctypes.data == x.data_ptr()
    assert y.data_ptr() == y_array.ctypes.data


def test_non_contiguous_tensors_are_read_right(torch, fct):
    x = torch.randn(2, 3, 9, 8, dtype=torch.float64)
    for view in (x.transpose(2, 3), x[:, :, ::2, 1::3], x.permute(0, 1, 3, 2).contiguous().transpose(2, 3),
                 x.contiguous(memory_format=torch.channels_last)):
        torch.testing.assert_close(fct.functional.avg_pool2d(view, 2), torch.nn.functional.avg_pool2d(view, 2))
    x.requires_grad_()
    fct.functional.max_pool2d(x, 2).sum().backward()  # the incoming gradient is expanded: strides of 0
    assert x.grad.sum() == 2 * 3 * 4 * 4  # 1 routed from each output window


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "int32"])
def test_wrong_dtype_is_refused(torch, fct, dtype):
    x = torch.zeros(1, 1, 4, 4, dtype=getattr(torch, dtype))
    with pytest.raises(TypeError, match="input: expected a float32 or float64 tensor"):
        fct.functional.max_pool2d(x, 2)


def test_device_other_than_cpu_is_refused(torch, fct):
    from fastconv.torch._arrays import as_array
    with pytest.raises(ValueError, match="weight: fastconv.torch runs on CPU tensors, got a tensor on meta"):
        as_array(torch.empty(2, device="meta"), "weight")


def test_mixed_dtypes_are_refused_naming_the_argument(torch, fct):
    with pytest.raises(TypeError, match="weight: dtype float64 does not match input's float32"):
        fct.functional.conv2d(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 3, 3, dtype=torch.float64))


# ---- the plain ops, given torch tensors --------------------------------------------------------

def test_plain_ops_take_and_return_torch_tensors_without_copies(torch):
    x, w = torch.randn(2, 3, 8, 8), torch.randn(4, 3, 3, 3)
    y = ops.conv2d(x, w, padding=1, algo="im2col")
    assert isinstance(y, torch.Tensor)
    torch.testing.assert_close(y, torch.nn.functional.conv2d(x, w, padding=1), rtol=1e-5, atol=1e-5)
    out, indices = ops.max_pool2d(x, 2, return_indices=True)
    assert isinstance(out, torch.Tensor) and indices.dtype == torch.int64
    rows = [torch.tensor([[0.0, 0.0, 4.0, 4.0]]), torch.tensor([[1.0, 1.0, 6.0, 5.0]])]
    assert ops.roi_align(x, rows, 2).shape == (2, 3, 2, 2)


def test_plain_ops_copy_nothing_for_torch_tensors(torch, monkeypatch):
    """The array avg_pool2d's kernel reads is the tensor's memory, and the tensor returned is the
    memory it wrote (the op's kernels() and empty() calls are watched)."""
    from fastconv import backend
    from fastconv.ops import _checks, pool
    seen = {}

    def kernels(*arrays, op):
        seen["read"] = arrays[0]
        return backend.kernels(*arrays, op=op)

    def empty(*args):
        seen["written"] = backend.empty(*args)
        return seen["written"]

    monkeypatch.setattr(pool, "kernels", kernels)
    monkeypatch.setattr(_checks, "empty", empty)  # pool's results come from _checks.empty_in_layout
    x = torch.randn(2, 3, 8, 8)
    y = ops.avg_pool2d(x, 2)
    assert np.shares_memory(seen["read"], x.numpy()) and seen["read"].ctypes.data == x.data_ptr()
    assert y.data_ptr() == seen["written"].ctypes.data


def test_plain_ops_refuse_tensors_that_require_grad(torch):
    x = torch.randn(1, 1, 4, 4, requires_grad=True)
    with pytest.raises(TypeError, match="input: got a tensor that requires grad.*use fastconv.torch"):
        ops.max_pool2d(x, 2)
    with pytest.raises(TypeError, match=r"boxes\[0\]: got a tensor that requires grad"):
        ops.roi_align(x.detach(), [torch.zeros(1, 4, requires_grad=True)], 2)


def test_plain_ops_read_strided_torch_views_right(torch):
    x = torch.randn(2, 3, 9, 8, dtype=torch.float64)
    view = x.transpose(2, 3)[:, :, ::2]
    torch.testing.assert_close(ops.avg_pool2d(view, 2), torch.nn.functional.avg_pool2d(view, 2))


def test_negative_strides_are_read_right(torch):
    """torch has no negative strides; numpy views do, and torch tensors of them are copies."""
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 8))
    flipped = x[:, ::-1, :, ::-1]
    expected = torch.nn.functional.avg_pool2d(torch.from_numpy(flipped.copy()), 2).numpy()
    np.testing.assert_allclose(ops.avg_pool2d(flipped, 2), expected, rtol=1e-12)


def test_plain_ops_refuse_unreadable_dtypes_naming_the_argument(torch):
    with pytest.raises(TypeError, match="input: "):
        ops.max_pool2d(torch.zeros(1, 1, 4, 4, dtype=torch.bfloat16), 2)


class ForeignCudaArray:
    """What another framework's CUDA array shows fastconv: a DLPack device of type 2 (CUDA)."""

    def __dlpack_device__(self):
        return (2, 0)

    def __dlpack__(self, **kwargs):
        raise AssertionError("a CUDA array was read without CuPy")


def test_plain_ops_refuse_cuda_arrays_without_cupy_naming_the_argument():
    from fastconv import backend
    if backend.cuda_available():
        pytest.skip("CuPy sees a GPU here: the array would be imported")
    with pytest.raises(backend.DeviceError, match="input: device 'cuda' is not available"):
        ops.max_pool2d(ForeignCudaArray(), 2)


def test_numpy_results_stay_numpy_and_fastconv_tensors_read_as_before(torch):
    x = np.random.default_rng(0).random((1, 2, 4, 4))
    assert type(ops.max_pool2d(x, 2)) is np.ndarray
    assert type(ops.max_pool2d(fastconv.tensor(x), 2)) is np.ndarray


def test_jax_arrays_in_and_out():
    jnp = pytest.importorskip("jax.numpy")
    x = jnp.asarray(np.random.default_rng(0).random((1, 2, 4, 4)), dtype=jnp.float32)
    y = ops.max_pool2d(x, 2)
    assert type(y).__module__.startswith("jax")
    np.testing.assert_array_equal(np.asarray(y), np.asarray(x).reshape(1, 2, 2, 2, 2, 2).max(axis=(3, 5)))


def test_import_fastconv_does_not_import_torch():
    code = "import sys, fastconv; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
