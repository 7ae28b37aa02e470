"""The engine: arithmetic, reductions, indexing and shape ops (gradcheck and torch), the
backward walk's semantics, and its error messages."""
import weakref

import numpy as np
import pytest

import fastconv
from fastconv import Tensor, gradcheck, no_grad
from fastconv.autograd import Function
from tests.oracle import compare_with_torch


def leaf(rng, *shape):
    return Tensor(rng.standard_normal(shape), requires_grad=True)


BINARY_OPS = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / (b * b + 1),
    "pow": lambda a, b: (a * a + 1) ** b,
}


@pytest.mark.parametrize("op", BINARY_OPS)
@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((2, 3, 4), (4,)), ((3, 1), (1, 5)), ((), (2, 3))])
def test_binary_ops_broadcast_gradients(op, shapes, rng):
    assert gradcheck(BINARY_OPS[op], [leaf(rng, *shapes[0]), leaf(rng, *shapes[1])])


@pytest.mark.parametrize("op", BINARY_OPS)
def test_binary_ops_match_torch(op, rng, torch):
    arrays = [rng.standard_normal((2, 3, 4)), rng.standard_normal((3, 1))]
    compare_with_torch(torch, BINARY_OPS[op], BINARY_OPS[op], arrays)


def test_reverse_ops_with_python_scalars(rng):
    x = leaf(rng, 3, 2)
    assert gradcheck(lambda a: 2 - a + 3 * a - 1 / (a * a + 1) + 2 ** a - (-a), [x])


def test_ndarray_on_the_left_defers_to_tensor(rng):
    x = leaf(rng, 3)
    y = np.full(3, 2.0) - x * np.full(3, 3.0)
    assert isinstance(y, Tensor)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full(3, -3.0))


def test_reduced_gradients_reach_the_gemm_as_broadcast_views(rng):
    # sum's backward hands matmul a zero-stride view of its gradient
    a, b = leaf(rng, 3, 4), leaf(rng, 4, 2)
    (a @ b).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), np.ones((3, 2)) @ b.numpy().T)
    np.testing.assert_allclose(b.grad.numpy(), a.numpy().T @ np.ones((3, 2)))


def test_scalar_operands_keep_float32():
    x = fastconv.tensor([1.0, 2.0])
    assert x.dtype == np.float32
    assert (x * 2.5 + 1).dtype == np.float32
    assert (1 / x).dtype == np.float32


def test_broadcast_mismatch_names_both_shapes(rng):
    with pytest.raises(ValueError, match=r"\(3, 4\) and \(3,\)"):
        leaf(rng, 3, 4) + leaf(rng, 3)


@pytest.mark.parametrize("name", ["exp", "log", "sqrt", "abs", "tanh", "sigmoid", "relu"])
def test_elementwise(name, rng, torch):
    x = rng.uniform(0.2, 2.0, (3, 4)) * rng.choice([-1, 1], (3, 4))
    if name in ("log", "sqrt"):
        x = np.abs(x)
    assert gradcheck(lambda t: getattr(t, name)(), [Tensor(x, requires_grad=True)])
    compare_with_torch(torch, lambda t: getattr(t, name)(), lambda t: getattr(t, name)(), [x])


def test_sigmoid_is_stable_for_large_inputs():
    x = Tensor(np.array([-1000.0, 0.0, 1000.0]))
    with np.errstate(all="raise"):
        np.testing.assert_allclose(x.sigmoid().numpy(), [0.0, 0.5, 1.0])


def test_matmul_2d_and_batched(rng, torch):
    assert gradcheck(lambda a, b: a @ b, [leaf(rng, 3, 4), leaf(rng, 4, 2)])
    assert gradcheck(lambda a, b: a @ b, [leaf(rng, 2, 3, 4), leaf(rng, 4, 2)])
    compare_with_torch(torch, lambda a, b: a @ b, lambda a, b: a @ b,
                       [rng.standard_normal((5, 7)), rng.standard_normal((7, 3))])


