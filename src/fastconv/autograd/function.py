"""`Function`: an op's forward and backward side by side, and the graph node it leaves behind.

A subclass writes two static methods over raw arrays:
    forward(ctx, *args, **kwargs) -> an array, or a tuple of arrays for several outputs
    backward(ctx, *grad_outputs) -> one gradient (array or None) per positional argument
`apply` unwraps Tensor arguments, runs forward, and - when grad mode is on and some argument
requires grad - links the outputs to one Node that `Tensor.backward` walks.
"""
from fastconv import backend
from fastconv.autograd import grad_mode


class Context:
    """What forward leaves for backward: saved arrays plus any attributes it sets."""

    def __init__(self, needs_input_grad):
        self.needs_input_grad = needs_input_grad
        self.saved_arrays = ()

    def save_for_backward(self, *arrays):
        self.saved_arrays = arrays


class Node:
    """One recorded call: the function, its context, the Tensor arguments (None elsewhere) and
    the shapes of its outputs (a gradient that never arrives for an output is zeros)."""

    def __init__(self, function, ctx, inputs, outputs):
        self.function, self.ctx, self.inputs = function, ctx, inputs
        self.output_specs = [(o.shape, o.dtype) for o in outputs]

    def backward(self, grad_outputs):
        if self.ctx is None:
            raise RuntimeError(
                f"Trying to backward through the graph a second time ({self.function.__name__}): "
                "its saved values were freed by the first backward; pass retain_graph=True to the "
                "first backward() to keep them")
        if any(g is None for g in grad_outputs):  # an output no one used: its gradient is zeros
            xp = backend.array_module(*grad_outputs)
            grad_outputs = [xp.zeros(shape, dtype) if g is None else g
                            for g, (shape, dtype) in zip(grad_outputs, self.output_specs)]
        grads = self.function.backward(self.ctx, *grad_outputs)
        return grads if isinstance(grads, tuple) else (grads,)

    def free(self):
        """Drops the saved arrays and the links to the inputs, so a loss kept alive after
        backward (e.g. appended to a list) no longer holds every activation of its graph."""
        self.ctx, self.inputs = None, ()


class Function:
    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError

    @classmethod
    def apply(cls, *args, **kwargs):
        from fastconv.autograd.tensor import Tensor

        tensors = [a if isinstance(a, Tensor) else None for a in args]
        arrays = [a.data if isinstance(a, Tensor) else a for a in args]
        needs_grad = tuple(t is not None and t.requires_grad for t in tensors)
        record = grad_mode.is_grad_enabled() and any(needs_grad)
        ctx = Context(needs_grad)
        result = cls.forward(ctx, *arrays, **kwargs)
        several = isinstance(result, tuple)
        outputs = [Tensor(array, requires_grad=record) for array in (result if several else (result,))]
        if record:
            node = Node(cls, ctx, tensors, outputs)
            for index, out in enumerate(outputs):
                out._node, out._output_index = node, index
        return tuple(outputs) if several else outputs[0]
