"""functional max, average and adaptive average pooling: gradcheck in float64 and PyTorch as the
oracle for the forward and every gradient; then the argument rules."""
import numpy as np
import pytest

import fastconv.functional as F
from fastconv import Tensor
from tests.functional_cases import gradcheck_test, torch_functional, torch_test

# name: (ours, torch's, input shapes)
CASES = {
    "max_pool2d": (lambda x: F.max_pool2d(x, 2), lambda x: torch_functional("max_pool2d")(x, 2), [(1, 2, 4, 6)]),
    "max_pool2d_padding_dilation": (lambda x: F.max_pool2d(x, 3, 2, padding=1, dilation=2),
                                    lambda x: torch_functional("max_pool2d")(x, 3, 2, padding=1, dilation=2),
                                    [(2, 1, 7, 6)]),
    "avg_pool2d": (lambda x: F.avg_pool2d(x, 3, 2, padding=1),
                   lambda x: torch_functional("avg_pool2d")(x, 3, 2, padding=1), [(1, 2, 5, 6)]),
    "avg_pool2d_exclude_pad": (lambda x: F.avg_pool2d(x, 2, 1, padding=1, count_include_pad=False),
                               lambda x: torch_functional("avg_pool2d")(x, 2, 1, padding=1, count_include_pad=False),
                               [(1, 2, 4, 3)]),
    "adaptive_avg_pool2d": (lambda x: F.adaptive_avg_pool2d(x, (3, 2)),
                            lambda x: torch_functional("adaptive_avg_pool2d")(x, (3, 2)), [(1, 2, 7, 5)]),
    "global_avg_pool": (lambda x: F.adaptive_avg_pool2d(x, 1),
                        lambda x: torch_functional("adaptive_avg_pool2d")(x, 1), [(2, 3, 4, 4)]),
}

test_gradcheck = gradcheck_test(CASES)
test_matches_torch = torch_test(CASES)


def test_pool_argument_errors():
    with pytest.raises(ValueError, match="at most half the kernel size"):
        F.max_pool2d(Tensor(np.zeros((1, 1, 4, 4))), 2, padding=2)
    with pytest.raises(ValueError, match=r"input: expected a 4-d array \(N, C, H, W\)"):
        F.avg_pool2d(Tensor(np.zeros((4, 4))), 2)
    assert F.avg_pool2d(Tensor(np.zeros((1, 4, 4))), 2).shape == (1, 2, 2)  # unbatched, as in torch
