"""`Tensor`: an array, an optional gradient, and the graph node that produced it."""
import math
from typing import Any, Tuple, Union

import numpy as np

from fastconv._typing import Array
from fastconv import backend
from fastconv.autograd import arithmetic, elementwise, reduction
from fastconv.autograd import shape as shape_ops


def _as_array(data, dtype=None):
    """Python floats become float32 (as in PyTorch); arrays keep their dtype unless one is given."""
    if isinstance(data, Tensor):
        data = data.data
    xp = backend.array_module(data)
    if dtype is None and not hasattr(data, "dtype"):
        array = xp.asarray(data)
        return array.astype(np.float32) if array.dtype == np.float64 else array
    return xp.asarray(data, dtype=dtype)


def array_of(x):
    """The array behind a Tensor, or `x` as an array: for arguments that get no gradient (class
    targets, indices, boxes)."""
    return x.data if isinstance(x, Tensor) else backend.asarray(x)


def tensor(data, dtype=None, requires_grad=False):
    """A new leaf Tensor holding a copy of `data`."""
    array = _as_array(data, dtype)
    return Tensor(backend.array_module(array).array(array, copy=True), requires_grad=requires_grad)


def _topological_order(root):
    """Nodes reachable from root whose inputs need a gradient, every node before its users.

    Iterative depth-first search: an unrolled RNN is deeper than Python's recursion limit.
    """
    order, visited, stack = [], set(), [(root, False)]
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        stack.extend((t._node, False) for t in node.inputs
                     if t is not None and t._node is not None and id(t._node) not in visited)
    return order


def _uses_of_hooked_leaves(order):
    """{id(leaf): [leaf, uses]} for the leaves with post-accumulate hooks that nodes of `order`
    take as inputs: a leaf's gradient is final once backward has passed all of its uses."""
    uses = {}
    for node in order:
        for t in node.inputs:
            if t is not None and t._post_accumulate_hooks and t._node is None and t.requires_grad:
                uses.setdefault(id(t), [t, 0])[1] += 1
    return uses


def _count_down_uses(node, uses):
    """Backward is done with `node`: a hooked leaf whose last use it was gets its hooks called."""
    if not uses:
        return
    for t in node.inputs:
        entry = uses.get(id(t)) if t is not None else None
        if entry is not None:
            entry[1] -= 1
            if entry[1] == 0:
                for hook in t._post_accumulate_hooks:
                    hook(t)


def _dense(array):
    """Whether array's elements fill its memory without gaps or repeats, in some axis order: the
    layout numpy gives the sum of two arrays that share it."""
    expected = array.itemsize
    for size, stride in sorted(zip(array.shape, array.strides), key=lambda pair: pair[1]):
        if size != 1 and stride != expected:
            return False
        expected *= size
    return True


def _sum_into(slots, index, grad):
    """slots[index] += grad. The sum goes into the slot's array where nothing else can see it and
    it has grad's dense layout (the layout `slots[index] + grad` would have): no new array for
    the gradient of a tensor with several users (a ResNet block's input feeds its convolution
    and its shortcut). IEEE addition commutes, so the bits are those of the out-of-place sum."""
    total = slots[index]
    slots[index] = None  # `total` the one reference backend.unshared allows
    if (total.dtype == grad.dtype and total.shape == grad.shape and total.strides == grad.strides
            and _dense(total) and backend.unshared(total)):
        backend.add_into(total, grad)  # on the kernels' threads for large host arrays
        slots[index] = total
    else:
        slots[index] = total + grad


def _pass_on(grads, index, inp, pending):
    """Hands grads[index], the gradient of the input `inp`, on: to its .grad if it is a leaf,
    else to its node's slot in `pending`. The list's reference is dropped first, so that `grad`
    is the one reference here to an array that nothing else holds (backend.unshared): a leaf
    then keeps that array as its .grad, and a slot sums into it."""
    grad, grads[index] = grads[index], None
    if inp is None or not inp.requires_grad or grad is None:
        return
    if grad.dtype != inp.dtype:  # kernels downstream need matching dtypes
        grad = grad.astype(inp.dtype)
    if inp._node is None:
        unshared = backend.unshared(grad)  # a statement of its own: a call's pending argument is a reference
        inp._accumulate_grad(grad, unshared)
    elif id(inp._node) not in pending:
        pending[id(inp._node)] = inp._node_slots(grad)
    else:
        slots, i = pending[id(inp._node)], inp._output_index
        if slots[i] is None:
            slots[i] = grad
        else:
            _sum_into(slots, i, grad)


def _binary(function, reflected=False):
    """A Tensor operator method: `self op other`, or `other op self` when reflected."""
    def operator(self, other):
        other = self._operand(other)
        return function.apply(other, self) if reflected else function.apply(self, other)
    operator.__name__ = function.__name__.lower()
    return operator


