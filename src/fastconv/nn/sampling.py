"""Upsample and its fixed-mode shorthands, over functional.interpolate (4-d input)."""
from typing import Optional, Sequence, Union

from fastconv._typing import IntPair
from fastconv import functional as F
from fastconv.nn.module import Module


class Upsample(Module):
    """torch.nn.Upsample: modes "nearest" and "bilinear"."""

    def __init__(self, size: Optional[IntPair] = None, scale_factor: Union[float, Sequence[float], None] = None,
                 mode: str = "nearest", align_corners: Optional[bool] = None,
                 recompute_scale_factor: Optional[bool] = None) -> None:
        super().__init__()
        self.size, self.scale_factor, self.mode = size, scale_factor, mode
        self.align_corners, self.recompute_scale_factor = align_corners, recompute_scale_factor

    def forward(self, x):
        return F.interpolate(x, self.size, self.scale_factor, self.mode, self.align_corners,
                             self.recompute_scale_factor)

    def extra_repr(self):
        given = f"size={self.size}" if self.size is not None else f"scale_factor={self.scale_factor}"
        return f"{given}, mode={self.mode!r}"


class UpsamplingBilinear2d(Upsample):
    """torch.nn.UpsamplingBilinear2d: bilinear with align_corners=True."""

    def __init__(self, size: Optional[IntPair] = None,
                 scale_factor: Union[float, Sequence[float], None] = None) -> None:
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)


class UpsamplingNearest2d(Upsample):
    def __init__(self, size: Optional[IntPair] = None,
                 scale_factor: Union[float, Sequence[float], None] = None) -> None:
        super().__init__(size, scale_factor, mode="nearest")
