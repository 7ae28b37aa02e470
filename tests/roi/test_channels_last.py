"""roi_align and roi_pool over a channels_last feature map (NCHW axes over NHWC memory, torch's
channels_last): the NCHW call's values and gradients. The pooled boxes come back NCHW, as
torchvision's kernels give them; the feature map's .grad takes its layout (torch's rule for .grad)."""
import numpy as np
import pytest

import fastconv.functional as F
from fastconv import Tensor, ops
from fastconv.autograd import gradcheck
from fastconv.ops._checks import is_channels_last
from tests.reference import random_boxes

ROIS = random_boxes(np.random.default_rng(5), 2, 6, 7, 8, scale=0.5)

LAYERS = {
    "roi_align": lambda x: F.roi_align(x, ROIS.astype(x.dtype), (2, 3), 0.5, 2),
    "roi_align_aligned_adaptive": lambda x: F.roi_align(x, ROIS.astype(x.dtype), 2, 0.5, -1, aligned=True),
    "roi_pool": lambda x: F.roi_pool(x, ROIS.astype(x.dtype), (2, 3), 0.5),
}


def channels_last(x):
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def run(layer, x):
    t = Tensor(x, requires_grad=True)
    y = layer(t)
    y.backward(np.random.default_rng(0).standard_normal(y.shape))  # the same for both calls
    return y.data, t.grad.data


@pytest.mark.parametrize("name", LAYERS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_roi_ops_on_channels_last_features(rng, name, dtype):
    x = rng.standard_normal((2, 5, 6, 7)).astype(dtype)
    expected_y, expected_dx = run(LAYERS[name], x)
    y, dx = run(LAYERS[name], channels_last(x))
    assert y.flags.c_contiguous  # the pooled boxes, NCHW as torchvision's
    assert is_channels_last(dx)
    np.testing.assert_array_equal(y, expected_y)
    np.testing.assert_array_equal(dx, expected_dx)


def test_roi_ops_gradcheck_on_channels_last_features(one_thread, rng):
    for layer in LAYERS.values():
        x = Tensor(channels_last(rng.standard_normal((2, 3, 6, 7))), requires_grad=True)
        assert gradcheck(layer, [x])
        assert is_channels_last(x.data)


def test_roi_pool_argmax_indexes_the_nchw_input(rng):
    # argmax is the flat NCHW index whatever the features' memory: the backward reads it so
    x = rng.standard_normal((2, 3, 6, 7))
    _, argmax = ops.roi_pool(channels_last(x), ROIS, 2, 0.5)
    _, expected = ops.roi_pool(x, ROIS, 2, 0.5)
    np.testing.assert_array_equal(argmax, expected)
