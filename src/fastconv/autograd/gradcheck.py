"""Numeric check of analytic gradients: central differences in float64.

The function runs on its inputs' device; the gradients are compared on the host."""
import numpy as np

from fastconv import backend
from fastconv.autograd.grad_mode import no_grad
from fastconv.autograd.tensor import Tensor


class GradcheckError(AssertionError):
    pass


def _as_tuple(out):
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def _project(outs, weights):
    """sum(weights * outputs): one scalar whose gradient is a random vector-Jacobian product,
    so a single backward checks every output element's contribution."""
    return sum((o * w).sum() for o, w in zip(outs, weights))


def _projected_output(fn, inputs, weights):
    return _project(_as_tuple(fn(*inputs)), weights)


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0):
    """Compares backward's gradients of fn(*inputs) with central differences for every element
    of every input that requires grad. Inputs must be float64 Tensors (float32 differences are
    too noisy to tell a wrong gradient from rounding). Returns True or raises GradcheckError
    naming the worst element."""
    checked = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad")
    for t in checked:
        if t.dtype != np.float64:
            raise TypeError(f"gradcheck: inputs must be float64, got {t.dtype} for shape {t.shape}")
        t.grad = None

    outs = _as_tuple(fn(*inputs))
    rng = np.random.default_rng(seed)  # its own stream: the check is repeatable whatever was drawn before
    weights = [backend.asarray(rng.standard_normal(o.shape), device=o.device) for o in outs]
    _project(outs, weights).backward()

    for index, t in enumerate(checked):
        analytic = np.zeros(t.shape) if t.grad is None else t.grad.numpy()
        numeric = _numeric_gradient(fn, inputs, weights, t, eps)
        error = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
        if error.size and error.max() > 0:
            worst = tuple(int(i) for i in np.unravel_index(np.argmax(error), t.shape))
            raise GradcheckError(
                f"gradcheck: input {index} (shape {t.shape}) element {worst}: analytic "
                f"{analytic[worst]:.8g} vs numeric {numeric[worst]:.8g} (atol={atol}, rtol={rtol})")
    return True


@no_grad()
def _numeric_gradient(fn, inputs, weights, t, eps):
    numeric = np.zeros(t.shape)
    # Each element is nudged in place, so t keeps its layout (a channels_last input stays one);
    # only a read-only view (a broadcast) is copied first.
    if not getattr(t.data.flags, "writeable", True):
        t.data = backend.array_module(t.data).ascontiguousarray(t.data)
    for index in np.ndindex(t.shape):
        original = t.data[index].copy()
        t.data[index] = original + eps
        plus = _projected_output(fn, inputs, weights).item()
        t.data[index] = original - eps
        minus = _projected_output(fn, inputs, weights).item()
        t.data[index] = original
        numeric[index] = (plus - minus) / (2 * eps)
    return numeric
