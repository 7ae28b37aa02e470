"""numpy-level kernels: argument checks, output allocation, dispatch to fastconv._C."""
from fastconv.ops.matmul import matmul
from fastconv.ops.conv import conv2d, conv2d_backward, conv2d_input, conv2d_weight
from fastconv.ops.conv_transpose import conv_transpose2d, conv_transpose2d_backward

__all__ = ["matmul", "conv2d", "conv2d_input", "conv2d_weight", "conv2d_backward",
           "conv_transpose2d", "conv_transpose2d_backward"]
