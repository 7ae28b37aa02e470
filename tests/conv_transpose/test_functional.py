"""functional.conv_transpose2d: gradcheck in float64 and PyTorch as the oracle for the forward
and every gradient; then its argument rules."""
import numpy as np
import pytest

import fastconv.functional as F
from fastconv import Tensor
from tests.functional_cases import gradcheck_test, torch_functional, torch_test

# name: (ours, torch's, input shapes)
CASES = {
    "conv_transpose2d": (lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
                         lambda x, w, b: torch_functional("conv_transpose2d")(x, w, b, stride=2, padding=1,
                                                                              output_padding=1),
                         [(2, 2, 3, 4), (2, 3, 3, 3), (3,)]),
    "conv_transpose2d_groups_dilation": (
        lambda x, w: F.conv_transpose2d(x, w, groups=2, dilation=2, padding=1),
        lambda x, w: torch_functional("conv_transpose2d")(x, w, groups=2, dilation=2, padding=1),
        [(1, 4, 3, 3), (4, 1, 2, 3)]),
}

test_gradcheck = gradcheck_test(CASES)
test_matches_torch = torch_test(CASES)


def test_conv_transpose_argument_errors():
    x = Tensor(np.zeros((1, 2, 4, 4)))
    with pytest.raises(ValueError, match="output_padding"):
        F.conv_transpose2d(x, Tensor(np.zeros((2, 1, 3, 3))), output_padding=1)
