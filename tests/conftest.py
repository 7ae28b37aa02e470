"""Shared test fixtures: every available micro-kernel ISA, the devices to run ops on, seeded
generators, optional torch."""
import os
import tempfile
import zlib

import numpy as np
import pytest

# algo="auto" remembers its choices on disk (fastconv.conv_cache): the tests start from none and
# leave none in the user's ~/.cache.
os.environ["FASTCONV_CACHE_DIR"] = tempfile.mkdtemp(prefix="fastconv-test-cache-")

import fastconv
from fastconv import _runtime, backend

DEVICES, WHY_NOT_CUDA = backend.kernel_devices()


def pytest_report_header(config):
    if WHY_NOT_CUDA is None:
        return f"devices: {', '.join(DEVICES)}"
    return f"devices: {', '.join(DEVICES)}; cuda not run: {WHY_NOT_CUDA}"


@pytest.fixture(params=_runtime.supported_isas())
def isa(request):
    """Runs a test once per micro-kernel variant this CPU supports, then restores the best one."""
    previous = _runtime.get_isa()
    fastconv.set_isa(request.param)
    yield request.param
    fastconv.set_isa(previous)


@pytest.fixture(params=DEVICES)
def device(request):
    """The device an op test puts its inputs on (backend.to_device) before the op runs: cpu, and
    cuda where CuPy sees a GPU and the build has CUDA kernels (backend.kernel_devices)."""
    return request.param


class CudaArrayStandIn:
    """What fastconv.backend takes for a CuPy array (it reads the type's module only), without
    CuPy: an op must refuse it before anything reads it. Reading it as a host array fails, as a
    real CuPy array's implicit conversion does."""

    __module__ = "cupy"

    def __array__(self, *args, **kwargs):
        raise AssertionError("a device array was read as a host array")


@pytest.fixture
def cuda_array():
    if WHY_NOT_CUDA is None:
        pytest.skip("CUDA runs here: the device tests use real CuPy arrays instead of the stand-in")
    return CudaArrayStandIn()


@pytest.fixture
def rng(request):
    # One stream per test, stable across runs and independent of test order.
    seed = zlib.crc32(request.node.nodeid.encode())
    return np.random.default_rng(seed)


@pytest.fixture(scope="session")
def torch():
    return pytest.importorskip("torch")


@pytest.fixture
def one_thread():
    """For tests that run thousands of tiny kernels (gradcheck): an OpenMP team forked per tiny
    product costs far more than the product when test workers already fill the cores."""
    previous = fastconv.get_num_threads()
    fastconv.set_num_threads(1)
    yield
    fastconv.set_num_threads(previous)


@pytest.fixture(params=["by_size", "always"])
def stream_stores(request):
    """Runs a test with outputs written as in use (test sizes: cached stores) and once with
    every output streamed past the cache (core/stream_store.h), which large tensors get."""
    fastconv._C.set_stream_stores(request.param)
    yield request.param
    fastconv._C.set_stream_stores("by_size")
