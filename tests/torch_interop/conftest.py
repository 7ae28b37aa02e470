"""fastconv.torch, imported only where torch is installed (the `torch` fixture skips otherwise)."""
import importlib.util

import pytest

import fastconv
from fastconv.ops import conv_algo


@pytest.fixture(scope="session")
def fct(torch):
    import fastconv.torch
    return fastconv.torch


@pytest.fixture(autouse=True, scope="package")
def conv_algo_by_rule():
    """algo="auto" by its fixed rule rather than by timing every candidate on each new shape:
    these tests check how tensors cross into the kernels, not which kernel is fastest, and
    timing dozens of shapes would take most of their run time."""
    previous = conv_algo.get_mode()
    conv_algo.set_mode("deterministic")
    yield
    conv_algo.set_mode(previous)


@pytest.fixture(autouse=True, scope="package")
def one_thread_each():
    """One thread for fastconv and one for torch: the test workers already fill the cores, and
    two OpenMP teams (torch's runtime and fastconv's) on a busy machine made one tiny training
    step a hundred times slower."""
    torch = importlib.import_module("torch") if importlib.util.find_spec("torch") else None
    previous = fastconv.get_num_threads(), torch.get_num_threads() if torch else None
    fastconv.set_num_threads(1)
    if torch:
        torch.set_num_threads(1)
    yield
    fastconv.set_num_threads(previous[0])
    if torch:
        torch.set_num_threads(previous[1])
