"""Every op in fastconv.functional: gradcheck in float64 and PyTorch as the oracle for the
forward and every gradient; then the argument rules and error messages."""
import numpy as np
import pytest

import fastconv
import fastconv.functional as F
from fastconv import Tensor, gradcheck
from tests.oracle import compare_with_torch

TARGET = np.array([2, 0, 3])
SPATIAL_TARGET = np.array([[[1, 0], [-100, 2]], [[2, 2], [0, 1]]])
RUNNING_MEAN, RUNNING_VAR = np.array([0.1, -0.2, 0.3]), np.array([0.5, 1.5, 2.0])


def _dropout(x):
    fastconv.manual_seed(0)  # the same mask on every call, so differences are meaningful
    return F.dropout(x, 0.3)


# torch is imported only when a torch case runs: without torch the `torch` fixture skips those
# and the gradchecks still run.
def _torch_functional(name):
    return lambda *args, **kwargs: getattr(__import__("torch").nn.functional, name)(*args, **kwargs)


def _torch_tensor(array):
    return __import__("torch").tensor(array)


# name: (ours, torch's or None, input shapes)
CASES = {
    "conv2d": (lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1),
               lambda x, w, b: _torch_functional("conv2d")(x, w, b, stride=2, padding=1),
               [(2, 2, 5, 5), (3, 2, 3, 3), (3,)]),
    "conv2d_groups_dilation": (lambda x, w: F.conv2d(x, w, groups=2, dilation=2, padding="same"),
                               lambda x, w: _torch_functional("conv2d")(x, w, groups=2, dilation=2, padding="same"),
                               [(1, 4, 5, 5), (2, 2, 3, 3)]),
    "linear": (F.linear, _torch_functional("linear"), [(2, 3, 4), (5, 4), (5,)]),
    "linear_no_bias": (F.linear, _torch_functional("linear"), [(3, 4), (2, 4)]),
    "relu": (F.relu, _torch_functional("relu"), [(3, 4)]),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.2), lambda x: _torch_functional("leaky_relu")(x, 0.2), [(3, 4)]),
    "elu": (lambda x: F.elu(x, 0.7), lambda x: _torch_functional("elu")(x, 0.7), [(3, 4)]),
    "sigmoid": (F.sigmoid, _torch_functional("sigmoid"), [(3, 4)]),
    "tanh": (F.tanh, _torch_functional("tanh"), [(3, 4)]),
    "softmax": (lambda x: F.softmax(x, 1), lambda x: _torch_functional("softmax")(x, 1), [(2, 3, 4)]),
    "log_softmax": (lambda x: F.log_softmax(x, -1), lambda x: _torch_functional("log_softmax")(x, -1), [(2, 3, 4)]),
    "dropout": (_dropout, None, [(3, 5)]),
    "max_pool2d": (lambda x: F.max_pool2d(x, 2), lambda x: _torch_functional("max_pool2d")(x, 2), [(1, 2, 4, 6)]),
    "max_pool2d_padding_dilation": (lambda x: F.max_pool2d(x, 3, 2, padding=1, dilation=2),
                                    lambda x: _torch_functional("max_pool2d")(x, 3, 2, padding=1, dilation=2),
                                    [(2, 1, 7, 6)]),
    "avg_pool2d": (lambda x: F.avg_pool2d(x, 3, 2, padding=1),
                   lambda x: _torch_functional("avg_pool2d")(x, 3, 2, padding=1), [(1, 2, 5, 6)]),
    "avg_pool2d_exclude_pad": (lambda x: F.avg_pool2d(x, 2, 1, padding=1, count_include_pad=False),
                               lambda x: _torch_functional("avg_pool2d")(x, 2, 1, padding=1, count_include_pad=False),
                               [(1, 2, 4, 3)]),
    "adaptive_avg_pool2d": (lambda x: F.adaptive_avg_pool2d(x, (3, 2)),
                            lambda x: _torch_functional("adaptive_avg_pool2d")(x, (3, 2)), [(1, 2, 7, 5)]),
    "global_avg_pool": (lambda x: F.adaptive_avg_pool2d(x, 1),
                        lambda x: _torch_functional("adaptive_avg_pool2d")(x, 1), [(2, 3, 4, 4)]),
    "batch_norm_train": (lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                         lambda x, w, b: _torch_functional("batch_norm")(x, None, None, w, b, training=True),
                         [(4, 3, 2, 2), (3,), (3,)]),
    "batch_norm_1d_no_affine": (lambda x: F.batch_norm(x, None, None, training=True),
                                lambda x: _torch_functional("batch_norm")(x, None, None, training=True),
                                [(5, 3)]),
    "batch_norm_eval": (lambda x, w, b: F.batch_norm(x, RUNNING_MEAN, RUNNING_VAR, w, b),
                        lambda x, w, b: _torch_functional("batch_norm")(
                            x, _torch_tensor(RUNNING_MEAN), _torch_tensor(RUNNING_VAR), w, b),
                        [(2, 3, 4), (3,), (3,)]),
    "cross_entropy": (lambda x: F.cross_entropy(x, TARGET),
                      lambda x: _torch_functional("cross_entropy")(x, _torch_tensor(TARGET)), [(3, 4)]),
    "cross_entropy_spatial_ignore_index": (
        lambda x: F.cross_entropy(x, SPATIAL_TARGET),
        lambda x: _torch_functional("cross_entropy")(x, _torch_tensor(SPATIAL_TARGET)), [(2, 3, 2, 2)]),
    "cross_entropy_none": (lambda x: F.cross_entropy(x, TARGET, reduction="none"),
                           lambda x: _torch_functional("cross_entropy")(x, _torch_tensor(TARGET), reduction="none"),
                           [(3, 4)]),
    "multi_margin_loss": (lambda x: F.multi_margin_loss(x, TARGET, margin=2.0),
                          lambda x: _torch_functional("multi_margin_loss")(x, _torch_tensor(TARGET), margin=2.0),
                          [(3, 4)]),
    "multi_margin_loss_squared_sum": (
        lambda x: F.multi_margin_loss(x, TARGET, p=2, reduction="sum"),
        lambda x: _torch_functional("multi_margin_loss")(x, _torch_tensor(TARGET), p=2, reduction="sum"),
        [(3, 4)]),
    "mse_loss": (F.mse_loss, _torch_functional("mse_loss"), [(3, 4), (3, 4)]),
    "l1_loss_sum": (lambda x, y: F.l1_loss(x, y, reduction="sum"),
                    lambda x, y: _torch_functional("l1_loss")(x, y, reduction="sum"), [(3, 4), (3, 4)]),
    "embedding": (lambda w: F.embedding(TARGET, w),
                  lambda w: _torch_functional("embedding")(_torch_tensor(TARGET), w), [(5, 2)]),
}


