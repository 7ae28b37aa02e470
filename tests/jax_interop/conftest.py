import pytest

from fastconv.ops import conv_algo


@pytest.fixture(autouse=True, scope="package")
def conv_algo_by_rule():
    """algo="auto" by its fixed rule: these tests compare JAX's calls with fastconv.ops' bit for
    bit, which needs the same kernel on both sides; while auto is choosing, a shape's calls run
    different candidates (their results differ in rounding)."""
    previous = conv_algo.get_mode()
    conv_algo.set_mode("deterministic")
    yield
    conv_algo.set_mode(previous)
