"""functional.conv2d: gradcheck in float64 and PyTorch as the oracle for the forward and every
gradient."""
import numpy as np
import pytest

import fastconv.functional as F
from fastconv import Tensor
from tests.functional_cases import (algorithm_choices_made_by, gradcheck_test, pinned_algorithm_test, random_inputs,
                                    torch_functional, torch_test)
from tests.oracle import compare_with_torch

# name: (ours, torch's, input shapes)
CASES = {
    "conv2d": (lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1),
               lambda x, w, b: torch_functional("conv2d")(x, w, b, stride=2, padding=1),
               [(2, 2, 5, 5), (3, 2, 3, 3), (3,)]),
    "conv2d_groups_dilation": (lambda x, w: F.conv2d(x, w, groups=2, dilation=2, padding="same"),
                               lambda x, w: torch_functional("conv2d")(x, w, groups=2, dilation=2, padding="same"),
                               [(1, 4, 5, 5), (2, 2, 3, 3)]),
}

test_gradcheck = gradcheck_test(CASES)
test_matches_torch = torch_test(CASES)


def test_float32_conv_net_ops_match_torch(rng, torch):
    def net(functional):
        return lambda x, w, b, fc: functional.linear(functional.max_pool2d(functional.relu(
            functional.conv2d(x, w, b, padding=1)), 2).flatten(1), fc)
    arrays = [a.astype(np.float32) for a in random_inputs(rng, [(2, 3, 6, 6), (4, 3, 3, 3), (4,), (5, 36)])]
    compare_with_torch(torch, net(F), net(torch.nn.functional), arrays, rtol=1e-4, atol=1e-5)


test_a_pinned_algorithm_matches_auto = pinned_algorithm_test(F.conv2d, [(2, 4, 9, 11), (5, 4, 3, 3), (5,)])


def test_algo_reaches_the_kernels_of_the_forward_and_both_gradients(rng):
    # a geometry no other test uses: 'auto' chooses for it once per direction, a pin never does
    x, w = rng.standard_normal((1, 3, 13, 7)), rng.standard_normal((2, 3, 3, 3))

    def run(algo):
        inputs = [Tensor(a, requires_grad=True) for a in (x, w)]
        F.conv2d(*inputs, algo=algo).sum().backward()

    assert not algorithm_choices_made_by(lambda: run("im2col"))
    directions = {key[-1] for key in algorithm_choices_made_by(lambda: run("auto"))}
    assert directions == {"forward", "input", "weight"}
    with pytest.raises(ValueError, match="algo: expected 'auto', 'winograd' or one of"):
        run("fastest")
