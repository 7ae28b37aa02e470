"""Gradient clipping, torch.nn.utils.clip_grad_norm_'s rule: recurrent nets trained by
backpropagation through time need it (Pascanu, Mikolov & Bengio 2013, "On the difficulty of
training recurrent neural networks", algorithm 1)."""
import math

from fastconv import backend


def clip_grad_norm_(parameters, max_norm, norm_type=2.0):
    """Scales the gradients of `parameters` in place so that their joint norm (all gradients as
    one vector) is at most max_norm; returns the norm before clipping, as a float. Parameters
    without a gradient are skipped. norm_type: any p >= 1, or math.inf for the largest entry."""
    max_norm, norm_type = float(max_norm), float(norm_type)
    if not max_norm >= 0:
        raise ValueError(f"max_norm: expected a non-negative number, got {max_norm}")
    if not norm_type >= 1:
        raise ValueError(f"norm_type: expected a number >= 1 or math.inf, got {norm_type}")
    grads = [p.grad.data for p in parameters if p.grad is not None]
    if not grads:
        return 0.0
    xp = backend.array_module(*grads)
    if math.isinf(norm_type):
        total = max((float(xp.abs(g).max()) for g in grads if g.size), default=0.0)
    else:
        total = sum(float((xp.abs(g.astype(xp.float64)) ** norm_type).sum()) for g in grads) ** (1 / norm_type)
    scale = max_norm / (total + 1e-6)  # torch's epsilon: a zero gradient stays zero, never NaN
    if scale < 1:
        for g in grads:
            g *= scale
    return total
