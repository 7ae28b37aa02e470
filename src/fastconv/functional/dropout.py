"""Inverted dropout: scaled while training, so evaluation is the identity."""
from fastconv import backend
from fastconv.autograd import Function, Tensor


class Dropout(Function):
    @staticmethod
    def forward(ctx, x, p):
        # drawn on the host by the one seeded generator, so a seed gives the same mask on every device
        keep = backend.asarray(backend.generator().random(x.shape) >= p, device=backend.device_of(x))
        # inverted dropout: scale at training time so evaluation is the identity. The mask takes
        # x's memory layout, so the output keeps it (a channels_last input gives a channels_last
        # output, as in torch) with the values a seed gives in any layout.
        ctx.mask = backend.array_module(x).empty_like(x)
        ctx.mask[...] = keep.astype(x.dtype) * (0 if p == 1 else 1 / (1 - p))
        return x * ctx.mask

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.mask


def dropout(input: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    if not 0 <= p <= 1:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    return Dropout.apply(input, p) if training and p > 0 else input