@pytest.mark.parametrize("shapes", [((4,), (4,)), ((3, 4), (4,)), ((4,), (4, 2)), ((2, 3, 4), (4,)),
                                    ((4,), (2, 4, 3))])
def test_matmul_with_a_vector_as_torch(rng, torch, shapes):
    # torch.matmul's rule: a 1-d left operand is a row, a 1-d right one a column, and the product
    # drops the axis each added
    assert gradcheck(lambda a, b: a @ b, [leaf(rng, *shape) for shape in shapes])
    compare_with_torch(torch, lambda a, b: a @ b, lambda a, b: a @ b, [rng.standard_normal(s) for s in shapes])


def test_matmul_mismatch_names_both_shapes(rng):
    with pytest.raises(ValueError, match=r"\(3, 4\) and \(5, 2\)"):
        leaf(rng, 3, 4) @ leaf(rng, 5, 2)
    with pytest.raises(ValueError, match=r"\(3,\) and \(4,\)"):
        leaf(rng, 3) @ leaf(rng, 4)


@pytest.mark.parametrize("axis", [None, 0, 1, (0, 2), -1])
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("name", ["sum", "mean", "max"])
def test_reductions(name, axis, keepdims, rng):
    x = leaf(rng, 2, 3, 4)
    assert gradcheck(lambda t: getattr(t, name)(axis=axis, keepdims=keepdims), [x])
    expected = getattr(np, name)(x.numpy(), axis=axis, keepdims=keepdims)
    np.testing.assert_allclose(getattr(x, name)(axis=axis, keepdims=keepdims).numpy(), expected)


def test_gradients_keep_float32_through_every_op():
    x = Tensor(np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32), requires_grad=True)
    w = Tensor(np.ones((3, 2), np.float32), requires_grad=True)
    (x.max(axis=0, keepdims=True) @ w + (x ** 2).mean() / 3).sum().backward()
    assert x.grad.dtype == w.grad.dtype == np.float32


def test_max_shares_gradient_between_ties():
    x = Tensor(np.array([1.0, 3.0, 3.0]), requires_grad=True)
    x.max().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.5, 0.5])


def test_axis_out_of_range():
    with pytest.raises(ValueError, match="axis 3"):
        Tensor(np.ones((2, 2))).sum(axis=3)


INDICES = {
    "basic": (slice(1, None), Ellipsis, 0),
    "negative_step": (slice(None, None, -1), 1),
    "integer_array_with_repeats": (np.array([0, 2, 0, 0]),),
    "mixed": (np.array([1, 1]), slice(None), np.array([3, 0])),
    "boolean": (np.array([True, False, True]),),
}


@pytest.mark.parametrize("name", INDICES)
def test_indexing(name, rng, torch):
    index = INDICES[name]
    assert gradcheck(lambda t: t[index] * 1.5, [leaf(rng, 3, 2, 4)])
    torch_index = tuple(torch.tensor(i) if isinstance(i, np.ndarray) else i for i in index)
    if name != "negative_step":  # torch has no negative slice steps
        compare_with_torch(torch, lambda t: t[index], lambda t: t[torch_index], [rng.standard_normal((3, 2, 4))])


def test_repeated_index_accumulates():
    x = Tensor(np.zeros(3), requires_grad=True)
    x[np.array([0, 0, 2, 0])].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 0.0, 1.0])


def test_tensor_index_is_read_as_array():
    x = Tensor(np.arange(5.0))
    np.testing.assert_array_equal(x[Tensor(np.array([4, 1]))].numpy(), [4.0, 1.0])


