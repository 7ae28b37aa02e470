"""numpy-level kernels: argument checks, output allocation, dispatch to fastconv._C."""
from fastconv.ops.gemm import matmul
from fastconv.ops.conv import conv2d, conv2d_backward, conv2d_input, conv2d_weight
from fastconv.ops.conv_weight_cache import PreparedWeight, prepare_conv_weight
from fastconv.ops.roi import roi_align, roi_align_backward, roi_pool, roi_pool_backward
from fastconv.ops.sampling import (affine_grid, affine_grid_backward, grid_sample, grid_sample_backward,
                                   interpolate, interpolate_backward)
from fastconv.ops.conv_transpose import conv_transpose2d, conv_transpose2d_backward
from fastconv.ops.norm import batch_norm, batch_norm_backward, fold_bn_into_conv
from fastconv.ops.pool import (adaptive_avg_pool2d, adaptive_avg_pool2d_backward, avg_pool2d,
                               avg_pool2d_backward, max_pool2d, max_pool2d_backward)

__all__ = ["matmul", "conv2d", "conv2d_input", "conv2d_weight", "conv2d_backward",
           "PreparedWeight", "prepare_conv_weight",
           "conv_transpose2d", "conv_transpose2d_backward",
           "batch_norm", "batch_norm_backward", "fold_bn_into_conv",
           "max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
           "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward",
           "roi_pool", "roi_pool_backward", "roi_align", "roi_align_backward",
           "grid_sample", "grid_sample_backward", "affine_grid", "affine_grid_backward",
           "interpolate", "interpolate_backward"]
