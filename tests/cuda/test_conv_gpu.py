"""conv.cu's im2col and col2im launched on a GPU, against the CPU run of the same bodies' kernel
twin (fastconv._C's conv2d with a one-hot weight, test_conv_host.py) and torch's unfold/fold on
CUDA when torch has it. Skipped, with the reason, where CuPy sees no GPU."""
import numpy as np
import pytest

from fastconv import _C
from fastconv.cuda import im2col as columns
from tests.cuda.gpu import cupy_or_skip
from tests.cuda.test_conv_host import CASES, one_hot_weight


@pytest.fixture(scope="module")
def cupy():
    return cupy_or_skip()


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_im2col_and_col2im_on_the_gpu_equal_the_cpu_kernels(cupy, case, dtype, rng):
    n, c, h, w, kh, kw, stride, padding, pad_end, dilation = case
    geometry = columns.column_geometry((n, c, h, w), kh, kw, stride, padding, dilation, pad_end)
    shape = columns.columns_shape(geometry)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    weight = one_hot_weight(c, kh, kw, dtype)
    conv_args = (stride, padding, pad_end, dilation, 1)
    expected = np.empty((n, shape[1], *geometry[-2:]), dtype)
    _C.conv2d_forward(x, weight, None, expected, *conv_args, algo="im2col")
    cols = cupy.full(shape, np.nan, dtype)
    columns.im2col(cupy.asarray(x), kh, kw, stride, padding, dilation, cols, pad_end=pad_end)
    np.testing.assert_array_equal(cols.get(), expected.reshape(shape))  # copies: exact

    dy = rng.standard_normal(shape).astype(dtype)
    expected_dx = np.empty_like(x)
    _C.conv2d_backward_input(dy.reshape(expected.shape), weight, expected_dx, *conv_args, algo="im2col")
    dx = cupy.full(x.shape, np.nan, dtype)
    columns.col2im(cupy.asarray(dy), kh, kw, stride, padding, dilation, dx, pad_end=pad_end)
    np.testing.assert_array_equal(dx.get(), expected_dx)  # the same adds in the same order


def test_col2im_is_torch_fold_on_cuda(cupy, torch, rng):
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA here")
    x = cupy.asarray(rng.standard_normal((2, 3, 9, 8)))
    options = dict(kernel_size=(3, 2), dilation=(2, 1), padding=(1, 1), stride=(2, 1))
    cols = cupy.empty((2, 18, 4 * 9))
    columns.im2col(x, 3, 2, (2, 1), (1, 1), (2, 1), cols)
    unfolded = torch.nn.functional.unfold(torch.as_tensor(x, device="cuda"), **options)
    np.testing.assert_array_equal(cols.get(), unfolded.cpu().numpy())
    dx = cupy.empty_like(x)
    columns.col2im(cols, 3, 2, (2, 1), (1, 1), (2, 1), dx)
    folded = torch.nn.functional.fold(torch.as_tensor(cols, device="cuda"), output_size=(9, 8), **options)
    np.testing.assert_allclose(dx.get(), folded.cpu().numpy(), rtol=1e-13, atol=1e-13)

