"""The CUDA kernel library: the functions of fastconv._C, by the same names and with the same
signatures, for CuPy arrays (outputs preallocated on the device by fastconv.ops).
fastconv.backend.kernels() returns this module for device arrays; one module per family
implements its functions. A function of fastconv._C that has no CUDA kernel yet raises
fastconv.backend.DeviceError naming it, when an op looks it up."""
from fastconv import _C
from fastconv.backend import DeviceError
from fastconv.cuda.conv import (conv2d_algorithms, conv2d_backward_input, conv2d_backward_weight,  # noqa: F401
                                conv2d_forward, conv2d_heuristic, conv2d_output_shape, conv2d_transformed_weight_size,
                                conv2d_unsupported_reason, conv2d_weight_transform_tile)
from fastconv.cuda.conv import conv2d_resolve  # noqa: F401  (algo="auto", timed on the device)
from fastconv.cuda.conv_transpose import (conv_transpose2d_backward, conv_transpose2d_forward,  # noqa: F401
                                          conv_transpose2d_output_shape)
from fastconv.cuda.gemm import gemm  # noqa: F401
from fastconv.cuda.norm import batch_norm_backward, batch_norm_eval_forward, batch_norm_train_forward  # noqa: F401
from fastconv.cuda.pool import (adaptive_avg_pool2d_backward, adaptive_avg_pool2d_forward,  # noqa: F401
                                avg_pool2d_backward, avg_pool2d_forward, max_pool2d_backward, max_pool2d_forward,
                                pool2d_output_shape)
from fastconv.cuda.roi import roi_align_backward, roi_align_forward, roi_pool_backward, roi_pool_forward  # noqa: F401
from fastconv.cuda.sampling import (affine_grid_backward, affine_grid_forward, grid_sample_backward,  # noqa: F401
                                    grid_sample_forward, interpolate_backward, interpolate_forward)


def __getattr__(name):
    if hasattr(_C, name):
        raise DeviceError(f"{name}: fastconv has no CUDA kernel for this yet; move the arrays to the CPU "
                          f"(fastconv.backend.to_host, or Tensor.cpu())")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
