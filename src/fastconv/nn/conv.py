"""Conv2d and ConvTranspose2d: learnable 2-d convolutions over the compiled kernels."""
from typing import Union

import numpy as np
from numpy.typing import DTypeLike

from fastconv._typing import IntPair
from fastconv import functional as F
from fastconv.nn import init
from fastconv.nn.linear import empty_parameter
from fastconv.nn.module import Module


def _checked_kernel(layer, in_channels, out_channels, kernel_size, groups):
    """kernel_size as a pair, after checking that groups divides both channel counts."""
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"{layer}: in_channels ({in_channels}) and out_channels ({out_channels}) "
                         f"must be divisible by groups ({groups})")
    return (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)


def _pinned(algo):
    """The repr's mention of a pinned algorithm (none for 'auto', the default)."""
    return "" if algo == "auto" else f", algo={algo!r}"


class Conv2d(Module):
    """torch.nn.Conv2d; algo (keyword-only) pins the convolution algorithm of the forward and of
    both gradients, as functional.conv2d's."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair, stride: IntPair = 1,
                 padding: Union[str, IntPair] = 0, dilation: IntPair = 1, groups: int = 1, bias: bool = True,
                 dtype: DTypeLike = np.float32, *, algo: str = "auto") -> None:
        super().__init__()
        kernel = _checked_kernel("Conv2d", in_channels, out_channels, kernel_size, groups)
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        self.algo = algo
        self.weight = empty_parameter((out_channels, in_channels // groups) + kernel, dtype)
        self.bias = empty_parameter((out_channels,), dtype) if bias else None
        init.default_layer_init_(self.weight, self.bias)

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, stride=self.stride, padding=self.padding,
                        dilation=self.dilation, groups=self.groups, algo=self.algo)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}{_pinned(self.algo)}")


class ConvTranspose2d(Module):
    """torch.nn.ConvTranspose2d: weight (in_channels, out_channels/groups, kH, kW), PyTorch's
    initialisation (fan_in from weight dimension 1, as torch computes it); algo as Conv2d's, or
    "subpixel" or "pixel_shuffle" (functional.conv_transpose2d says what they run)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair, stride: IntPair = 1,
                 padding: IntPair = 0, output_padding: IntPair = 0, groups: int = 1, bias: bool = True,
                 dilation: IntPair = 1, dtype: DTypeLike = np.float32, *, algo: str = "auto") -> None:
        super().__init__()
        kernel = _checked_kernel("ConvTranspose2d", in_channels, out_channels, kernel_size, groups)
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel
        self.stride, self.padding, self.output_padding = stride, padding, output_padding
        self.groups, self.dilation, self.algo = groups, dilation, algo
        self.weight = empty_parameter((in_channels, out_channels // groups) + kernel, dtype)
        self.bias = empty_parameter((out_channels,), dtype) if bias else None
        init.default_layer_init_(self.weight, self.bias)

    def forward(self, x):
        return F.conv_transpose2d(x, self.weight, self.bias, stride=self.stride, padding=self.padding,
                                  output_padding=self.output_padding, groups=self.groups, dilation=self.dilation,
                                  algo=self.algo)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, output_padding={self.output_padding}"
                f"{_pinned(self.algo)}")
