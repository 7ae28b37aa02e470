"""clip_grad_norm_ against torch.nn.utils.clip_grad_norm_, and its rules."""
import math

import numpy as np
import pytest

from fastconv import Tensor, optim


def parameters_with_grads(rng, scale):
    params = [Tensor(rng.standard_normal(shape), requires_grad=True) for shape in [(3, 4), (5,), (2, 2, 2)]]
    for p in params:
        p.grad = Tensor(scale * rng.standard_normal(p.shape))
    return params


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.5, math.inf])
@pytest.mark.parametrize("scale", [0.01, 10.0])  # below max_norm: untouched; above: scaled
def test_matches_torch(torch, rng, norm_type, scale):
    ours = parameters_with_grads(rng, scale)
    theirs = [torch.tensor(p.data.copy(), requires_grad=True) for p in ours]
    for t, p in zip(theirs, ours):
        t.grad = torch.tensor(p.grad.numpy().copy())
    total = optim.clip_grad_norm_(ours, 1.0, norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, 1.0, norm_type)
    assert total == pytest.approx(float(expected), rel=1e-12)
    for p, t in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-12)


def test_clipped_norm_is_max_norm(rng):
    params = parameters_with_grads(rng, 10.0)
    before = optim.clip_grad_norm_(params, 0.5)
    after = math.sqrt(sum(float((p.grad.numpy() ** 2).sum()) for p in params))
    assert before > 0.5 and after == pytest.approx(0.5, rel=1e-5)


def test_parameters_without_gradients_are_skipped():
    assert optim.clip_grad_norm_([Tensor(np.ones(3), requires_grad=True)], 1.0) == 0.0


@pytest.mark.parametrize("max_norm, norm_type, message", [
    (-1.0, 2.0, "max_norm: expected a non-negative number"),
    (1.0, 0.5, "norm_type: expected a number >= 1"),
])
def test_bad_arguments_are_named(rng, max_norm, norm_type, message):
    with pytest.raises(ValueError, match=message):
        optim.clip_grad_norm_(parameters_with_grads(rng, 1.0), max_norm, norm_type)
