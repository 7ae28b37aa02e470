"""Losses: cross entropy (a Function over class indices: stable log-softmax and negative
log-likelihood in one pass; a composition over class probabilities), and the hinge, squared and
absolute losses as compositions of Tensor operations."""
from fastconv import backend
from fastconv.autograd import Function, Tensor
from fastconv.autograd.tensor import array_of
from fastconv.functional.activation import log_softmax, log_softmax_array


def _check_reduction(reduction):
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction: expected 'mean', 'sum' or 'none', got {reduction!r}")


def _reduce(loss, reduction):
    _check_reduction(reduction)
    return loss.mean() if reduction == "mean" else loss.sum() if reduction == "sum" else loss


class CrossEntropy(Function):
    """Stable log-softmax and negative log-likelihood in one pass; class axis 1."""

    @staticmethod
    def forward(ctx, logits, target, weight, ignore_index, reduction):
        xp = backend.array_module(logits, target)
        valid = target != ignore_index
        safe_target = xp.where(valid, target, 0)[:, None]
        if safe_target.min() < 0 or safe_target.max() >= logits.shape[1]:
            raise ValueError(f"cross_entropy: target values must be in [0, {logits.shape[1]}) "
                             f"or equal ignore_index={ignore_index}")
        log_probs = log_softmax_array(xp, logits, axis=1)
        # each element's weight: 0 where ignored, else its class's weight (1 without weights)
        factor = valid.astype(logits.dtype)
        if weight is not None:
            factor *= weight[safe_target[:, 0]]
        losses = -xp.take_along_axis(log_probs, safe_target, axis=1)[:, 0] * factor
        ctx.save_for_backward(log_probs, safe_target, factor)
        ctx.scale = 1 / factor.sum() if reduction == "mean" else 1  # PyTorch's weighted mean
        return losses if reduction == "none" else xp.asarray(losses.sum() * ctx.scale, logits.dtype)

    @staticmethod
    def backward(ctx, grad):
        log_probs, safe_target, factor = ctx.saved_arrays
        xp = backend.array_module(log_probs)
        grad_logits = xp.exp(log_probs)
        picked = xp.take_along_axis(grad_logits, safe_target, axis=1)
        xp.put_along_axis(grad_logits, safe_target, picked - 1, axis=1)
        return grad_logits * xp.expand_dims(grad * factor * ctx.scale, 1).astype(log_probs.dtype)


def _weight_array(loss, name, weight, input):
    """An optional loss weight as a constant array of input's dtype on input's device: weights
    get no gradient (PyTorch refuses to differentiate them)."""
    if weight is None:
        return None
    values, data = array_of(weight), array_of(input)
    if values.dtype.kind != "f":
        raise TypeError(f"{loss}: {name} must be a float array, got dtype {values.dtype}")
    return backend.asarray(values, dtype=data.dtype, device=backend.device_of(data))


def _class_weight(weight, input):
    """cross_entropy's optional weight: one value per class (axis 1 of input)."""
    weight = _weight_array("cross_entropy", "weight", weight, input)
    if weight is not None and weight.shape != input.shape[1:2]:
        raise ValueError(f"cross_entropy: weight must hold one value per class, shape ({input.shape[1]},), "
                         f"got shape {weight.shape}")
    return weight


def _cross_entropy_with_probabilities(input, target, weight, reduction):
    """PyTorch's class-probability target: -sum over c of weight[c] target[c] log_softmax(input)[c]
    per element; the mean divides by the element count, not by the weights."""
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"cross_entropy: a float target holds class probabilities of input's shape "
                         f"{input.shape}, got shape {target.shape}")
    terms = log_softmax(input, 1) * target
    if weight is not None:
        terms = terms * weight.reshape((1, -1) + (1,) * (input.ndim - 2))
    return _reduce(-terms.sum(axis=1), reduction)


def cross_entropy(input: Tensor, target: Tensor, weight=None, ignore_index: int = -100,
                  reduction: str = "mean") -> Tensor:
    """input (N, C) or (N, C, d1, ...) logits; target (N,) or (N, d1, ...) class indices, or class
    probabilities of input's shape (a float target, which gets a gradient when it requires one;
    ignore_index applies to class indices only); weight, optional, one weight per class (it gets
    no gradient, as in PyTorch)."""
    if input.ndim < 2:
        raise ValueError(f"cross_entropy: input of shape {input.shape} has no class axis (need (N, C, ...))")
    _check_reduction(reduction)
    weight = _class_weight(weight, input)
    target_array = array_of(target)
    if target_array.dtype.kind == "f":
        return _cross_entropy_with_probabilities(input, target, weight, reduction)
    if target_array.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: target must hold class indices or class probabilities, "
                        f"got dtype {target_array.dtype}")
    if target_array.shape != input.shape[:1] + input.shape[2:]:
        raise ValueError(f"cross_entropy: input of shape {input.shape} and target of shape "
                         f"{target_array.shape} do not match (need input (N, C, ...) and target (N, ...))")
    return CrossEntropy.apply(input, target_array, weight, ignore_index, reduction)


