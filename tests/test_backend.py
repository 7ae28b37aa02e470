"""The device seam: which array module, device and kernel library serve an array."""
import numpy as np
import pytest

from fastconv import _C, backend


def test_host_arrays_are_served_by_numpy_and_the_cpu_extension():
    x = np.zeros((2, 3), np.float32)
    assert backend.array_module(x, None) is np
    assert backend.device_of(x) == "cpu"
    assert backend.kernels(x, None) is _C
    assert backend.to_host(x) is x
    assert backend.to_device(x, "cpu") is x


def test_device_arrays_are_told_apart_without_importing_cupy(cuda_array):
    assert backend.is_cuda_array(cuda_array)
    assert backend.device_of(cuda_array) == "cuda"
    assert not backend.is_cuda_array(np.zeros(1))


def test_a_device_array_is_refused_before_any_kernel_runs(cuda_array):
    with pytest.raises(backend.DeviceError, match="conv2d: fastconv has no CUDA kernels"):
        backend.kernels(np.zeros(1), cuda_array, op="conv2d")


def test_device_names_follow_pytorch():
    assert backend.check_device("cuda:0") == "cuda"
    with pytest.raises(ValueError, match="device: expected one of"):
        backend.check_device("tpu")
    with pytest.raises(ValueError, match="device: expected one of"):
        backend.empty((2,), np.float32, device="gpu")


def test_cuda_status_gives_a_reason_when_unavailable():
    available, reason = backend.cuda_status()
    assert isinstance(reason, str) and reason
    assert backend.cuda_available() == available
    if not available:
        with pytest.raises(backend.DeviceError, match="device 'cuda' is not available"):
            backend.empty((2,), np.float32, device="cuda")


def test_empty_and_zeros_allocate_on_the_host():
    big = backend.empty((512, 256), np.float32)  # 512 KiB: from the output cache
    assert big.shape == (512, 256) and big.dtype == np.float32 and big.flags.c_contiguous
    z = backend.zeros(5, np.float64)
    assert z.shape == (5,) and not z.any()
    assert backend.empty_like(z).shape == (5,)


def test_the_generator_state_round_trips():
    backend.manual_seed(3)
    state = backend.get_rng_state()
    first = backend.generator().random(4)
    backend.set_rng_state(state)
    np.testing.assert_array_equal(backend.generator().random(4), first)


def test_kernel_devices_name_the_cpu_and_say_why_not_cuda():
    devices, why_not_cuda = backend.kernel_devices()
    assert devices[0] == "cpu"
    assert ("cuda" in devices) == (why_not_cuda is None)