def _unary(function):
    def method(self):
        return function.apply(self)
    method.__name__ = function.__name__.lower()
    return method


class Tensor:
    __array_priority__ = 1000  # ndarray (op) Tensor defers to Tensor's reflected operator
    _post_accumulate_hooks = ()  # a leaf's own tuple once a hook is registered

    def __init__(self, data, requires_grad=False):
        self.data = _as_array(data)
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self._node = None  # set by Function.apply on outputs that are part of a graph
        self._output_index = 0  # which of its node's outputs this tensor is

    # ---- introspection ------------------------------------------------------------------
    shape = property(lambda self: self.data.shape)
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: self.data.size)
    is_leaf = property(lambda self: self._node is None)
    device = property(lambda self: backend.device_of(self.data))  # 'cpu' or 'cuda'

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({self.data!r}{grad})"

    def __array__(self, dtype=None, copy=None):
        """numpy reads a Tensor as its values (np.asarray(t) shares a CPU tensor's memory), not as
        an object array."""
        array = backend.to_host(self.data)
        if dtype is not None and array.dtype != np.dtype(dtype):
            if copy is False:
                raise ValueError(f"__array__: a {array.dtype} tensor cannot be read as {np.dtype(dtype)} without a copy")
            return array.astype(dtype)
        return array.copy() if copy else array

    def __dlpack__(self, **kwargs):
        """The data's DLPack capsule: torch.from_dlpack(t), jax.dlpack.from_dlpack(t) and
        np.from_dlpack(t) share this tensor's memory (the graph does not travel with it)."""
        return self.data.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self.data.__dlpack_device__()

    def numpy(self) -> np.ndarray:
        """The values as a numpy array: the data itself on the CPU (no copy), a host copy of a GPU array."""
        return backend.to_host(self.data)

    def to(self, device: str) -> "Tensor":
        """This tensor on `device` ('cpu' or 'cuda'): itself when it is there already, else a copy
        that stays in the graph (its gradient is copied back)."""
        device = backend.check_device(device)
        return self if device == self.device else shape_ops.ToDevice.apply(self, device)

    def cpu(self) -> "Tensor":
        return self.to("cpu")

    def item(self) -> Any:
        return self.data.item()

    def detach(self) -> "Tensor":
        """The same data, cut from the graph."""
        return Tensor(self.data)

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        self.requires_grad = requires_grad
        return self

    # ---- backward -----------------------------------------------------------------------
    def backward(self, gradient: Union["Tensor", Array, None] = None, retain_graph: bool = False) -> None:
        """Accumulates d self / d leaf into every leaf's .grad, walking the graph once in reverse
        topological order; frees the graph's saved arrays unless retain_graph."""
        if not self.requires_grad:
            raise RuntimeError("backward: this tensor does not require grad and has no graph")
        if gradient is None:
            if self.size != 1:
                raise RuntimeError(f"backward: gradient can be implicitly created only for a scalar "
                                   f"output; this tensor has shape {self.shape}, pass gradient=")
            gradient = backend.array_module(self.data).ones_like(self.data)
        gradient = _as_array(gradient, self.dtype)
        if gradient.shape != self.shape:
            raise ValueError(f"backward: gradient shape {gradient.shape} does not match tensor shape {self.shape}")
        if self._node is None:
            self._accumulate_grad(gradient)
            for hook in self._post_accumulate_hooks:
                hook(self)
            return
        # gradients waiting for each node, one slot per output; a node runs once all its users ran
        pending = {id(self._node): self._node_slots(gradient)}
        order = _topological_order(self._node)
        hooked_uses = _uses_of_hooked_leaves(order)
        for node in reversed(order):
            grad_outputs = pending.pop(id(node), None)
            if grad_outputs is None:
                _count_down_uses(node, hooked_uses)
                continue
            grads = list(node.backward(grad_outputs))
            for index, inp in zip(range(len(grads)), node.inputs):
                _pass_on(grads, index, inp, pending)
            _count_down_uses(node, hooked_uses)
            if not retain_graph:
                node.free()

    def _node_slots(self, grad):
        """Gradient slots for this tensor's node, holding grad in this tensor's output slot."""
        slots = [None] * len(self._node.output_specs)
        slots[self._output_index] = grad
        return slots

    def register_post_accumulate_grad_hook(self, hook):
        """Calls hook(self) once per backward pass, when this leaf's .grad holds every
        contribution of that pass (PyTorch's hook of the same name). Data-parallel training starts
        reducing a gradient there, while backward goes on with the layers below."""
        if self._node is not None:
            raise RuntimeError("register_post_accumulate_grad_hook: only a leaf tensor accumulates .grad")
        if not self.requires_grad:
            raise RuntimeError("register_post_accumulate_grad_hook: the tensor does not require grad")
        self._post_accumulate_hooks = self._post_accumulate_hooks + (hook,)

    def _accumulate_grad(self, grad, unshared=False):
        """Adds grad to .grad. The first gradient is kept as it is when `unshared` (nothing else
        sees the array) and it has this tensor's dense layout, else copied: backward's arrays may
        alias inputs or each other, and .grad follows the tensor's memory layout (torch's rule: a
        channels_last leaf gets a channels_last gradient)."""
        if self.grad is None:
            if unshared and grad.shape == self.data.shape and grad.strides == self.data.strides and _dense(grad):
                self.grad = Tensor(grad)
                return
            copy = backend.array_module(grad).empty_like(self.data)
            copy[...] = grad
            self.grad = Tensor(copy)
        else:
            self.grad.data += grad

    # ---- arithmetic ---------------------------------------------------------------------
    def _operand(self, other):
        """A constant operand as an array of our dtype, so `x * 2.0` stays float32."""
        if isinstance(other, Tensor):
            return other
        keep_dtype = self.dtype.kind == "f" and not hasattr(other, "dtype")
        return backend.array_module(self.data).asarray(other, dtype=self.dtype if keep_dtype else None)

    __add__, __radd__ = _binary(arithmetic.Add), _binary(arithmetic.Add, reflected=True)
    __sub__, __rsub__ = _binary(arithmetic.Sub), _binary(arithmetic.Sub, reflected=True)
    __mul__, __rmul__ = _binary(arithmetic.Mul), _binary(arithmetic.Mul, reflected=True)
    __truediv__, __rtruediv__ = _binary(arithmetic.Div), _binary(arithmetic.Div, reflected=True)
    __pow__, __rpow__ = _binary(arithmetic.Pow), _binary(arithmetic.Pow, reflected=True)
    __matmul__, __rmatmul__ = _binary(arithmetic.MatMul), _binary(arithmetic.MatMul, reflected=True)
    __neg__ = _unary(arithmetic.Neg)

    # ---- element-wise -------------------------------------------------------------------
    exp, log, sqrt, abs = (_unary(elementwise.Exp), _unary(elementwise.Log),
                           _unary(elementwise.Sqrt), _unary(elementwise.Abs))
    tanh, sigmoid, relu = _unary(elementwise.Tanh), _unary(elementwise.Sigmoid), _unary(elementwise.ReLU)

    # ---- reductions (axis: None, an int or a tuple) -------------------------------------
    def sum(self, axis: Union[int, Tuple[int, ...], None] = None, keepdims: bool = False) -> "Tensor":
        return reduction.Sum.apply(self, axis=axis, keepdims=keepdims)

    def mean(self, axis: Union[int, Tuple[int, ...], None] = None, keepdims: bool = False) -> "Tensor":
        count = math.prod(self.shape[a] for a in reduction.normalize_axes(axis, self.ndim))
        return self.sum(axis, keepdims) / count

    def max(self, axis: Union[int, Tuple[int, ...], None] = None, keepdims: bool = False) -> "Tensor":
        return reduction.Max.apply(self, axis=axis, keepdims=keepdims)

    # ---- shape --------------------------------------------------------------------------
    def reshape(self, *shape) -> "Tensor":
        shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return shape_ops.Reshape.apply(self, shape)

    view = reshape

    def permute(self, *dims) -> "Tensor":
        dims = tuple(dims[0]) if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
        return shape_ops.Permute.apply(self, dims)

    def transpose(self, dim0: int, dim1: int) -> "Tensor":
        dims = list(range(self.ndim))
        dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
        return self.permute(dims)

    @property
    def T(self):
        return self.permute(tuple(reversed(range(self.ndim))))

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> "Tensor":
        start, end = start_dim % max(self.ndim, 1), end_dim % max(self.ndim, 1)
        return self.reshape(self.shape[:start] + (-1,) + self.shape[end + 1:])

    def unsqueeze(self, dim: int) -> "Tensor":
        dim = dim % (self.ndim + 1)
        return self.reshape(self.shape[:dim] + (1,) + self.shape[dim:])

    def squeeze(self, dim: int) -> "Tensor":
        if self.shape[dim] != 1:
            raise ValueError(f"squeeze: dim {dim} of shape {self.shape} is not 1")
        return self.reshape(self.shape[:dim % self.ndim] + self.shape[dim % self.ndim + 1:])

    def __getitem__(self, index):
        return shape_ops.GetItem.apply(self, _unwrap_index(index))


def _unwrap_index(index):
    """Tensors used as indices are read as their arrays (integer or boolean)."""
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index.data if isinstance(index, Tensor) else index


def from_dlpack(array, requires_grad=False):
    """A leaf Tensor sharing the memory of any array that speaks DLPack (a torch tensor, a JAX or
    CuPy array, a numpy array): no copy is made, so writes to one show in the other."""
    return Tensor(backend.from_dlpack(array), requires_grad=requires_grad)
