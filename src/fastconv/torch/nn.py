"""Drop-in torch.nn layers running on fastconv's kernels.

Each is a subclass of the torch layer it replaces (torchvision.ops' for RoIAlign and RoIPool):
the same constructor arguments and defaults, the same parameters, buffers and state_dict keys,
the same initialisation; only the computation changes. Extra keyword arguments: `algo` on the
convolutions, `relu` and a `residual` input on BatchNorm2d.
"""
from typing import List, Optional, Union

from torch import Tensor, nn

from fastconv.torch import functional as F


class Conv2d(nn.Conv2d):
    """torch.nn.Conv2d; `algo` picks fastconv's convolution algorithm ('auto' by default). Two
    fusions done where the kernel stores each output, as BatchNorm2d's: `relu=True` applies ReLU
    to the output, and forward(input, residual) adds `residual` (the output's shape) before it
    (a ResNet block's tail once its batch norm is folded in: fastconv.torch.fuse)."""

    def __init__(self, *args, algo: str = "auto", relu: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.algo = algo
        self.relu = relu

    def forward(self, input: Tensor, residual: Optional[Tensor] = None) -> Tensor:
        """relu?(conv2d(input) + residual), the residual broadcast as torch's + does: added in the
        kernel when it has the output's shape and dtype, after it otherwise."""
        padding = self.padding
        if self.padding_mode != "zeros":  # as torch: pad first, then convolve without padding
            input = nn.functional.pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            padding = 0
        geometry = (self.stride, padding, self.dilation, self.groups)
        if residual is not None and not F._residual_fits(residual, input, self.weight, *geometry):
            out = F.conv2d(input, self.weight, self.bias, *geometry, algo=self.algo) + residual
            return nn.functional.relu(out) if self.relu else out
        return F.conv2d(input, self.weight, self.bias, *geometry, algo=self.algo, relu=self.relu, residual=residual)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", algo={self.algo!r}" + (", relu=True" if self.relu else "")


class ConvTranspose2d(nn.ConvTranspose2d):
    """torch.nn.ConvTranspose2d; `algo` as Conv2d's."""

    def __init__(self, *args, algo: str = "auto", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.algo = algo

    def forward(self, input: Tensor, output_size: Optional[List[int]] = None) -> Tensor:
        if self.padding_mode != "zeros":
            raise ValueError("Only `zeros` padding mode is supported for ConvTranspose2d")
        output_padding = self._output_padding(input, output_size, self.stride, self.padding, self.kernel_size, 2,
                                              self.dilation)
        return F.conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding, output_padding,
                                  self.groups, self.dilation, algo=self.algo)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", algo={self.algo!r}"


class BatchNorm2d(nn.BatchNorm2d):
    """torch.nn.BatchNorm2d, plus two fusions done in the normalising pass: `relu=True` applies
    ReLU to the output, and forward(input, residual) adds `residual` before it (the tail of a
    ResNet block: relu(bn(x) + shortcut))."""

    def __init__(self, *args, relu: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.relu = relu

    def forward(self, input: Tensor, residual: Optional[Tensor] = None) -> Tensor:
        self._check_input_dim(input)
        # torch.nn.BatchNorm2d's rules for the momentum, the batch counter and which statistics are used
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average
                momentum = 1.0 / float(self.num_batches_tracked)
        use_batch_stats = self.training or (self.running_mean is None and self.running_var is None)
        keep_buffers = not self.training or self.track_running_stats
        return F.batch_norm(input, self.running_mean if keep_buffers else None,
                            self.running_var if keep_buffers else None, self.weight, self.bias, use_batch_stats,
                            momentum, self.eps, residual=residual, relu=self.relu)

    def extra_repr(self) -> str:
        return super().extra_repr() + (", relu=True" if self.relu else "")


class MaxPool2d(nn.MaxPool2d):
    """torch.nn.MaxPool2d."""

    def forward(self, input: Tensor):
        return F.max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
                            self.return_indices)


class AvgPool2d(nn.AvgPool2d):
    """torch.nn.AvgPool2d."""

    def forward(self, input: Tensor) -> Tensor:
        return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)


class AdaptiveAvgPool2d(nn.AdaptiveAvgPool2d):
    """torch.nn.AdaptiveAvgPool2d."""

    def forward(self, input: Tensor) -> Tensor:
        return F.adaptive_avg_pool2d(input, self.output_size)


class RoIAlign(nn.Module):
    """torchvision.ops.RoIAlign."""

    def __init__(self, output_size: Union[int, tuple], spatial_scale: float, sampling_ratio: int,
                 aligned: bool = False) -> None:
        super().__init__()
        self.output_size, self.spatial_scale = output_size, spatial_scale
        self.sampling_ratio, self.aligned = sampling_ratio, aligned

    def forward(self, input: Tensor, rois: Union[Tensor, List[Tensor]]) -> Tensor:
        return F.roi_align(input, rois, self.output_size, self.spatial_scale, self.sampling_ratio, self.aligned)

    def extra_repr(self) -> str:
        return (f"output_size={self.output_size}, spatial_scale={self.spatial_scale}, "
                f"sampling_ratio={self.sampling_ratio}, aligned={self.aligned}")


class RoIPool(nn.Module):
    """torchvision.ops.RoIPool."""

    def __init__(self, output_size: Union[int, tuple], spatial_scale: float) -> None:
        super().__init__()
        self.output_size, self.spatial_scale = output_size, spatial_scale

    def forward(self, input: Tensor, rois: Union[Tensor, List[Tensor]]) -> Tensor:
        return F.roi_pool(input, rois, self.output_size, self.spatial_scale)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}, spatial_scale={self.spatial_scale}"


# The torch layer each fastconv layer replaces in convert(), with its extra attributes' defaults.
_REPLACEMENTS = {
    nn.Conv2d: (Conv2d, {"algo": "auto", "relu": False}),
    nn.ConvTranspose2d: (ConvTranspose2d, {"algo": "auto"}),
    nn.BatchNorm2d: (BatchNorm2d, {"relu": False}),
    nn.MaxPool2d: (MaxPool2d, {}),
    nn.AvgPool2d: (AvgPool2d, {}),
    nn.AdaptiveAvgPool2d: (AdaptiveAvgPool2d, {}),
}


def _replacement(module: nn.Module) -> Optional[nn.Module]:
    """The fastconv layer holding `module`'s state (the same Parameter and buffer objects, hooks
    and mode), or None for a layer fastconv does not replace. Exact types only: a subclass may
    have changed forward."""
    if type(module) not in _REPLACEMENTS:
        return None
    cls, extras = _REPLACEMENTS[type(module)]
    layer = cls.__new__(cls)
    layer.__dict__.update(module.__dict__)
    layer.__dict__.update(extras)
    return layer


def convert(model: nn.Module) -> nn.Module:
    """Swaps, in place, every torch.nn.Conv2d, ConvTranspose2d, BatchNorm2d, MaxPool2d, AvgPool2d
    and AdaptiveAvgPool2d of `model` (exactly those types) for the fastconv layer of the same
    name, keeping its Parameter objects, buffers, hooks and training mode: an optimizer built on
    model.parameters() before the call keeps working. Returns `model` (a bare layer is returned
    converted, since it has no parent to be swapped in)."""
    for parent in model.modules():
        for name, child in list(parent.named_children()):
            layer = _replacement(child)
            if layer is not None:
                setattr(parent, name, layer)
    return _replacement(model) or model


__all__ = ["Conv2d", "ConvTranspose2d", "BatchNorm2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d",
           "RoIAlign", "RoIPool", "convert"]