SHAPE_OPS = {
    "reshape": lambda t: t.reshape(4, 6),
    "view_tuple": lambda t: t.view((2, -1)),
    "transpose": lambda t: t.transpose(0, 2),
    "permute": lambda t: t.permute(2, 0, 1),
    "T": lambda t: t.T,
    "flatten": lambda t: t.flatten(1),
    "unsqueeze_squeeze": lambda t: t.unsqueeze(1).squeeze(1).unsqueeze(-1),
    "cat": lambda t: fastconv.cat([t, t * 2, t[:, :1]], dim=1),
    "stack": lambda t: fastconv.stack([t, t.exp()], dim=-1),
    "split_sizes": lambda t: fastconv.split(t, [1, 3], dim=2)[1] * 3,
    "split_chunk": lambda t: fastconv.split(t, 2, dim=1)[-1],
    "split_all_pieces_used": lambda t: fastconv.cat(fastconv.split(t, 1, dim=0)[::-1], dim=2),
    "unbind": lambda t: fastconv.autograd.unbind(t, 1)[2] * 2,
}


@pytest.mark.parametrize("name", SHAPE_OPS)
def test_shape_ops(name, rng):
    assert gradcheck(SHAPE_OPS[name], [leaf(rng, 2, 3, 4)])


def test_shape_ops_match_numpy(rng):
    x = rng.standard_normal((2, 3, 4))
    t = Tensor(x)
    np.testing.assert_array_equal(t.permute(2, 0, 1).numpy(), x.transpose(2, 0, 1))
    np.testing.assert_array_equal(fastconv.cat([t, t], dim=-1).numpy(), np.concatenate([x, x], -1))
    np.testing.assert_array_equal(fastconv.stack([t, t], 1).numpy(), np.stack([x, x], 1))
    pieces = fastconv.split(t, 2, dim=1)
    assert [p.shape for p in pieces] == [(2, 2, 4), (2, 1, 4)]


def test_shape_errors_name_shapes(rng):
    x = leaf(rng, 2, 3)
    with pytest.raises(ValueError, match=r"shape \(2, 3\).*\(4, 2\)"):
        x.reshape(4, 2)
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(3, 3\)"):
        fastconv.cat([x, leaf(rng, 3, 3)], dim=1)
    with pytest.raises(ValueError, match="do not add up to 3"):
        fastconv.split(x, [1, 1], dim=1)


# ---- the backward walk --------------------------------------------------------------------

def test_tensor_used_twice_accumulates(rng):
    x = leaf(rng, 3)
    (x * x + x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.numpy() + 1)


def test_grad_accumulates_across_backward_calls(rng):
    x = leaf(rng, 3)
    (x * 2).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full(3, 5.0))


def test_gradient_argument_for_non_scalar(rng):
    x = leaf(rng, 2, 2)
    (x * 3).backward(gradient=np.ones((2, 2)))
    np.testing.assert_allclose(x.grad.numpy(), np.full((2, 2), 3.0))


def test_backward_on_non_scalar_without_gradient_raises(rng):
    with pytest.raises(RuntimeError, match=r"scalar.*shape \(2, 2\)"):
        (leaf(rng, 2, 2) * 2).backward()


def test_second_backward_through_freed_graph_raises(rng):
    loss = (leaf(rng, 3).exp() * 2).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time.*retain_graph"):
        loss.backward()


def test_second_backward_through_a_shared_freed_subgraph_raises(rng):
    hidden = leaf(rng, 3).exp()
    hidden.sum().backward()
    with pytest.raises(RuntimeError, match="second time"):
        (hidden * 2).sum().backward()


def test_backward_releases_the_graph(rng):
    hidden = leaf(rng, 3).exp()
    watcher = weakref.ref(hidden)
    loss = (hidden * 2).sum()
    del hidden
    loss.backward()
    assert watcher() is None  # `loss` no longer keeps intermediate tensors alive


def test_retain_graph_allows_a_second_backward(rng):
    x = leaf(rng, 3)
    loss = (x.exp()).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.exp(x.numpy()))


def test_backward_without_graph_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor(np.ones(1)).backward()


def test_deep_graph_needs_no_recursion():
    # an unrolled RNN of thousands of steps is deeper than Python's recursion limit
    x = Tensor(np.ones(1), requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0 + 0.0
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0])


def test_grad_is_not_an_alias_of_upstream_arrays(rng):
    x, y = leaf(rng, 3), leaf(rng, 3)
    (x + y).sum().backward()
    x.grad.data += 1
    np.testing.assert_allclose(y.grad.numpy(), np.ones(3))


