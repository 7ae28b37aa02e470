"""functional.batch_norm and its fused residual add and ReLU: gradcheck in float64 and PyTorch as
the oracle for the forward, every gradient and the running statistics; then the argument rules."""
import numpy as np
import pytest

import fastconv.functional as F
from fastconv import Tensor
from tests.functional_cases import gradcheck_test, torch_functional, torch_tensor, torch_test

RUNNING_MEAN, RUNNING_VAR = np.array([0.1, -0.2, 0.3]), np.array([0.5, 1.5, 2.0])


def _bn_add_relu_torch(x, w, b, z):
    torch = __import__("torch")
    return torch.relu(torch.nn.functional.batch_norm(x, None, None, w, b, training=True) + z)


# name: (ours, torch's, input shapes)
CASES = {
    "batch_norm_train": (lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                         lambda x, w, b: torch_functional("batch_norm")(x, None, None, w, b, training=True),
                         [(4, 3, 2, 2), (3,), (3,)]),
    "batch_norm_1d_no_affine": (lambda x: F.batch_norm(x, None, None, training=True),
                                lambda x: torch_functional("batch_norm")(x, None, None, training=True),
                                [(5, 3)]),
    "batch_norm_eval": (lambda x, w, b: F.batch_norm(x, RUNNING_MEAN, RUNNING_VAR, w, b),
                        lambda x, w, b: torch_functional("batch_norm")(
                            x, torch_tensor(RUNNING_MEAN), torch_tensor(RUNNING_VAR), w, b),
                        [(2, 3, 4), (3,), (3,)]),
    "batch_norm_add_relu_train": (lambda x, w, b, z: F.batch_norm(x, None, None, w, b, True, residual=z, relu=True),
                                  _bn_add_relu_torch, [(4, 3, 2, 2), (3,), (3,), (4, 3, 2, 2)]),
    "batch_norm_relu_eval": (
        lambda x, w, b: F.batch_norm(x, RUNNING_MEAN, RUNNING_VAR, w, b, relu=True),
        lambda x, w, b: torch_functional("relu")(torch_functional("batch_norm")(
            x, torch_tensor(RUNNING_MEAN), torch_tensor(RUNNING_VAR), w, b)),
        [(2, 3, 4), (3,), (3,)]),
}

test_gradcheck = gradcheck_test(CASES)
test_matches_torch = torch_test(CASES)


def test_batch_norm_updates_running_stats_like_torch(rng, torch):
    x = rng.standard_normal((4, 3, 2, 2))
    ours = [RUNNING_MEAN.copy(), RUNNING_VAR.copy()]
    theirs = [torch.tensor(RUNNING_MEAN), torch.tensor(RUNNING_VAR)]
    F.batch_norm(Tensor(x), *ours, training=True, momentum=0.3)
    torch.nn.functional.batch_norm(torch.tensor(x), *theirs, training=True, momentum=0.3)
    for a, b in zip(ours, theirs):  # running_var is the unbiased estimate in both
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-12)


def test_batch_norm_needs_two_values_per_channel_when_training():
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        F.batch_norm(Tensor(np.ones((1, 3))), None, None, training=True)


def test_batch_norm_residual_must_match_input():
    x = Tensor(np.zeros((1, 2, 4, 4)))
    with pytest.raises(ValueError, match=r"residual of shape \(1, 2, 4, 3\) does not match"):
        F.batch_norm(x, None, None, training=True, residual=np.zeros((1, 2, 4, 3)))
