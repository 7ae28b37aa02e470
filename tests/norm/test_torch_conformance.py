"""batch_norm against torch.nn.functional.batch_norm where fastconv once differed: eps rules
(> 0 in training, >= 0 in evaluation), the message for a 1-d input, inputs of every rank torch
takes."""
import numpy as np
import pytest

import fastconv.functional as F
from fastconv import Tensor
from tests.oracle import compare_with_torch


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("eps", [0.0, -1e-5, float("nan"), 1e-3])
def test_batch_norm_eps_rules_match_torch(torch, training, eps):
    x = np.random.default_rng(0).standard_normal((4, 3, 2, 2))
    mean, var = np.zeros(3), np.ones(3)
    try:
        expected = torch.nn.functional.batch_norm(torch.tensor(x), torch.tensor(mean), torch.tensor(var),
                                                  training=training, eps=eps).numpy()
    except (RuntimeError, ValueError) as error:
        with pytest.raises(ValueError, match=r"^eps: " + str(error).split(",")[0]):
            F.batch_norm(Tensor(x), mean, var, training=training, eps=eps)
        return
    out = F.batch_norm(Tensor(x), mean, var, training=training, eps=eps).numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-7, atol=1e-9)


def test_batch_norm_1d_input_message_matches_torch():
    with pytest.raises(ValueError, match=r"^input: expected 2D or more input \(got 1D input\)"):
        F.batch_norm(Tensor(np.zeros(3)), np.zeros(3), np.ones(3), training=True)


@pytest.mark.parametrize("shape", [(4, 3), (4, 3, 5), (2, 3, 4, 5), (2, 3, 2, 3, 4)])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_every_rank_matches_torch(torch, shape, training):
    rng = np.random.default_rng(len(shape))
    x, weight, bias = rng.standard_normal(shape), rng.standard_normal(3), rng.standard_normal(3)
    ours_stats = [np.zeros(3), np.ones(3) + rng.random(3)]
    theirs_stats = [torch.tensor(a.copy()) for a in ours_stats]
    compare_with_torch(torch, lambda a, w, b: F.batch_norm(a, *ours_stats, w, b, training=training),
                       lambda a, w, b: torch.nn.functional.batch_norm(a, *theirs_stats, w, b, training=training),
                       [x, weight, bias])
    for ours, theirs in zip(ours_stats, theirs_stats):
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm_training_over_nan_and_inf_matches_torch(torch, relu, dtype):
    # Channel 1 holds a NaN, channel 2 an infinity (at its first element, where the one-pass
    # moments take their shift), channel 3 +inf and -inf: their statistics, outputs and running
    # statistics are NaN or infinite as torch's are; channel 0 is untouched. relu(NaN) is NaN.
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 4, 2, 3)).astype(dtype)
    x[1, 1, 0, 2], x[0, 2, 0, 0], x[0, 3, 1, 1], x[2, 3, 0, 0] = np.nan, np.inf, np.inf, -np.inf
    ours_stats = [np.zeros(4, dtype), np.ones(4, dtype)]
    theirs_stats = [torch.tensor(a.copy()) for a in ours_stats]
    out = F.batch_norm(Tensor(x), *ours_stats, training=True, relu=relu).numpy()
    expected = torch.nn.functional.batch_norm(torch.tensor(x), *theirs_stats, training=True)
    expected = (torch.relu(expected) if relu else expected).numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    assert np.isnan(out[:, 1:]).all() and np.isfinite(out[:, 0]).all()
    for ours, theirs in zip(ours_stats, theirs_stats):
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-5, atol=1e-6)
