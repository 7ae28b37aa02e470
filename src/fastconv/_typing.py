"""Names for the types in the public API's signatures."""
from typing import Any, Sequence, Tuple, Union

# A numpy or CuPy array, or another framework's array with __dlpack__ (a torch CPU tensor, a JAX
# array): fastconv.ops return arrays of the kind they are given.
Array = Any
# An int, or a pair (height, width), as PyTorch's window arguments.
IntPair = Union[int, Tuple[int, int], Sequence[int]]
Shape4 = Sequence[int]

__all__ = ["Array", "IntPair", "Shape4"]
