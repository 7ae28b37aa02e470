"""fastconv inside PyTorch: fastconv's kernels as torch operators and layers.

    import fastconv.torch as fct
    y = fct.functional.conv2d(x, w, padding=1, algo="winograd")   # torch tensors in and out
    model = fct.convert(torchvision_style_model)                   # its conv/bn/pool layers swapped

- `fastconv.torch.functional`: conv2d, conv_transpose2d, batch_norm (with fused ReLU and residual
  add), max_pool2d, avg_pool2d, adaptive_avg_pool2d, roi_align, roi_pool, grid_sample,
  interpolate, with torch's names and arguments. Each is a torch.library operator
  (torch.ops.fastconv.*) with its gradient and a fake implementation, so autograd and
  torch.compile(fullgraph=True) work through it. CPU tensors cross without a copy when they are
  contiguous or in torch.channels_last memory format; a channels_last input gives a channels_last
  output and input gradient (the roi ops' pooled boxes are NCHW, as torchvision's), so a
  channels_last model stays channels_last. CUDA tensors are refused.
- `fastconv.torch.nn`: Conv2d, ConvTranspose2d, BatchNorm2d, MaxPool2d, AvgPool2d,
  AdaptiveAvgPool2d, RoIAlign, RoIPool, drop-ins with torch's arguments and state_dict keys.
- `fastconv.torch.convert(model)`: swaps a model's torch layers for those, in place.
- `fastconv.torch.fuse(model)`: a copy whose conv -> batch norm [-> + shortcut] [-> ReLU]
  chains are one convolution each in eval mode (the batch norm folded into its weights, the sum
  and the ReLU done as the kernel stores each output), and whose batch norm [-> + shortcut]
  [-> ReLU] chains are one fastconv batch-norm pass each in training.

PyTorch is an optional extra (pip install "fastconv[torch]"); `import fastconv` never imports it.
"""
try:
    import torch  # noqa: F401  (absolute: the real torch, not this package)
except ImportError as error:
    raise ImportError('fastconv.torch needs PyTorch: pip install "fastconv[torch]"') from error

from fastconv.torch import functional, nn
from fastconv.torch.fuse import fuse
from fastconv.torch.nn import (AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Conv2d, ConvTranspose2d, MaxPool2d, RoIAlign,
                               RoIPool, convert)

__all__ = ["functional", "nn", "convert", "fuse", "Conv2d", "ConvTranspose2d", "BatchNorm2d", "MaxPool2d", "AvgPool2d",
           "AdaptiveAvgPool2d", "RoIAlign", "RoIPool"]
