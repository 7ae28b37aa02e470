"""Every op in fastconv.functional: gradcheck in float64 and PyTorch as the oracle for the
forward and every gradient; then the argument rules and error messages."""
import numpy as np
import pytest

import fastconv
import fastconv.functional as F
from fastconv import Tensor, gradcheck
from tests.oracle import compare_with_torch
from tests.reference import random_boxes, roi_align_reference, roi_pool_reference

TARGET = np.array([2, 0, 3])
SPATIAL_TARGET = np.array([[[1, 0], [-100, 2]], [[2, 2], [0, 1]]])
RUNNING_MEAN, RUNNING_VAR = np.array([0.1, -0.2, 0.3]), np.array([0.5, 1.5, 2.0])
# (K, 5) boxes on a (2, C, 6, 7) input at spatial_scale 0.5: inside, clipped, empty and inverted
ROIS = random_boxes(np.random.default_rng(5), 2, 6, 7, 8, scale=0.5)


def _dropout(x):
    fastconv.manual_seed(0)  # the same mask on every call, so differences are meaningful
    return F.dropout(x, 0.3)


# torch is imported only when a torch case runs: without torch the `torch` fixture skips those
# and the gradchecks still run.
def _torch_functional(name):
    return lambda *args, **kwargs: getattr(__import__("torch").nn.functional, name)(*args, **kwargs)


def _torch_tensor(array):
    return __import__("torch").tensor(array)


def _bn_add_relu_torch(x, w, b, z):
    torch = __import__("torch")
    return torch.relu(torch.nn.functional.batch_norm(x, None, None, w, b, training=True) + z)