def test_only_leaves_keep_grad(rng):
    x = leaf(rng, 3)
    hidden = x * 2
    hidden.sum().backward()
    assert hidden.grad is None and x.grad is not None


def test_no_grad_records_nothing(rng):
    x = leaf(rng, 3)
    with no_grad():
        y = x * 2
        assert not fastconv.autograd.is_grad_enabled()
    assert fastconv.autograd.is_grad_enabled()
    assert not y.requires_grad and y.is_leaf


def test_no_grad_as_decorator(rng):
    x = leaf(rng, 3)
    assert not no_grad()(lambda t: t * 2)(x).requires_grad


def test_detach_cuts_the_graph(rng):
    x = leaf(rng, 3)
    d = (x * 2).detach()
    assert not d.requires_grad and d.is_leaf
    np.testing.assert_array_equal(d.numpy(), x.numpy() * 2)


def test_introspection():
    x = fastconv.tensor(np.zeros((2, 3)), requires_grad=True)
    assert (x.shape, x.dtype, x.ndim, len(x), x.requires_grad) == ((2, 3), np.float64, 2, 2, True)
    assert isinstance(x.numpy(), np.ndarray)
    assert fastconv.tensor([1, 2]).dtype.kind == "i"


def test_a_host_tensor_is_on_the_cpu_and_shares_its_array():
    x = Tensor(np.arange(3.0), requires_grad=True)
    assert x.device == "cpu"
    assert x.numpy() is x.data  # no copy on the host
    assert x.to("cpu") is x and x.cpu() is x


def test_to_names_the_devices_it_knows():
    with pytest.raises(ValueError, match=r"device: expected one of \('cpu', 'cuda'\), got 'tpu'"):
        Tensor(np.zeros(2)).to("tpu")


def test_a_device_copy_stays_in_the_graph(rng):
    # the host-to-host copy runs the same Function that moves a tensor to and from a GPU
    from fastconv.autograd.shape import ToDevice
    x = leaf(rng, 2, 3)
    y = ToDevice.apply(x, "cpu")
    assert y.device == "cpu" and y.requires_grad
    (y * y).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.numpy())


def test_to_cuda_moves_the_tensor_or_says_why_it_cannot(rng):
    x = leaf(rng, 2, 3)
    if not fastconv.backend.cuda_available():
        with pytest.raises(fastconv.backend.DeviceError, match="device 'cuda' is not available"):
            x.to("cuda")
        return
    on_gpu = x.to("cuda")
    assert on_gpu.device == "cuda" and isinstance(on_gpu.numpy(), np.ndarray)
    on_gpu.cpu().sum().backward()
    assert x.grad.device == "cpu"
    np.testing.assert_array_equal(x.grad.numpy(), np.ones((2, 3)))


# ---- gradients of a tensor with several users --------------------------------------------

class Seen(Function):
    """The identity; its backward notes the gradient it receives (and its address)."""
    received = []

    @staticmethod
    def forward(ctx, x):
        return x.copy()

    @staticmethod
    def backward(ctx, grad):
        Seen.received.append((grad.ctypes.data, grad.copy()))
        return grad


def twice(keep):
    """y = 2x as a Function whose backward returns a new array (its address noted), which it
    also keeps when `keep` is 'array' and whose memory it keeps when 'base' (returning a view)."""
    class Twice(Function):
        addresses, kept = [], []

        @staticmethod
        def forward(ctx, x):
            return 2 * x

        @staticmethod
        def backward(ctx, grad):
            out = 2 * grad
            Twice.addresses.append(out.ctypes.data)
            if keep:
                Twice.kept.append(out)
            return out.reshape(out.shape) if keep == "base" else out
    return Twice


