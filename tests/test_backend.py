"""The device seam: which array module, device and kernel library serve an array."""
import inspect
import re

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


def test_a_device_array_is_refused_before_any_kernel_runs_where_cuda_cannot_run(cuda_array):
    with pytest.raises(backend.DeviceError, match="^conv2d: fastconv has no CUDA kernels usable here \\(.+\\)"):
        backend.kernels(np.zeros(1), cuda_array, op="conv2d")


@pytest.fixture
def cuda_usable(monkeypatch):
    """backend as on a machine whose CUDA kernels load (without touching a GPU)."""
    monkeypatch.setattr(backend, "_kernel_devices", lambda: (("cpu", "cuda"), None))


def test_arrays_on_two_devices_are_refused_naming_each_device(cuda_usable, cuda_array):
    def conv2d(input, weight, bias):  # as an op calls kernels(): its own names for the arrays
        return backend.kernels(input, weight, bias, op="conv2d")

    with pytest.raises(backend.DeviceError, match="^conv2d: input is on cuda, weight on cpu; move them"):
        conv2d(cuda_array, np.zeros(1), None)
    with pytest.raises(backend.DeviceError, match="^conv2d: argument 1 is on cpu, cuda_array on cuda"):
        backend.kernels(np.zeros(1), cuda_array, op="conv2d")


def test_device_arrays_are_served_by_the_cuda_kernel_library(cuda_usable, cuda_array):
    from fastconv.cuda import kernels as cuda_kernels
    assert backend.kernels(cuda_array, None, cuda_array, op="conv2d") is cuda_kernels


def _parameters(c_function):
    """The parameter names of a fastconv._C function, from its pybind11 signature line."""
    signature = c_function.__doc__.strip().splitlines()[0]
    inside = signature[signature.index("(") + 1:signature.rindex(") ->")]
    return [p.split(":")[0].strip() for p in re.split(r",\s*(?=\w+:)", inside) if p.strip()]


def test_the_cuda_library_takes_the_cpu_librarys_arguments():
    from fastconv.cuda import kernels as cuda_kernels
    served = [n for n in dir(_C) if not n.startswith("_") and n in vars(cuda_kernels)]
    assert {"batch_norm_train_forward", "max_pool2d_forward", "conv2d_forward"} <= set(served)
    for name in served:
        function = vars(cuda_kernels)[name]
        if function is getattr(_C, name):  # shape arithmetic shared with the CPU
            continue
        parameters = list(inspect.signature(function).parameters.values())
        expected = _parameters(getattr(_C, name))
        # called as the ops call _C's: the same names in the same order; a device option may follow
        assert [p.name for p in parameters[:len(expected)]] == expected, name
        assert all(p.default is not inspect.Parameter.empty for p in parameters[len(expected):]), name


def test_a_kernel_not_written_for_cuda_is_refused_naming_it():
    from fastconv.cuda import kernels as cuda_kernels
    with pytest.raises(backend.DeviceError, match="^lstm_cell_forward: fastconv has no CUDA kernel for this"):
        cuda_kernels.lstm_cell_forward
    with pytest.raises(AttributeError):
        cuda_kernels.no_such_kernel


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


def test_an_array_is_unshared_when_its_callers_reference_is_the_only_way_to_its_memory():
    def unshared_fresh(make):  # `array` below: the one reference unshared allows its caller
        array = make()
        return backend.unshared(array)

    assert unshared_fresh(lambda: np.ones(3))
    assert unshared_fresh(lambda: backend.empty((512, 256), np.float32))  # an output-cache block
    assert unshared_fresh(lambda: np.ones(6).reshape(2, 3))  # a view of an array nothing else holds
    assert unshared_fresh(lambda: backend.empty((512, 256), np.float32).reshape(256, 512))
    kept = np.ones(3)
    assert not unshared_fresh(lambda: kept)  # referenced twice
    assert not unshared_fresh(lambda: kept.reshape(3, 1))  # a view of a referenced array
    assert not unshared_fresh(lambda: kept[:2].reshape(2, 1))
    big = backend.empty((512, 256), np.float32)
    assert not unshared_fresh(lambda: big.reshape(256, 512))
    assert not unshared_fresh(lambda: np.frombuffer(bytearray(24)))  # memory a buffer owns
    assert not unshared_fresh(lambda: np.from_dlpack(np.ones(3)))
    assert not unshared_fresh(lambda: np.broadcast_to(np.ones(3), (2, 3)))  # read-only
    assert not backend.unshared([1.0])  # not an array


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
