"""The engine-level ops of fastconv.functional (linear, embedding, activations, dropout, losses):
gradcheck in float64 and PyTorch as the oracle for the forward and every gradient; then the
argument rules and error messages."""
import numpy as np
import pytest

import fastconv
import fastconv.functional as F
from fastconv import Tensor
from tests.functional_cases import gradcheck_test, torch_functional, torch_tensor, torch_test

TARGET = np.array([2, 0, 3])
CLASS_WEIGHTS = np.array([0.5, 2.0, -1.0, 3.0])
SPATIAL_TARGET = np.array([[[1, 0], [-100, 2]], [[2, 2], [0, 1]]])


def _dropout(x):
    fastconv.manual_seed(0)  # the same mask on every call, so differences are meaningful
    return F.dropout(x, 0.3)


# name: (ours, torch's or None, input shapes)
CASES = {
    "linear": (F.linear, torch_functional("linear"), [(2, 3, 4), (5, 4), (5,)]),
    "linear_no_bias": (F.linear, torch_functional("linear"), [(3, 4), (2, 4)]),
    "relu": (F.relu, torch_functional("relu"), [(3, 4)]),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.2), lambda x: torch_functional("leaky_relu")(x, 0.2), [(3, 4)]),
    "elu": (lambda x: F.elu(x, 0.7), lambda x: torch_functional("elu")(x, 0.7), [(3, 4)]),
    "sigmoid": (F.sigmoid, torch_functional("sigmoid"), [(3, 4)]),
    "tanh": (F.tanh, torch_functional("tanh"), [(3, 4)]),
    "softmax": (lambda x: F.softmax(x, 1), lambda x: torch_functional("softmax")(x, 1), [(2, 3, 4)]),
    "log_softmax": (lambda x: F.log_softmax(x, -1), lambda x: torch_functional("log_softmax")(x, -1), [(2, 3, 4)]),
    "dropout": (_dropout, None, [(3, 5)]),
    "cross_entropy": (lambda x: F.cross_entropy(x, TARGET),
                      lambda x: torch_functional("cross_entropy")(x, torch_tensor(TARGET)), [(3, 4)]),
    "cross_entropy_spatial_ignore_index": (
        lambda x: F.cross_entropy(x, SPATIAL_TARGET),
        lambda x: torch_functional("cross_entropy")(x, torch_tensor(SPATIAL_TARGET)), [(2, 3, 2, 2)]),
    "cross_entropy_none": (lambda x: F.cross_entropy(x, TARGET, reduction="none"),
                           lambda x: torch_functional("cross_entropy")(x, torch_tensor(TARGET), reduction="none"),
                           [(3, 4)]),
    "multi_margin_loss": (lambda x: F.multi_margin_loss(x, TARGET, margin=2.0),
                          lambda x: torch_functional("multi_margin_loss")(x, torch_tensor(TARGET), margin=2.0),
                          [(3, 4)]),
    "multi_margin_loss_squared_sum": (
        lambda x: F.multi_margin_loss(x, TARGET, p=2, reduction="sum"),
        lambda x: torch_functional("multi_margin_loss")(x, torch_tensor(TARGET), p=2, reduction="sum"),
        [(3, 4)]),
    "mse_loss": (F.mse_loss, torch_functional("mse_loss"), [(3, 4), (3, 4)]),
    "l1_loss_sum": (lambda x, y: F.l1_loss(x, y, reduction="sum"),
                    lambda x, y: torch_functional("l1_loss")(x, y, reduction="sum"), [(3, 4), (3, 4)]),
    # class probabilities as target: the target gets its gradient too
    "cross_entropy_probabilities": (F.cross_entropy, torch_functional("cross_entropy"), [(3, 4), (3, 4)]),
    "cross_entropy_spatial_probabilities_weights_sum": (
        lambda x, t: F.cross_entropy(x, t, weight=CLASS_WEIGHTS[:3], reduction="sum"),
        lambda x, t: torch_functional("cross_entropy")(x, t, weight=torch_tensor(CLASS_WEIGHTS[:3]), reduction="sum"),
        [(2, 3, 2, 2), (2, 3, 2, 2)]),
    "cross_entropy_class_weights_ignore_index": (
        lambda x: F.cross_entropy(x, SPATIAL_TARGET, weight=CLASS_WEIGHTS[:3]),
        lambda x: torch_functional("cross_entropy")(x, torch_tensor(SPATIAL_TARGET),
                                                    weight=torch_tensor(CLASS_WEIGHTS[:3])),
        [(2, 3, 2, 2)]),
    "cross_entropy_class_weights_none": (
        lambda x: F.cross_entropy(x, TARGET, weight=CLASS_WEIGHTS, reduction="none"),
        lambda x: torch_functional("cross_entropy")(x, torch_tensor(TARGET), weight=torch_tensor(CLASS_WEIGHTS),
                                                    reduction="none"), [(3, 4)]),
    "multi_margin_loss_class_weights": (
        lambda x: F.multi_margin_loss(x, TARGET, weight=CLASS_WEIGHTS),
        lambda x: torch_functional("multi_margin_loss")(x, torch_tensor(TARGET), weight=torch_tensor(CLASS_WEIGHTS)),
        [(3, 4)]),
    # one sample, as PyTorch takes it: input (C,) with target () or (1,)
    "multi_margin_loss_one_sample": (lambda x: F.multi_margin_loss(x, np.array(2), reduction="none"),
                                     lambda x: torch_functional("multi_margin_loss")(x, torch_tensor(np.array(2)),
                                                                                     reduction="none"), [(4,)]),
    "multi_margin_loss_one_sample_1d_target": (
        lambda x: F.multi_margin_loss(x, np.array([1]), p=2),
        lambda x: torch_functional("multi_margin_loss")(x, torch_tensor(np.array([1])), p=2), [(4,)]),
    "smooth_l1_loss_beta_0_is_l1": (lambda x, y: F.smooth_l1_loss(x, y, beta=0),
                                    lambda x, y: torch_functional("smooth_l1_loss")(x, y, beta=0), [(3, 4), (3, 4)]),
    # the target is differentiable too (PyTorch's gradient: -input)
    "binary_cross_entropy_with_logits": (F.binary_cross_entropy_with_logits,
                                         torch_functional("binary_cross_entropy_with_logits"), [(3, 4), (3, 4)]),
    "binary_cross_entropy_with_logits_weights": (
        lambda x, t: F.binary_cross_entropy_with_logits(x, t, weight=CLASS_WEIGHTS,
                                                        pos_weight=CLASS_WEIGHTS[::-1] ** 2),
        lambda x, t: torch_functional("binary_cross_entropy_with_logits")(
            x, t, weight=torch_tensor(CLASS_WEIGHTS), pos_weight=torch_tensor(CLASS_WEIGHTS[::-1] ** 2)),
        [(3, 4), (3, 4)]),
    "binary_cross_entropy_with_logits_row_weights_sum": (
        lambda x, t: F.binary_cross_entropy_with_logits(x, t, np.array([[1.0], [0.5], [2.0]]), "sum"),
        lambda x, t: torch_functional("binary_cross_entropy_with_logits")(
            x, t, torch_tensor(np.array([[1.0], [0.5], [2.0]])), reduction="sum"),
        [(3, 4), (3, 4)]),
    "embedding": (lambda w: F.embedding(TARGET, w),
                  lambda w: torch_functional("embedding")(torch_tensor(TARGET), w), [(5, 2)]),
}

