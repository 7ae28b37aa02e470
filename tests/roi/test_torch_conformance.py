"""roi_align and roi_pool: integers beyond int64 or any output that fits in memory are refused
naming the argument before they reach the compiled kernels."""
import numpy as np
import pytest

from fastconv import ops

X = np.zeros((1, 2, 5, 5))
BOXES = np.array([[0, 0, 0, 2, 2.0]])


@pytest.mark.parametrize("op", [ops.roi_align, ops.roi_pool])
@pytest.mark.parametrize("value", [2**63, 2**40, (1, 2**64)])
def test_roi_huge_output_size_raises_naming_argument(op, value):
    with pytest.raises(ValueError, match=r"^output_size: "):
        op(X, BOXES, value)


def test_roi_align_huge_sampling_ratio_raises_naming_argument():
    with pytest.raises(ValueError, match=r"^sampling_ratio: expected values of magnitude"):
        ops.roi_align(X, BOXES, 2, sampling_ratio=2**63)


def test_roi_backward_huge_input_shape_raises_naming_argument():
    with pytest.raises(ValueError, match=r"^input_shape: expected 4 sizes"):
        ops.roi_align_backward(np.zeros((1, 2, 2, 2)), BOXES, (1, 2, 2**63, 5))
