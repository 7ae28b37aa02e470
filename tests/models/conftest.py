import pytest

from fastconv.ops import conv_algo


@pytest.fixture
def deterministic_algorithms(one_thread):
    """Convolution algorithms fixed and one thread: runs are reproducible, and small layers are
    not slowed by an OpenMP team fighting the other test worker."""
    previous = conv_algo.get_mode()
    conv_algo.set_mode("deterministic")
    yield
    conv_algo.set_mode(previous)
