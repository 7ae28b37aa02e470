"""The one seam between the engine and its array library.

Everything the engine allocates goes through `get_array_module`, so CuPy can be slotted in by
changing this file alone (numpy's ufuncs already dispatch to CuPy arrays through
__array_ufunc__). The random generator used by dropout and the initialisers lives here too, so
that a checkpoint can save and restore it.
"""
import numpy as np

_generator = np.random.default_rng()


def get_array_module(*arrays):
    """The array module for these arrays: numpy until a CuPy backend is added here."""
    return np


def manual_seed(seed):
    """Seeds the generator behind dropout and the nn.init functions."""
    global _generator
    _generator = np.random.default_rng(seed)


def generator():
    return _generator


def get_rng_state():
    return _generator.bit_generator.state


def set_rng_state(state):
    _generator.bit_generator.state = state
