"""conv_transpose2d against torch.nn.functional.conv_transpose2d where fastconv once differed:
one-element tuples, and integers beyond int64 or any output that fits in memory."""
import numpy as np
import pytest

import fastconv.functional as F
from fastconv import ops
from tests.oracle import compare_with_torch


@pytest.mark.parametrize("kwargs", [dict(stride=(2,)), dict(padding=(1,)), dict(dilation=(2,)),
                                    dict(stride=2, output_padding=(1,))])
def test_conv_transpose2d_one_element_tuples_match_torch(torch, kwargs):
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((1, 2, 4, 5)), rng.standard_normal((2, 3, 3, 3))
    compare_with_torch(torch, lambda a, b: F.conv_transpose2d(a, b, **kwargs),
                       lambda a, b: torch.nn.functional.conv_transpose2d(a, b, **kwargs), [x, w])


@pytest.mark.parametrize("name", ["stride", "padding", "output_padding", "dilation", "groups"])
@pytest.mark.parametrize("value", [2**63, -2**63 - 1])
def test_conv_transpose2d_huge_integer_raises_naming_argument(name, value):
    x, w = np.zeros((1, 2, 5, 5)), np.zeros((2, 2, 3, 3))
    with pytest.raises(ValueError, match=rf"^{name}: expected values of magnitude at most 2\*\*63 - 1"):
        ops.conv_transpose2d(x, w, **{name: value})


def test_conv_transpose2d_unbatched_input_matches_torch(torch):
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((2, 4, 5)), rng.standard_normal((2, 3, 3, 3)), rng.standard_normal(3)
    compare_with_torch(torch, lambda a, c, d: F.conv_transpose2d(a, c, d, stride=2),
                       lambda a, c, d: torch.nn.functional.conv_transpose2d(a, c, d, stride=2), [x, w, b])
