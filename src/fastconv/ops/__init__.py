"""The checked entry of every compiled kernel, one module per kernel family (conv,
conv_transpose, roi, sampling, norm, pool, rnn, gemm, boxes): arguments are checked here, once, the output is
allocated, and the kernel runs.

Devices belong to fastconv.backend, and nothing here imports fastconv._C. Each op first asks
backend.kernels, with all its array arguments, for the library that serves them (a device array
with no kernels is refused there, before any check reads it) and makes every compiled call
through that library, output shapes included; its helpers receive it as `lib`. conv_algo, which
decides on shapes alone, asks with no arrays. Outputs come from backend.empty on the inputs'
device, and array calls on the inputs go through backend.array_module.

Every op exported here also takes other frameworks' arrays (torch tensors, JAX arrays) and
returns arrays of the caller's kind: backend.accepts_dlpack, wrapped around each below.
"""
from fastconv.backend import accepts_dlpack
from fastconv.ops.gemm import matmul
from fastconv.ops.conv import conv2d, conv2d_backward, conv2d_input, conv2d_weight
from fastconv.ops.conv_weight_cache import PreparedWeight, prepare_conv_weight
from fastconv.ops.roi import roi_align, roi_align_backward, roi_pool, roi_pool_backward
from fastconv.ops.sampling import (affine_grid, affine_grid_backward, grid_sample, grid_sample_backward,
                                   interpolate, interpolate_backward)
from fastconv.ops.conv_transpose import conv_transpose2d, conv_transpose2d_backward
from fastconv.ops.norm import batch_norm, batch_norm_backward, fold_bn_into_conv
from fastconv.ops.boxes import batched_nms, box_iou, decode_boxes, encode_boxes, grid_anchors, match_boxes, nms
from fastconv.ops.pool import (adaptive_avg_pool2d, adaptive_avg_pool2d_backward, avg_pool2d,
                               avg_pool2d_backward, max_pool2d, max_pool2d_backward)
from fastconv.ops.rnn import lstm_cell, lstm_cell_backward
from fastconv.ops._checks import is_channels_last, to_channels_last

__all__ = ["matmul", "conv2d", "conv2d_input", "conv2d_weight", "conv2d_backward",
           "PreparedWeight", "prepare_conv_weight",
           "conv_transpose2d", "conv_transpose2d_backward",
           "batch_norm", "batch_norm_backward", "fold_bn_into_conv",
           "max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
           "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward",
           "lstm_cell", "lstm_cell_backward",
           "roi_pool", "roi_pool_backward", "roi_align", "roi_align_backward",
           "grid_sample", "grid_sample_backward", "affine_grid", "affine_grid_backward",
           "interpolate", "interpolate_backward",
           "box_iou", "nms", "batched_nms", "encode_boxes", "decode_boxes", "grid_anchors", "match_boxes",
           "is_channels_last", "to_channels_last"]

for _name in __all__:
    if _name not in ("PreparedWeight", "is_channels_last", "to_channels_last"):  # numpy arrays' layout helpers
        globals()[_name] = accepts_dlpack(globals()[_name])