test_gradcheck = gradcheck_test(CASES)
test_matches_torch = torch_test(CASES)


@pytest.mark.parametrize("op", [F.softmax, F.log_softmax])
@pytest.mark.parametrize("shape, dim", [((5, 0, 0), -1), ((5, 0), 1), ((0, 3), 1)])
def test_softmax_of_an_empty_array_is_empty(op, shape, dim):
    x = Tensor(np.zeros(shape, np.float32), requires_grad=True)
    y = op(x, dim)
    assert y.shape == shape and y.numpy().dtype == np.float32
    y.sum().backward()
    assert x.grad.shape == shape


def test_elu_gradient_at_nan_is_nan():
    # PyTorch's vectorised elu_backward gives NaN; its scalar loop (tensors under 16 elements) gives 1
    x = Tensor(np.array([np.nan, 1.0, -1.0]), requires_grad=True)
    F.elu(x).sum().backward()
    assert np.isnan(x.grad.numpy()[0]) and np.isfinite(x.grad.numpy()[1:]).all()


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "sigmoid", "tanh"])
def test_activation_gradients_at_nan_and_infinities_as_torch(torch, name):
    # PyTorch's backward formulas test x <= 0 (relu) or x > 0 (leaky_relu): a NaN input takes the
    # branch that comparison leaves it, not always the zero one
    values = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.5, -1.5])
    ours = Tensor(values.copy(), requires_grad=True)
    getattr(F, name)(ours).sum().backward()
    theirs = torch.tensor(values, requires_grad=True)
    getattr(torch.nn.functional, name)(theirs).sum().backward()
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-12, atol=0)  # NaN where torch's is


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_dtype_casts_the_input_first(rng, torch, name):
    x = rng.standard_normal((3, 5)).astype(np.float32)
    ours_x = Tensor(x, requires_grad=True)
    ours = getattr(F, name)(ours_x, 1, dtype=np.float64)
    theirs_x = torch.tensor(x, requires_grad=True)
    theirs = getattr(torch.nn.functional, name)(theirs_x, 1, dtype=torch.float64)
    assert ours.numpy().dtype == np.float64
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-12)
    weights = rng.standard_normal((3, 5))
    (ours * weights).sum().backward()
    theirs.backward(torch.tensor(weights))
    assert ours_x.grad.numpy().dtype == np.float32
    np.testing.assert_allclose(ours_x.grad.numpy(), theirs_x.grad.numpy(), rtol=1e-6)
    with pytest.raises(TypeError, match="dtype: expected a float dtype, got int64"):
        getattr(F, name)(ours_x, 1, dtype=np.int64)


