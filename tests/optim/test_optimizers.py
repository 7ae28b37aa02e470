"""Optimisers against torch.optim on identical parameters and gradients, and their state_dict."""
import numpy as np
import pytest

from fastconv import Tensor, nn, optim

CONFIGS = {
    "sgd": ("SGD", dict(lr=0.1)),
    "sgd_momentum_decay_dampening": ("SGD", dict(lr=0.1, momentum=0.9, weight_decay=1e-2, dampening=0.1)),
    "sgd_nesterov": ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-2)),
    "adagrad": ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.1)),
    "rmsprop": ("RMSprop", dict(lr=0.01, weight_decay=0.1)),
    "rmsprop_centered_momentum": ("RMSprop", dict(lr=0.01, momentum=0.9, centered=True)),
    "adam": ("Adam", dict(lr=0.01, betas=(0.8, 0.9), weight_decay=0.1)),
}
SHAPES = [(3, 4), (4,)]


def _gradients(rng, steps):
    return [[rng.standard_normal(s) for s in SHAPES] for _ in range(steps)]


def _run(optimizer, params, gradients, to_grad):
    for step_grads in gradients:
        for p, g in zip(params, step_grads):
            p.grad = to_grad(g.copy())
        optimizer.step()


@pytest.mark.parametrize("name", CONFIGS)
def test_matches_torch(name, rng, torch):
    cls, hyper = CONFIGS[name]
    initial = [rng.standard_normal(s) for s in SHAPES]
    ours = [nn.Parameter(a.copy()) for a in initial]
    theirs = [torch.nn.Parameter(torch.tensor(a)) for a in initial]
    gradients = _gradients(rng, 5)
    _run(getattr(optim, cls)(ours, **hyper), ours, gradients, Tensor)
    _run(getattr(torch.optim, cls)(theirs, **hyper), theirs, gradients, torch.tensor)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", CONFIGS)
def test_state_dict_resume_continues_exactly(name, rng):
    cls, hyper = CONFIGS[name]
    initial = [rng.standard_normal(s) for s in SHAPES]
    gradients = _gradients(rng, 4)
    straight = [nn.Parameter(a.copy()) for a in initial]
    _run(getattr(optim, cls)(straight, **hyper), straight, gradients, Tensor)

    resumed = [nn.Parameter(a.copy()) for a in initial]
    first = getattr(optim, cls)(resumed, **hyper)
    _run(first, resumed, gradients[:2], Tensor)
    second = getattr(optim, cls)(resumed, **dict(hyper, lr=123.0))  # the lr comes from the state
    second.load_state_dict(first.state_dict())
    _run(second, resumed, gradients[2:], Tensor)
    for a, b in zip(straight, resumed):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def textbook_sgd_step(params, buffers, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    """PyTorch's SGD update written out as its formulas, one new array per operation; buffers:
    one momentum buffer (None before the first step) per parameter."""
    for i, p in enumerate(params):
        d_p = p.grad.data
        if weight_decay:
            d_p = d_p + weight_decay * p.data
        if momentum:
            buffers[i] = d_p.copy() if buffers[i] is None else momentum * buffers[i] + (1 - dampening) * d_p
            d_p = d_p + momentum * buffers[i] if nesterov else buffers[i]
        p.data[...] = p.data - lr * d_p


SGD_CONFIGS = [dict(lr=0.1), dict(lr=0.1, weight_decay=1e-2), dict(lr=0.1, momentum=0.9),
               dict(lr=0.1, momentum=0.9, weight_decay=1e-2, dampening=0.1),
               dict(lr=0.1, momentum=0.9, weight_decay=1e-2, nesterov=True), dict(lr=0.1, momentum=0.9, nesterov=True)]


@pytest.mark.parametrize("hyper", SGD_CONFIGS)
@pytest.mark.parametrize("dtypes", [(np.float32, np.float32), (np.float64, np.float64), (np.float32, np.float64)])
def test_sgd_gives_the_bits_of_its_formulas(hyper, dtypes, rng):
    param_dtype, grad_dtype = dtypes  # a gradient set by hand may have another dtype
    initial = [rng.standard_normal(s).astype(param_dtype) for s in SHAPES]
    ours, theirs = [nn.Parameter(a.copy()) for a in initial], [nn.Parameter(a.copy()) for a in initial]
    optimizer, buffers = optim.SGD(ours, **hyper), [None] * len(SHAPES)
    for step_grads in _gradients(rng, 4):
        for a, b, g in zip(ours, theirs, step_grads):
            a.grad, b.grad = Tensor(g.astype(grad_dtype)), Tensor(g.astype(grad_dtype))
        optimizer.step()
        textbook_sgd_step(theirs, buffers, **hyper)
        for a, b, g in zip(ours, theirs, step_grads):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
            np.testing.assert_array_equal(a.grad.numpy(), g.astype(grad_dtype))  # the gradient is left as it was
    states = [optimizer.state[p].get("momentum_buffer") for p in ours]
    for state, buffer in zip(states, buffers):
        assert state is None and buffer is None or state.dtype == buffer.dtype and np.array_equal(state, buffer)


def test_parameters_without_grad_are_skipped():
    used, unused = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(2))
    used.grad = Tensor(np.ones(2))
    optim.SGD([used, unused], lr=0.5).step()
    np.testing.assert_array_equal(unused.numpy(), [1.0, 1.0])
    np.testing.assert_array_equal(used.numpy(), [0.5, 0.5])


def test_param_groups_override_defaults():
    a, b = nn.Parameter(np.ones(1)), nn.Parameter(np.ones(1))
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    a.grad, b.grad = Tensor(np.ones(1)), Tensor(np.ones(1))
    opt.step()
    assert (a.item(), b.item()) == pytest.approx((0.9, 0.5))


def test_zero_grad():
    p = nn.Parameter(np.ones(1))
    p.grad = Tensor(np.ones(1))
    optim.Adam([p]).zero_grad()
    assert p.grad is None


def test_bad_arguments():
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match=">= 0"):
        optim.SGD([nn.Parameter(np.ones(1))], lr=-1)
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD([nn.Parameter(np.ones(1))], lr=0.1, nesterov=True)
    opt = optim.SGD([nn.Parameter(np.ones(1))], lr=0.1)
    with pytest.raises(ValueError, match=r"sizes \[2\].*\[1\]"):
        opt.load_state_dict(optim.SGD([nn.Parameter(np.ones(1))] * 2, lr=0.1).state_dict())
