"""Optimisers with per-element step sizes: Adagrad (Duchi et al. 2011), RMSprop (Hinton 2012),
Adam (Kingma & Ba 2015), each with PyTorch's update formulas."""
import numpy as np

from fastconv import backend
from fastconv.optim.optimizer import Optimizer


def _decayed(grad, param, group):
    """L2 regularisation folded into the gradient, as these optimisers' weight_decay does."""
    return grad + group["weight_decay"] * param.data if group["weight_decay"] else grad


def _buffer(state, name, like, value=0.0):
    if name not in state:
        state[name] = backend.array_module(like).full_like(like, value)
    return state[name]


class Adagrad(Optimizer):
    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0,
                 initial_accumulator_value=0.0, eps=1e-10):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value, eps=eps))

    def update(self, param, grad, state, group):
        state["step"] = state.get("step", 0) + 1
        grad = _decayed(grad, param, group)
        squares = _buffer(state, "sum", param.data, group["initial_accumulator_value"])
        squares += grad * grad
        lr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        param.data -= lr * grad / (backend.array_module(squares).sqrt(squares) + group["eps"])


class RMSprop(Optimizer):
    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered))

    def update(self, param, grad, state, group):
        grad = _decayed(grad, param, group)
        alpha = group["alpha"]
        square_avg = _buffer(state, "square_avg", param.data)
        square_avg *= alpha
        square_avg += (1 - alpha) * grad * grad
        variance = square_avg
        if group["centered"]:  # subtract the squared running mean: a variance estimate
            grad_avg = _buffer(state, "grad_avg", param.data)
            grad_avg *= alpha
            grad_avg += (1 - alpha) * grad
            variance = square_avg - grad_avg * grad_avg
        step = grad / (backend.array_module(variance).sqrt(variance) + group["eps"])
        if group["momentum"]:
            buffer = _buffer(state, "momentum_buffer", param.data)
            buffer *= group["momentum"]
            buffer += step
            step = buffer
        param.data -= group["lr"] * step


class Adam(Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    def update(self, param, grad, state, group):
        state["step"] = step = state.get("step", 0) + 1
        grad = _decayed(grad, param, group)
        beta1, beta2 = group["betas"]
        mean = _buffer(state, "exp_avg", param.data)
        mean *= beta1
        mean += (1 - beta1) * grad
        square = _buffer(state, "exp_avg_sq", param.data)
        square *= beta2
        square += (1 - beta2) * grad * grad
        # bias corrections for the zero-initialised averages (the paper's Algorithm 1); np.sqrt of
        # the Python float is a float64 scalar, so the step is computed in float64 (NEP 50) and
        # rounded once into param
        xp = backend.array_module(square)
        denominator = xp.sqrt(square) / np.sqrt(1 - beta2 ** step) + group["eps"]
        param.data -= group["lr"] / (1 - beta1 ** step) * mean / denominator