def _inputs(rng, shapes):
    return [rng.standard_normal(shape) for shape in shapes]


@pytest.mark.parametrize("name", CASES)
@pytest.mark.usefixtures("one_thread")
def test_gradcheck(name, rng):
    ours, _, shapes = CASES[name]
    assert gradcheck(ours, [Tensor(a, requires_grad=True) for a in _inputs(rng, shapes)])


@pytest.mark.parametrize("name", [n for n, case in CASES.items() if case[1] is not None])
def test_matches_torch(name, rng, torch):
    ours, theirs, shapes = CASES[name]
    compare_with_torch(torch, ours, theirs, _inputs(rng, shapes))


def test_float32_conv_net_ops_match_torch(rng, torch):
    def net(functional):
        return lambda x, w, b, fc: functional.linear(functional.max_pool2d(functional.relu(
            functional.conv2d(x, w, b, padding=1)), 2).flatten(1), fc)
    arrays = [a.astype(np.float32) for a in _inputs(rng, [(2, 3, 6, 6), (4, 3, 3, 3), (4,), (5, 36)])]
    compare_with_torch(torch, net(F), net(torch.nn.functional), arrays, rtol=1e-4, atol=1e-5)


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


def test_dropout_is_inverted_and_off_in_eval(rng):
    x = Tensor(np.ones((200, 50)))
    y = F.dropout(x, 0.25).numpy()
    assert set(np.unique(y)) == {0.0, 1 / 0.75}
    assert abs((y == 0).mean() - 0.25) < 0.02
    assert F.dropout(x, 0.25, training=False) is x
    assert not F.dropout(x, 1.0).numpy().any()
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\]"):
        F.dropout(x, 1.5)


def test_cross_entropy_is_stable_for_huge_logits():
    logits = Tensor(np.array([[1e4, 0.0], [0.0, -1e4]]), requires_grad=True)
    loss = F.cross_entropy(logits, np.array([0, 0]))
    loss.backward()
    assert np.isfinite(loss.item()) and np.isfinite(logits.grad.numpy()).all()
    np.testing.assert_allclose(loss.item(), 0.0)


def test_loss_argument_errors():
    x = Tensor(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"input of shape \(3, 4\) and target of shape \(2,\)"):
        F.cross_entropy(x, np.array([0, 1]))
    with pytest.raises(TypeError, match="class indices"):
        F.cross_entropy(x, np.zeros(3))
    with pytest.raises(ValueError, match=r"target values must be in \[0, 4\)"):
        F.cross_entropy(x, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(x, TARGET, reduction="average")
    with pytest.raises(ValueError, match=r"\(3, 4\) and target of shape \(4, 3\)"):
        F.mse_loss(x, np.zeros((4, 3)))


def test_layer_argument_errors():
    with pytest.raises(ValueError, match=r"input of shape \(2, 3\) does not match weight of shape \(4, 5\)"):
        F.linear(Tensor(np.zeros((2, 3))), Tensor(np.zeros((4, 5))))
    with pytest.raises(ValueError, match="at most half the kernel size"):
        F.max_pool2d(Tensor(np.zeros((1, 1, 4, 4))), 2, padding=2)
    with pytest.raises(ValueError, match=r"input: expected a 4-d array \(N, C, H, W\)"):
        F.avg_pool2d(Tensor(np.zeros((1, 4, 4))), 2)
    with pytest.raises(TypeError, match="integer indices"):
        F.embedding(np.array([0.0]), Tensor(np.zeros((2, 2))))
