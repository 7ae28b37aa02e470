"""fastconv.torch, imported only where torch is installed (the `torch` fixture skips otherwise)."""
import pytest


@pytest.fixture(scope="session")
def fct(torch):
    import fastconv.torch
    return fastconv.torch
