"""SGD with momentum and Nesterov momentum (Sutskever et al. 2013), PyTorch's formulation."""
from fastconv.optim.optimizer import Optimizer


def _add_in_place(owned, other):
    """owned + other, written into owned (an array of the step's own) when the sum keeps its dtype."""
    if owned.dtype != other.dtype:  # a gradient set by hand in another dtype: numpy's promotion
        return other + owned
    owned += other
    return owned


class SGD(Optimizer):
    def __init__(self, params, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov momentum needs momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def update(self, param, grad, state, group):
        """PyTorch's step. Each product is made once, into a new array that the sums after it and
        the scaling by lr update in place: the float operations of the formulas as written (IEEE
        sums commute; adding (1 - 0) * g is adding g), without their temporaries. `step` is
        `owned` once it is such an array; the caller's grad is never written."""
        step, owned = grad, False
        if group["weight_decay"]:
            step, owned = _add_in_place(param.data * group["weight_decay"], grad), True
        momentum = group["momentum"]
        if momentum:
            buffer = state.get("momentum_buffer")
            if buffer is None:  # the first step takes the gradient itself, undamped
                buffer = state["momentum_buffer"] = step if owned else step.copy()
            else:
                buffer *= momentum
                buffer += step if group["dampening"] == 0 else (1 - group["dampening"]) * step
            if group["nesterov"]:
                step, owned = _add_in_place(buffer * momentum, step), True
            else:
                step, owned = buffer, False
        if owned:
            step *= group["lr"]
            param.data -= step
        else:
            param.data -= group["lr"] * step
