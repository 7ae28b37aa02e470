"""functional.conv_transpose2d: gradcheck in float64 and PyTorch as the oracle for the forward
and every gradient; then its argument rules."""
import numpy as np
import pytest

import fastconv.functional as F
from fastconv import Tensor
from tests.functional_cases import (algorithm_choices_made_by, gradcheck_test, pinned_algorithm_test, torch_functional,
                                    torch_test)

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


test_a_pinned_algorithm_matches_auto = pinned_algorithm_test(F.conv_transpose2d, [(2, 4, 9, 11), (4, 5, 3, 3), (5,)])


def test_algo_reaches_the_kernels_of_the_forward_and_both_gradients(rng):
    # a geometry no other test uses: 'auto' chooses for it once per kernel, a pin never does
    x, w = rng.standard_normal((1, 3, 11, 6)), rng.standard_normal((3, 2, 3, 3))

    def run(algo):
        inputs = [Tensor(a, requires_grad=True) for a in (x, w)]
        F.conv_transpose2d(*inputs, algo=algo).sum().backward()

    assert not algorithm_choices_made_by(lambda: run("im2col"))
    # its forward runs conv2d's input-gradient kernel or subpixel, its gradients conv2d's forward
    # and weight kernels (or subpixel's weight gradient)
    directions = {key[-1] for key in algorithm_choices_made_by(lambda: run("auto"))}
    assert directions == {"input+subpixel", "forward", "weight", "transposed backward"}
    assert not algorithm_choices_made_by(lambda: run("subpixel"))
    with pytest.raises(ValueError, match="algo: expected 'auto', 'winograd' or one of"):
        run("fastest")
