"""Differentiable ops with torch.nn.functional's names and argument rules.

Each op is a Function (forward and backward side by side) over raw arrays, or a composition of
Tensor operations where that is already efficient; one module per family:
    conv, conv_transpose, pool, norm, rnn   the compiled kernels of fastconv.ops
    roi, sampling                      roi_pool, roi_align (torchvision.ops' names and arguments);
                                       grid_sample, affine_grid, interpolate
    linear, activation, dropout, loss  the engine-level ops (linear runs the compiled GEMM)
"""
from fastconv.functional.activation import (ELU, LeakyReLU, LogSoftmax, Softmax, elu, leaky_relu, log_softmax,
                                            relu, sigmoid, softmax, tanh)
from fastconv.functional.conv import Conv2d, conv2d
from fastconv.functional.conv_transpose import ConvTranspose2d, conv_transpose2d
from fastconv.functional.dropout import Dropout, dropout
from fastconv.functional.linear import Linear, embedding, linear
from fastconv.functional.loss import (CrossEntropy, binary_cross_entropy_with_logits, cross_entropy, l1_loss,
                                      mse_loss, multi_margin_loss, smooth_l1_loss)
from fastconv.functional.norm import BatchNorm, batch_norm
from fastconv.functional.pool import (AdaptiveAvgPool2d, AvgPool2d, MaxPool2d, adaptive_avg_pool2d, avg_pool2d,
                                      max_pool2d)
from fastconv.functional.rnn import LSTMCell, lstm_cell
from fastconv.functional.roi import RoIAlign, RoIPool, roi_align, roi_pool
from fastconv.functional.sampling import (AffineGrid, GridSample, Interpolate, affine_grid, grid_sample,
                                          interpolate)
# PyTorch's deprecated aliases of interpolate: importable, left out of __all__ as deprecated names.
from fastconv.functional.sampling import upsample, upsample_bilinear, upsample_nearest  # noqa: F401

__all__ = ["conv2d", "Conv2d", "conv_transpose2d", "ConvTranspose2d",
           "max_pool2d", "MaxPool2d", "avg_pool2d", "AvgPool2d", "adaptive_avg_pool2d", "AdaptiveAvgPool2d",
           "batch_norm", "BatchNorm",
           "lstm_cell", "LSTMCell",
           "roi_pool", "RoIPool", "roi_align", "RoIAlign",
           "grid_sample", "GridSample", "affine_grid", "AffineGrid", "interpolate", "Interpolate",
           "linear", "Linear", "embedding",
           "relu", "sigmoid", "tanh", "leaky_relu", "LeakyReLU", "elu", "ELU",
           "softmax", "Softmax", "log_softmax", "LogSoftmax",
           "dropout", "Dropout",
           "cross_entropy", "CrossEntropy", "multi_margin_loss", "mse_loss", "l1_loss",
           "binary_cross_entropy_with_logits", "smooth_l1_loss"]