def test_multi_margin_loss_refuses_what_pytorch_refuses():
    with pytest.raises(ValueError, match=r"input of shape \(5, 0\) has no classes"):
        F.multi_margin_loss(Tensor(np.zeros((5, 0))), np.zeros(5, np.int64))
    with pytest.raises(ValueError, match=r"input of shape \(4,\) and target of shape \(2,\) do not match"):
        F.multi_margin_loss(Tensor(np.zeros(4)), np.zeros(2, np.int64))
    with pytest.raises(TypeError, match="target must hold class indices, got dtype float64"):
        F.multi_margin_loss(Tensor(np.zeros((5, 4))), np.zeros(5))
    with pytest.raises(ValueError, match=r"^reduction: expected 'mean', 'sum' or 'none', got 'abc'"):
        F.multi_margin_loss(Tensor(np.zeros((5, 4))), np.zeros(5), reduction="abc")
    with pytest.raises(ValueError, match=r"weight must be one-dimensional, got shape \(5, 4\)"):
        F.multi_margin_loss(Tensor(np.zeros((5, 4))), np.zeros(5, np.int64), weight=np.ones((5, 4)))
    with pytest.raises(ValueError, match=r"weight of shape \(5,\) does not match the input's 4 classes"):
        F.multi_margin_loss(Tensor(np.zeros((5, 4))), np.zeros(5, np.int64), weight=np.ones(5))


def test_cross_entropy_refuses_a_weight_that_is_not_one_per_class():
    with pytest.raises(ValueError, match=r"weight must hold one value per class, shape \(3,\), got shape \(4,\)"):
        F.cross_entropy(Tensor(np.zeros((2, 3))), np.zeros(2, np.int64), weight=np.ones(4))


def test_binary_cross_entropy_weights_must_broadcast_to_the_input():
    x = Tensor(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"pos_weight of shape \(3,\) does not broadcast to input's shape \(3, 4\)"):
        F.binary_cross_entropy_with_logits(x, np.zeros((3, 4)), pos_weight=np.ones(3))
    with pytest.raises(TypeError, match=r"weight must be a float array, got dtype <U4"):
        F.binary_cross_entropy_with_logits(x, np.zeros((3, 4)), "none")


def test_cross_entropy_class_probabilities_must_have_the_input_shape():
    with pytest.raises(ValueError, match=r"a float target holds class probabilities of input's shape \(2, 3\), "
                                         r"got shape \(2,\)"):
        F.cross_entropy(Tensor(np.zeros((2, 3))), np.zeros(2))


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
    with pytest.raises(TypeError, match="target must hold class indices or class probabilities, got dtype bool"):
        F.cross_entropy(x, np.zeros(3, bool))
    with pytest.raises(ValueError, match=r"target values must be in \[0, 4\)"):
        F.cross_entropy(x, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(x, TARGET, reduction="average")
    with pytest.raises(ValueError, match=r"\(3, 4\) and target of shape \(4, 3\)"):
        F.mse_loss(x, np.zeros((4, 3)))


def test_layer_argument_errors():
    with pytest.raises(ValueError, match=r"input of shape \(2, 3\) does not match weight of shape \(4, 5\)"):
        F.linear(Tensor(np.zeros((2, 3))), Tensor(np.zeros((4, 5))))
    with pytest.raises(TypeError, match="integer indices"):
        F.embedding(np.array([0.0]), Tensor(np.zeros((2, 2))))
    for weight_shape in [(), (2, 2, 1)]:
        with pytest.raises(ValueError, match=r"weight must be 2-d \(num_embeddings, embedding_dim\)"):
            F.embedding(np.array([0]), Tensor(np.zeros(weight_shape)))


def test_functional_exports_every_op_and_its_function():
    ops = {"conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "batch_norm",
           "roi_pool", "roi_align", "grid_sample", "affine_grid", "interpolate", "linear", "embedding",
           "relu", "sigmoid", "tanh", "leaky_relu", "elu", "softmax", "log_softmax", "dropout",
           "cross_entropy", "multi_margin_loss", "mse_loss", "l1_loss", "binary_cross_entropy_with_logits",
           "smooth_l1_loss", "lstm_cell"}
    functions = {"Conv2d", "ConvTranspose2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "BatchNorm",
                 "RoIPool", "RoIAlign", "GridSample", "AffineGrid", "Interpolate", "Linear", "LeakyReLU", "ELU",
                 "Softmax", "LogSoftmax", "Dropout", "CrossEntropy", "LSTMCell"}
    assert set(F.__all__) == ops | functions
    # the families `linear` and `dropout` are modules of the package: the names must stay the ops
    assert all(callable(getattr(F, name)) for name in F.__all__)
    assert all(issubclass(getattr(F, name), fastconv.autograd.Function) for name in functions)
