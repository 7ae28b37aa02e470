"""Hostile windows for pooling: PyTorch takes kernel_size, stride, padding and dilation as C ints
and refuses larger ones; within that range a window may still be far larger than the padded
input in ceil mode (one output), which the kernels now sweep over the taps that reach the input
only, instead of every tap of the window (a hang, and for max pooling a table per tap)."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastconv._C as C
from fastconv import ops

try:
    import torch
except ImportError:  # the comparisons below need it; the refusals do not
    torch = None


def _input():
    return np.random.default_rng(0).standard_normal((1, 2, 6, 7))


@pytest.mark.parametrize("case, message", [
    (dict(kernel_size=2**40), r"kernel_size: must be at most 2\^31 - 1 \(PyTorch's int\), got 1099511627776"),
    (dict(kernel_size=5, stride=2**62), r"stride: must be at most 2\^31 - 1 \(PyTorch's int\), got 4611686018427387904"),
    (dict(kernel_size=2**62, stride=1, padding=2**61), r"kernel_size: must be at most 2\^31 - 1"),
])
@pytest.mark.parametrize("op", ["avg_pool2d", "max_pool2d"])
def test_window_beyond_int32_is_refused(case, message, op):
    with pytest.raises(ValueError, match=message):
        getattr(ops, op)(_input(), ceil_mode=True, **case)


@pytest.mark.parametrize("op", ["avg_pool2d", "max_pool2d"])
@pytest.mark.parametrize("padding", [-1, 4])
def test_window_arguments_are_checked_before_the_empty_plane(op, padding):
    # PyTorch's order: a bad padding is named even when the input's plane is empty too
    with pytest.raises(ValueError, match=rf"^padding: .*got {padding} for kernel_size 2"):
        getattr(ops, op)(np.zeros((1, 0, 1, 49)), kernel_size=2, stride=50, padding=padding)
    with pytest.raises(ValueError, match=r"^input: expected a \(N, C, H, W\) batch with non-zero C"):
        getattr(ops, op)(np.zeros((1, 0, 1, 49)), kernel_size=2, stride=50, padding=1)


def test_dilation_beyond_int32_is_refused():
    with pytest.raises(ValueError, match=r"dilation: must be at most 2\^31 - 1"):
        C.pool2d_output_shape((1, 2, 6, 7), (2, 2), (1, 1), (0, 0), (2**40, 1), True)


def test_huge_ceil_mode_kernel_does_not_hang():
    code = textwrap.dedent("""
        import numpy as np
        from fastconv import ops
        x = np.ones((1, 2, 6, 7))
        for kernel in (2**40, 2**30):
            for op in (ops.avg_pool2d, ops.max_pool2d):
                try:
                    print(op(x, kernel, stride=kernel, ceil_mode=True)[0].shape if op is ops.max_pool2d
                          else op(x, kernel, stride=kernel, ceil_mode=True).shape)
                except ValueError as e:
                    print("refused:", e)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("refused:") == 2, result.stdout


def _torch_pool(op, x, **kw):
    out = getattr(torch.nn.functional, op)(torch.from_numpy(x), **kw)
    return out.numpy()


@pytest.mark.skipif(torch is None, reason="needs torch")
@pytest.mark.parametrize("kw", [
    dict(kernel_size=2**30, stride=2**30, ceil_mode=True),
    dict(kernel_size=2**30, stride=2**30, padding=2**29, ceil_mode=True),
    dict(kernel_size=(2**20, 3), stride=(2**20, 2), padding=(2**19, 1), ceil_mode=True),
    dict(kernel_size=(9, 2**25), stride=(4, 2**25), padding=(4, 3), ceil_mode=True),
])
def test_huge_ceil_mode_window_matches_torch(kw):
    x = _input()
    np.testing.assert_allclose(ops.avg_pool2d(x, **kw), _torch_pool("avg_pool2d", x, **kw), rtol=1e-12)
    np.testing.assert_allclose(ops.avg_pool2d(x, count_include_pad=False, **kw),
                               _torch_pool("avg_pool2d", x, count_include_pad=False, **kw), rtol=1e-12)
    y, indices = ops.max_pool2d(x, return_indices=True, **kw)
    ty, tindices = torch.nn.functional.max_pool2d(torch.from_numpy(x), return_indices=True, **kw)
    np.testing.assert_array_equal(y, ty.numpy())
    np.testing.assert_array_equal(indices, tindices.numpy())


@pytest.mark.skipif(torch is None, reason="needs torch")
def test_huge_dilated_max_pool_window_matches_torch():
    x = _input()
    kw = dict(kernel_size=(2**16, 3), stride=(2**18, 1), padding=(2**15, 1), dilation=(3, 2), ceil_mode=True)
    y, indices = ops.max_pool2d(x, return_indices=True, **kw)
    ty, tindices = torch.nn.functional.max_pool2d(torch.from_numpy(x), return_indices=True, **kw)
    np.testing.assert_array_equal(y, ty.numpy())
    np.testing.assert_array_equal(indices, tindices.numpy())
