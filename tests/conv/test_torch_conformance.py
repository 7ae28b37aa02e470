"""conv2d against torch.nn.functional.conv2d where fastconv once differed: one-element tuples,
which torch takes as a pair, and integers beyond int64 or beyond any output that fits in memory,
which must be refused naming the argument before they reach the compiled kernels."""
import numpy as np
import pytest

import fastconv.functional as F
from fastconv import _C, ops
from fastconv.ops import conv_algo
from fastconv.ops.conv import conv2d_arguments
from tests.oracle import compare_with_torch

BIG = [2**63, -2**63 - 1]  # beyond int64; within it the C++ checks the geometry (test_hostile_input.py)


@pytest.mark.parametrize("kwargs", [dict(stride=(2,)), dict(padding=(1,)), dict(dilation=(2,)),
                                    dict(stride=[2], padding=[1], dilation=[1])])
def test_conv2d_one_element_tuples_match_torch(torch, kwargs):
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((1, 2, 6, 6)), rng.standard_normal((3, 2, 3, 3))
    compare_with_torch(torch, lambda a, b: F.conv2d(a, b, **kwargs),
                       lambda a, b: torch.nn.functional.conv2d(a, b, **kwargs), [x, w])


@pytest.mark.parametrize("name", ["stride", "padding", "dilation", "groups"])
@pytest.mark.parametrize("value", BIG)
def test_conv2d_huge_integer_raises_naming_argument(name, value):
    x, w = np.zeros((1, 2, 5, 5)), np.zeros((2, 2, 3, 3))
    with pytest.raises(ValueError, match=rf"^{name}: expected values of magnitude at most 2\*\*63 - 1"):
        ops.conv2d(x, w, **{name: value})
    if name != "groups":
        with pytest.raises(ValueError, match=rf"^{name}: expected values of magnitude"):
            ops.conv2d(x, w, **{name: (1, value)})


def test_conv2d_backward_huge_sizes_raise_naming_argument():
    with pytest.raises(ValueError, match=r"^input_size: expected 4 sizes"):
        ops.conv2d_input((1, 2, 2**63, 5), np.zeros((2, 2, 3, 3)), np.zeros((1, 2, 3, 3)))
    with pytest.raises(ValueError, match=r"^weight_size: expected 4 sizes"):
        ops.conv2d_weight(np.zeros((1, 2, 5, 5)), (2, 2, 3, 2**64), np.zeros((1, 2, 3, 3)))


def test_conv2d_unbatched_input_matches_torch(torch):
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((2, 6, 5)), rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3)
    compare_with_torch(torch, lambda a, c, d: F.conv2d(a, c, d, padding=1),
                       lambda a, c, d: torch.nn.functional.conv2d(a, c, d, padding=1), [x, w, b])


def test_conv2d_layer_unbatched_input_gives_3d_output():
    from fastconv import Tensor, nn
    assert nn.Conv2d(2, 4, 3)(Tensor(np.zeros((2, 5, 5), np.float32))).shape == (4, 3, 3)


@pytest.mark.parametrize("algo", conv_algo.algorithms())
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv2d_fused_relu_keeps_nan_as_torch_relu(torch, isa, algo, dtype):
    # A NaN bias makes its whole output channel NaN; relu(NaN) is NaN in PyTorch, so the fused
    # epilogue of every algorithm (and ISA) must not turn it into 0.
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((2, 4, 9, 9)), rng.standard_normal((8, 4, 3, 3)), rng.standard_normal(8)
    b[[1, 6]] = np.nan
    x, w, b = (a.astype(dtype) for a in (x, w, b))
    if _C.conv2d_unsupported_reason(algo, x.shape, w.shape, *conv2d_arguments(w.shape, 1, 1, 1, 1)) is not None:
        pytest.skip(f"{algo} does not run this shape")
    out = ops.conv2d(x, w, b, padding=1, algo=algo, relu=True)
    expected = torch.relu(torch.nn.functional.conv2d(*map(torch.tensor, (x, w, b)), padding=1)).numpy()
    assert np.isnan(out[:, [1, 6]]).all() and not np.isnan(out[:, [0, 2, 3, 4, 5, 7]]).any()
    np.testing.assert_allclose(out, expected, rtol=1e-3, atol=1e-3)
