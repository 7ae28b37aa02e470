"""fastconv: hand-written C++ kernels for convolutional networks."""
from fastconv._runtime import get_num_threads, set_isa, set_num_threads, show_config
from fastconv import ops

__version__ = "0.1.0"

__all__ = ["ops", "show_config", "set_num_threads", "get_num_threads", "set_isa", "__version__"]
