"""fastconv: hand-written C++ kernels for convolutional networks."""
from fastconv._version import __version__
from fastconv._runtime import (get_num_threads, get_workspace_limit, output_cache_stats, release_output_cache,
                               set_isa, set_num_threads, set_output_cache_limit, set_workspace_limit, show_config)
from fastconv import backend, ops
from fastconv.ops import conv_cache
from fastconv.autograd import Tensor, cat, from_dlpack, gradcheck, manual_seed, no_grad, split, stack, tensor
from fastconv import checkpoint, functional, nn, optim

__all__ = ["backend", "ops", "show_config", "set_num_threads", "get_num_threads", "set_isa", "__version__",
           "set_output_cache_limit", "release_output_cache", "output_cache_stats", "conv_cache",
           "set_workspace_limit", "get_workspace_limit",
           "Tensor", "tensor", "from_dlpack", "no_grad", "gradcheck", "manual_seed", "cat", "stack", "split",
           "functional", "nn", "optim", "checkpoint"]
