"""conv2d's CUDA FFT algorithm (cuFFT through cupy.fft, conv.cu's per-bin products) and the timed
algo="auto" on a GPU: the host runs' cases (test_conv_fft_host.py) against torch's CUDA conv2d
(TF32 off), the CPU's FFT and fastconv._C's float64 gradients; the device hooks (free memory, the
device's name) read from the real GPU. Skipped, with the reason, where CuPy sees no GPU."""
import numpy as np
import pytest

import fastconv
from fastconv import _C, ops
from fastconv.cuda import conv as cuda_conv
from fastconv.ops import conv_algo
from tests.conv.test_fft import ERROR_BOUND
from tests.cuda.gpu import cupy_or_skip
from tests.cuda.test_conv_fft_host import CASES


@pytest.fixture(scope="module")
def cupy():
    return cupy_or_skip()


def _relative_error(got, want):
    return np.abs(got - want).max() / np.abs(want).max()


def _torch_conv2d(torch, x, w, b, stride, pad_begin, pad_end, groups):
    """torch's CUDA conv2d with each side's own padding (F.pad; a negative one crops)."""
    padded = torch.nn.functional.pad(torch.from_numpy(x).cuda(), (pad_begin[1], pad_end[1], pad_begin[0], pad_end[0]))
    return torch.nn.functional.conv2d(padded, torch.from_numpy(w).cuda(), torch.from_numpy(b).cuda(), stride=stride,
                                      groups=groups).cpu().numpy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
def test_fft_forward_on_the_gpu_matches_torch(cupy, torch, rng, monkeypatch, dtype, case):
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA here")
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    x_shape, w_shape, (stride, pad_begin, pad_end, dilation, groups) = case
    x, w = rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    geometry = case[2]
    got = cupy.full(_C.conv2d_output_shape(x.shape, w.shape, *geometry), np.nan, dtype)
    cuda_conv.conv2d_forward(cupy.asarray(x), cupy.asarray(w), cupy.asarray(b), got, *geometry, "fft", False)
    want = _torch_conv2d(torch, x, w, b, stride, pad_begin, pad_end, groups)
    assert _relative_error(got.get(), want) <= ERROR_BOUND[dtype]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
def test_fft_gradients_on_the_gpu_match_im2col_s_in_float64(cupy, rng, dtype, case):
    x_shape, w_shape, geometry = case
    x, w = rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype)
    dy = rng.standard_normal(_C.conv2d_output_shape(x_shape, w_shape, *geometry)).astype(dtype)
    dx, dw = cupy.full(x.shape, np.nan, dtype), cupy.full(w.shape, np.nan, dtype)
    cuda_conv.conv2d_backward_input(cupy.asarray(dy), cupy.asarray(w), dx, *geometry, "fft")
    cuda_conv.conv2d_backward_weight(cupy.asarray(x), cupy.asarray(dy), dw, None, *geometry, "fft")
    want_dx, want_dw = np.empty(x.shape), np.empty(w.shape)
    x64, w64, dy64 = (a.astype(np.float64) for a in (x, w, dy))
    _C.conv2d_backward_input(dy64, w64, want_dx, *geometry, "im2col")
    _C.conv2d_backward_weight(x64, dy64, want_dw, None, *geometry, "im2col")
    assert _relative_error(dx.get(), want_dx) <= ERROR_BOUND[dtype]
    assert _relative_error(dw.get(), want_dw) <= ERROR_BOUND[dtype]


def test_timed_auto_on_the_gpu_matches_torch_and_is_kept_per_device(cupy, torch, rng, monkeypatch, tmp_path):
    """A 7x7 layer through fastconv.ops: FFT, im2col and implicit GEMM timed with CUDA events,
    the result torch's, the choice on disk under the GPU's name, read back without timing."""
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA here")
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setenv("FASTCONV_CACHE_DIR", str(tmp_path))
    fastconv.conv_cache.clear()
    conv_algo.set_mode("benchmark")
    x = rng.standard_normal((4, 16, 32, 32)).astype(np.float32)
    w = (rng.standard_normal((16, 16, 7, 7)) / 28).astype(np.float32)
    y = ops.conv2d(cupy.asarray(x), cupy.asarray(w), padding=3)
    want = torch.nn.functional.conv2d(torch.from_numpy(x).cuda(), torch.from_numpy(w).cuda(), padding=3)
    np.testing.assert_allclose(y.get(), want.cpu().numpy(), rtol=2e-4, atol=2e-4)
    name = cuda_conv.device_properties()[0]
    stored = fastconv.conv_cache.entries()
    assert len(stored) == 1 and name in next(iter(stored)) and next(iter(stored.values())) in cuda_conv.ALGORITHMS
    conv_algo.forget_choices()
    monkeypatch.setattr(cuda_conv, "event_time", lambda run, algo: pytest.fail("timed a shape the disk cache knows"))
    ops.conv2d(cupy.asarray(x), cupy.asarray(w), padding=3)
    fastconv.conv_cache.clear()


def test_free_device_memory_reads_the_device(cupy):
    free = cuda_conv.free_device_memory(cupy.zeros(1))
    assert 0 < free <= cupy.cuda.runtime.memGetInfo()[1] + cupy.get_default_memory_pool().total_bytes()
    assert cuda_conv.free_device_memory(np.zeros(1)) is None
