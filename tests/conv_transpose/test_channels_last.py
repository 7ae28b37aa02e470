"""conv_transpose2d over a channels_last input (NCHW axes over NHWC memory, torch's
channels_last): its kernels are NCHW, so the input is read through one copy, and the output and
grad_input come back in the input's layout, as torch's do, with the NCHW call's values."""
import numpy as np
import pytest

import fastconv.functional as F
from fastconv import Tensor, ops
from fastconv.ops import is_channels_last, to_channels_last

ARGS = dict(stride=2, padding=1, output_padding=1)


@pytest.mark.parametrize("algo", ["auto", "subpixel", "im2col"])
def test_channels_last_input_gives_channels_last_output_and_grad_input(rng, algo):
    x, w = rng.standard_normal((2, 8, 4, 3)), rng.standard_normal((8, 3, 3, 3))
    y = ops.conv_transpose2d(x, w, **ARGS, algo=algo)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = ops.conv_transpose2d_backward(x, w, dy, **ARGS, algo=algo)
    y_cl = ops.conv_transpose2d(to_channels_last(x), w, **ARGS, algo=algo)
    dx_cl, dw_cl, db_cl = ops.conv_transpose2d_backward(to_channels_last(x), w, to_channels_last(dy), **ARGS,
                                                        algo=algo)
    assert is_channels_last(y_cl) and is_channels_last(dx_cl) and dw_cl.flags.c_contiguous
    for ours, expected in ((y_cl, y), (dx_cl, dx), (dw_cl, dw), (db_cl, db)):
        np.testing.assert_array_equal(ours, expected)


def test_a_leaf_gradient_keeps_the_channels_last_layout(rng):
    x = Tensor(to_channels_last(rng.standard_normal((2, 8, 4, 3))), requires_grad=True)
    y = F.conv_transpose2d(x, Tensor(rng.standard_normal((8, 3, 3, 3))), **ARGS)
    y.sum().backward()
    assert is_channels_last(y.data) and is_channels_last(x.grad.data)