# name: (ours, torch's or None, input shapes)
CASES = {
    "conv_transpose2d": (lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
                         lambda x, w, b: _torch_functional("conv_transpose2d")(x, w, b, stride=2, padding=1,
                                                                               output_padding=1),
                         [(2, 2, 3, 4), (2, 3, 3, 3), (3,)]),
    "conv_transpose2d_groups_dilation": (
        lambda x, w: F.conv_transpose2d(x, w, groups=2, dilation=2, padding=1),
        lambda x, w: _torch_functional("conv_transpose2d")(x, w, groups=2, dilation=2, padding=1),
        [(1, 4, 3, 3), (4, 1, 2, 3)]),
    "roi_align": (lambda x: F.roi_align(x, ROIS, (2, 3), 0.5, 2), None, [(2, 3, 6, 7)]),
    "roi_align_aligned_adaptive": (lambda x: F.roi_align(x, ROIS, 2, 0.5, -1, aligned=True), None, [(2, 3, 6, 7)]),
    "roi_align_box_list": (lambda x: F.roi_align(x, [ROIS[:3, 1:], ROIS[3:4, 1:]], (3, 2), 0.5), None,
                           [(2, 1, 6, 7)]),
    "roi_pool": (lambda x: F.roi_pool(x, ROIS, (2, 3), 0.5), None, [(2, 3, 6, 7)]),
    "grid_sample": (F.grid_sample,  # align_corners=None is False in both; torch warns unless it is given
                    lambda x, g: _torch_functional("grid_sample")(x, g, align_corners=False),
                    [(2, 2, 4, 5), (2, 3, 2, 2)]),
    "grid_sample_border_align_corners": (
        lambda x, g: F.grid_sample(x, g, padding_mode="border", align_corners=True),
        lambda x, g: _torch_functional("grid_sample")(x, g, padding_mode="border", align_corners=True),
        [(1, 2, 4, 5), (1, 3, 4, 2)]),
    "grid_sample_reflection": (
        lambda x, g: F.grid_sample(x, g, padding_mode="reflection"),
        lambda x, g: _torch_functional("grid_sample")(x, g, padding_mode="reflection", align_corners=False),
        [(1, 2, 4, 5), (1, 3, 4, 2)]),
    "grid_sample_nearest": (
        lambda x, g: F.grid_sample(x, g, mode="nearest"),
        lambda x, g: _torch_functional("grid_sample")(x, g, mode="nearest", align_corners=False),
        [(1, 2, 4, 5), (1, 3, 4, 2)]),
    "affine_grid": (lambda t: F.affine_grid(t, (2, 3, 4, 5)),
                    lambda t: _torch_functional("affine_grid")(t, (2, 3, 4, 5), align_corners=False), [(2, 2, 3)]),
    "affine_grid_align_corners": (lambda t: F.affine_grid(t, (1, 1, 3, 2), align_corners=True),
                                  lambda t: _torch_functional("affine_grid")(t, (1, 1, 3, 2), align_corners=True),
                                  [(1, 2, 3)]),
    "interpolate_bilinear_scale": (
        lambda x: F.interpolate(x, scale_factor=1.7, mode="bilinear"),
        lambda x: _torch_functional("interpolate")(x, scale_factor=1.7, mode="bilinear"), [(2, 2, 3, 4)]),
    "interpolate_bilinear_align_corners_size": (
        lambda x: F.interpolate(x, size=(5, 3), mode="bilinear", align_corners=True),
        lambda x: _torch_functional("interpolate")(x, size=(5, 3), mode="bilinear", align_corners=True),
        [(1, 2, 3, 4)]),
    "interpolate_nearest": (lambda x: F.interpolate(x, scale_factor=(2, 1.5)),
                            lambda x: _torch_functional("interpolate")(x, scale_factor=(2, 1.5)), [(1, 2, 3, 4)]),
    "interpolate_nearest_downsample_size": (lambda x: F.interpolate(x, size=(2, 3)),
                                            lambda x: _torch_functional("interpolate")(x, size=(2, 3)),
                                            [(1, 2, 5, 7)]),
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
    "batch_norm_add_relu_train": (lambda x, w, b, z: F.batch_norm(x, None, None, w, b, True, residual=z, relu=True),
                                  _bn_add_relu_torch, [(4, 3, 2, 2), (3,), (3,), (4, 3, 2, 2)]),
    "batch_norm_relu_eval": (
        lambda x, w, b: F.batch_norm(x, RUNNING_MEAN, RUNNING_VAR, w, b, relu=True),
        lambda x, w, b: _torch_functional("relu")(_torch_functional("batch_norm")(
            x, _torch_tensor(RUNNING_MEAN), _torch_tensor(RUNNING_VAR), w, b)),
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


@pytest.mark.parametrize("aligned", [False, True])
def test_roi_align_matches_reference(rng, aligned):
    # torchvision is not a test dependency: the naive reference defines the forward, the
    # gradchecks above the backward
    x = rng.standard_normal((2, 3, 6, 7))
    out = F.roi_align(Tensor(x), ROIS, (3, 2), 0.5, -1, aligned).numpy()
    np.testing.assert_allclose(out, roi_align_reference(x, ROIS, (3, 2), 0.5, -1, aligned), rtol=1e-12, atol=1e-12)


def test_roi_pool_matches_reference_and_boxes_get_no_gradient(rng):
    x = Tensor(rng.standard_normal((2, 3, 6, 7)), requires_grad=True)
    boxes = Tensor(ROIS.copy(), requires_grad=True)
    out = F.roi_pool(x, boxes, (2, 3), 0.5)
    expected, argmax = roi_pool_reference(x.numpy(), ROIS, (2, 3), 0.5)
    np.testing.assert_array_equal(out.numpy(), expected)
    out.sum().backward()
    assert boxes.grad is None
    hits = np.bincount(argmax[argmax >= 0], minlength=x.data.size).reshape(x.shape)  # each bin's max gets 1
    np.testing.assert_array_equal(x.grad.numpy(), hits)


def test_float32_sampling_ops_match_torch(rng, torch):
    def net(functional):
        def run(x, theta, w):
            grid = functional.affine_grid(theta, (2, 3, 5, 6), align_corners=False)
            sampled = functional.grid_sample(x, grid, align_corners=False)
            up = functional.interpolate(sampled, scale_factor=2, mode="bilinear", align_corners=False)
            return functional.conv_transpose2d(up, w, stride=2, padding=1)
        return run
    arrays = [rng.standard_normal(s).astype(np.float32) for s in [(2, 3, 4, 4), (2, 2, 3), (3, 2, 3, 3)]]
    compare_with_torch(torch, net(F), net(torch.nn.functional), arrays, rtol=1e-4, atol=1e-5)


def test_sampling_argument_errors():
    x = Tensor(np.zeros((1, 2, 4, 4)))
    with pytest.raises(ValueError, match=r"boxes: expected a \(K, 5\) array"):
        F.roi_align(x, np.zeros((3, 4)), 2)
    with pytest.raises(TypeError, match="boxes: dtype float32 does not match input's float64"):
        F.roi_pool(x, np.zeros((1, 5), np.float32), 2)
    with pytest.raises(ValueError, match="padding_mode"):
        F.grid_sample(x, np.zeros((1, 2, 2, 2)), padding_mode="wrap")
    with pytest.raises(ValueError, match="either size or scale_factor"):
        F.interpolate(x, size=3, scale_factor=2)
    with pytest.raises(ValueError, match="align_corners"):
        F.interpolate(x, size=3, align_corners=True)
    with pytest.raises(ValueError, match="output_padding"):
        F.conv_transpose2d(x, Tensor(np.zeros((2, 1, 3, 3))), output_padding=1)
    with pytest.raises(ValueError, match=r"residual of shape \(1, 2, 4, 3\) does not match"):
        F.batch_norm(x, None, None, training=True, residual=np.zeros((1, 2, 4, 3)))