def _margin_rows(input, target):
    """input and target of multi_margin_loss as (N, C) scores and (N,) classes: PyTorch takes a
    batch (N, C) with target (N,), or one sample, input (C,) (a 0-d input is one class) with target
    () or (1,)."""
    batched = input.ndim == 2
    fits = target.shape == input.shape[:1] if batched else input.ndim < 2 and target.ndim < 2 and target.size == 1
    if not fits:
        raise ValueError(f"multi_margin_loss: input of shape {input.shape} and target of shape {target.shape} "
                         f"do not match (need (N, C) and (N,), or (C,) and () or (1,))")
    if input.ndim and input.shape[-1] == 0:
        raise ValueError(f"multi_margin_loss: input of shape {input.shape} has no classes")
    return (input, target) if batched else (input.reshape(1, -1), target.reshape(1))


def multi_margin_loss(input: Tensor, target: Tensor, p: float = 1, margin: float = 1.0, weight=None,
                      reduction: str = "mean") -> Tensor:
    """Multiclass SVM hinge: sum over j != y of max(0, margin - x[y] + x[j])**p, times weight[y]
    when a per-class weight is given, divided by C. input (N, C) with target (N,), or one sample
    (C,) with target () or (1,)."""
    _check_reduction(reduction)
    if p not in (1, 2):
        raise ValueError(f"multi_margin_loss: p must be 1 or 2, got {p}")
    weight = _weight_array("multi_margin_loss", "weight", weight, input)
    if weight is not None and weight.ndim != 1:  # before the shapes, in PyTorch's order
        raise ValueError(f"multi_margin_loss: weight must be one-dimensional, got shape {weight.shape}")
    target = array_of(target)
    scores, classes = _margin_rows(input, target)
    if weight is not None and weight.shape[0] != scores.shape[1]:
        raise ValueError(f"multi_margin_loss: weight of shape {weight.shape} does not match the input's "
                         f"{scores.shape[1]} classes")
    if target.dtype.kind not in "iu":  # after the shapes, in PyTorch's order of checks
        raise TypeError(f"multi_margin_loss: target must hold class indices, got dtype {target.dtype}")
    xp = backend.array_module(array_of(scores), classes)
    rows = xp.arange(len(classes))
    correct = scores[rows, classes].reshape(-1, 1)
    other_class = xp.ones(scores.shape, dtype=scores.dtype)
    other_class[rows, classes] = 0
    hinge = (scores - correct + margin).relu() * other_class
    losses = (hinge ** p).sum(axis=1) / scores.shape[1]
    if weight is not None:
        losses = losses * weight[classes]
    return _reduce(losses if input.ndim == 2 else losses.reshape(target.shape), reduction)


def _check_same_shape(name, input, target):
    if input.shape != target.shape:
        raise ValueError(f"{name}: input of shape {input.shape} and target of shape {target.shape} differ")


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    _check_same_shape("mse_loss", input, target)
    return _reduce((input - target) ** 2, reduction)


def l1_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    _check_same_shape("l1_loss", input, target)
    return _reduce((input - target).abs(), reduction)


def _elementwise_weight(name, weight, input):
    """binary_cross_entropy_with_logits' optional weight or pos_weight: it broadcasts to input's shape."""
    weight = _weight_array("binary_cross_entropy_with_logits", name, weight, input)
    if weight is None:
        return None
    if len(weight.shape) > input.ndim or any(w not in (1, s) for w, s in zip(weight.shape[::-1], input.shape[::-1])):
        raise ValueError(f"binary_cross_entropy_with_logits: {name} of shape {weight.shape} does not broadcast "
                         f"to input's shape {input.shape}")
    return weight


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean", pos_weight=None):
    """-w [p t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))], w = weight and p = pos_weight (each 1
    when not given, each broadcast to input's shape; pos_weight weighs the positive class, one
    value per class along the last axis), computed stably as
    (1 - t) x + (1 + (p - 1) t) softplus(-x) with softplus(-x) = max(-x, 0) + log(1 + exp(-|x|)).
    target holds probabilities; a target Tensor that requires a gradient gets one, as in PyTorch."""
    _check_same_shape("binary_cross_entropy_with_logits", input, target)
    weight = _elementwise_weight("weight", weight, input)
    pos_weight = _elementwise_weight("pos_weight", pos_weight, input)
    log_one_plus = ((-input.abs()).exp() + 1).log()
    if pos_weight is None:
        loss = input.relu() - input * target + log_one_plus
    else:
        loss = input - input * target + (target * (pos_weight - 1) + 1) * ((-input).relu() + log_one_plus)
    return _reduce(loss if weight is None else loss * weight, reduction)


def smooth_l1_loss(input, target, reduction="mean", beta=1.0):
    """0.5 d^2 / beta where d = |input - target| < beta, else d - 0.5 beta (Girshick 2015, eq. 3;
    Faster R-CNN's box loss uses beta = 1/9)."""
    _check_same_shape("smooth_l1_loss", input, target)
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be non-negative, got {beta}")
    distance = (input - target).abs()
    if beta == 0:  # the quadratic zone is empty: the L1 loss, as in PyTorch
        return _reduce(distance, reduction)
    inside = distance - (distance - beta).relu()  # min(d, beta)
    return _reduce(inside * inside * (0.5 / beta) + (distance - inside), reduction)