@pytest.mark.parametrize("keep", [None, "array", "base"])
def test_the_gradients_of_a_tensor_with_several_users_are_summed_in_place_where_unshared(keep, rng):
    x = leaf(rng, 3)
    Twice = twice(keep)
    Seen.received.clear()
    h = Seen.apply(x)
    (Twice.apply(h) + Twice.apply(h) * 3.0).sum().backward()
    (address, grad), = Seen.received
    np.testing.assert_array_equal(grad, [8.0, 8.0, 8.0])
    np.testing.assert_array_equal(x.grad.numpy(), [8.0, 8.0, 8.0])
    # unshared: the sum went into the first gradient's memory; shared: it was left as it was
    assert (address in Twice.addresses) == (keep is None)
    assert sorted(k[0] for k in Twice.kept) == ([2.0, 6.0] if keep else [])


@pytest.mark.parametrize("keep", [None, "array", "base"])
def test_a_leaf_keeps_an_unshared_first_gradient_as_its_grad(keep, rng):
    x = leaf(rng, 3)
    Twice = twice(keep)
    Twice.apply(x).sum().backward()
    assert (x.grad.data.ctypes.data in Twice.addresses) == (keep is None)  # else a copy
    x.grad.data += 1
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0, 3.0])
    assert all(np.array_equal(kept, [2.0, 2.0, 2.0]) for kept in Twice.kept)


@pytest.mark.parametrize("channels_last", [False, True])
def test_gradients_summed_and_kept_in_place_have_the_bits_of_copies(channels_last, monkeypatch):
    from fastconv import backend, functional as F
    from fastconv.models.deep import ResNet20
    from fastconv.ops import conv_algo
    monkeypatch.setattr(conv_algo, "_mode", "deterministic")  # the same kernels in both runs
    images = np.random.default_rng(0).standard_normal((4, 3, 8, 8)).astype(np.float32)
    if channels_last:
        images = np.ascontiguousarray(images.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)

    def gradients():
        fastconv.manual_seed(0)
        model = ResNet20(3, 10, width=4)
        F.cross_entropy(model(Tensor(images)), np.arange(4)).backward()
        return [p.grad.numpy() for p in model.parameters()]

    summed_in_place = gradients()
    monkeypatch.setattr(backend, "unshared", lambda array: False)
    for ours, out_of_place in zip(summed_in_place, gradients()):
        np.testing.assert_array_equal(ours, out_of_place)


def test_post_accumulate_hook_sees_every_contribution_of_the_pass_once():
    w = Tensor(np.array([2.0, 3.0]), requires_grad=True)
    seen = []
    w.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.data.copy()))
    x = Tensor(np.array([1.0, 4.0]))
    ((w * x).sum() + (w * w).sum() + (w * 5.0).sum()).backward()  # three uses of w, one twice
    assert len(seen) == 1
    np.testing.assert_array_equal(seen[0], x.data + 2 * w.data + 5.0)


def test_post_accumulate_hooks_fire_last_layer_first_while_backward_goes_on():
    w1 = Tensor(np.array([1.5]), requires_grad=True)
    w2 = Tensor(np.array([-2.0]), requires_grad=True)
    order = []
    w1.register_post_accumulate_grad_hook(lambda t: order.append(("w1", w2.grad is not None)))
    w2.register_post_accumulate_grad_hook(lambda t: order.append(("w2", w1.grad is not None)))
    ((Tensor(np.array([3.0])) * w1).tanh() * w2).sum().backward()
    assert order == [("w2", False), ("w1", True)]  # w2's fired before w1 had a gradient


def test_post_accumulate_hook_fires_once_per_backward_and_on_a_leaf_root():
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    calls = []
    w.register_post_accumulate_grad_hook(lambda t: calls.append(t.grad.data.copy()))
    (w * 2.0).sum().backward()
    (w * 3.0).sum().backward()
    w.backward(np.ones(2))
    np.testing.assert_array_equal(calls[-1], [6.0, 6.0])
    assert len(calls) == 3


def test_post_accumulate_hook_is_for_leaves_that_require_grad():
    w = Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(RuntimeError, match="only a leaf"):
        (w * 2.0).register_post_accumulate_grad_hook(print)
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor(np.ones(2)).register_post_accumulate_grad_hook(print)
