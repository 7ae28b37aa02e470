"""How a fastconv.torch call reaches its kernel: an eager call that nothing else would see runs
the kernel without torch's dispatcher; any call something could see (a dispatch mode, the
profiler, a gradient to record, a tensor subclass) goes through the op, as torch.ops.fastconv.*."""
import pytest


@pytest.fixture
def x(torch):
    return torch.randn(2, 3, 6, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def _ops_seen_by_a_dispatch_mode(torch, call):
    from torch.utils._python_dispatch import TorchDispatchMode

    class Recorder(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.seen = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.seen.append(str(func))
            return func(*args, **(kwargs or {}))

    with Recorder() as recorder:
        call()
    return recorder.seen


def test_the_direct_call_and_the_op_compute_the_same(torch, fct, x):
    y, indices = fct.functional.max_pool2d(x, 3, 2, padding=1, return_indices=True)
    y_op, indices_op = torch.ops.fastconv.max_pool2d.default(x, [3, 3], [2, 2], [1, 1], [1, 1], False)
    assert torch.equal(y, y_op) and torch.equal(indices, indices_op)
    torch.testing.assert_close(y, torch.nn.functional.max_pool2d(x, 3, 2, padding=1), rtol=0, atol=0)


def test_a_dispatch_mode_sees_calls_that_need_no_gradient(torch, fct, x):
    seen = _ops_seen_by_a_dispatch_mode(torch, lambda: fct.functional.avg_pool2d(x, 2))
    assert "fastconv.avg_pool2d.default" in seen


def test_the_profiler_sees_the_op(torch, fct, x):
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        fct.functional.max_pool2d(x, 2)
    assert "fastconv::max_pool2d" in {event.name for event in profile.events()}


def test_a_tensor_subclass_goes_through_the_op(torch, fct, x):
    class Recording(torch.Tensor):
        calls = []

        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            cls.calls.append(str(func))
            return super().__torch_function__(func, types, args, kwargs or {})

    y = fct.functional.avg_pool2d(x.as_subclass(Recording), 2)
    assert "fastconv.avg_pool2d.default" in Recording.calls
    torch.testing.assert_close(y.as_subclass(torch.Tensor), torch.nn.functional.avg_pool2d(x, 2))


def test_a_direct_call_that_records_a_gradient_matches_the_op(torch, fct, x):
    """nn.Parameter has no dispatch of its own: a layer's weight takes the direct path too."""
    weight = torch.nn.Parameter(torch.randn(4, 3, 3, 3, dtype=torch.float64))
    direct = fct.functional.conv2d(x, weight, padding=1)
    assert type(direct.grad_fn).__name__ == "conv2dBackward"
    (direct_grad,) = torch.autograd.grad(direct.square().sum(), weight)
    through_op = torch.ops.fastconv.conv2d.default(x, weight, None, [1, 1], [1, 1], [1, 1], 1, False, "auto")
    (op_grad,) = torch.autograd.grad(through_op.square().sum(), weight)
    assert torch.equal(direct, through_op) and torch.equal(direct_grad, op_grad)


def test_a_gradient_of_a_gradient_is_refused_naming_the_op(torch, fct, x):
    x.requires_grad_()
    y = fct.functional.max_pool2d(x, 2)
    v = torch.ones_like(y, requires_grad=True)
    (grad_x,) = torch.autograd.grad(y, x, grad_outputs=v, create_graph=True)
    with pytest.raises(RuntimeError, match="fastconv::max_pool2d_backward has no derivative"):
        grad_x.sum().backward()
