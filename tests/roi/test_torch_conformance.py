"""roi_align and roi_pool: integers beyond int64 or any output that fits in memory are refused
naming the argument before they reach the compiled kernels; NaN pixels read as torchvision reads
them."""
import numpy as np
import pytest

from fastconv import ops
from tests.reference import roi_align_reference

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


# Boxes (image, x1, y1, x2, y2) on 2 images of 9 x 11: one around the NaN pixel (0, 0) of image 0,
# two reaching more than a pixel past the plane's top-left corner (their outer samples read
# nothing), one far from every NaN pixel, one on image 1 around its NaN pixel (4, 6).
# Coordinates off the pixel grid, so that no sample lies exactly on a pixel boundary (where the
# reference's rounding and the kernel's could pick different pixels).
NAN_BOXES = np.array([[0, 0.1, 0.2, 3.3, 3.1], [0, -6.3, -5.1, 4.2, 3.3], [0, -9.1, -9.3, 2.1, 2.2],
                      [0, 5.1, 4.2, 10.3, 8.1], [1, 3.1, 2.2, 8.3, 7.1]], np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("aligned", [False, True])
def test_roi_align_nan_pixels_reach_only_the_bins_that_sample_them(isa, dtype, aligned):
    # torchvision's bilinear_interpolate: a sample more than a pixel outside the plane is 0 and
    # reads nothing, one inside reads its four corners (a NaN corner makes it NaN even at weight 0).
    x = np.random.default_rng(5).standard_normal((2, 10, 9, 11))
    x[0, :, 0, 0] = x[1, 3, 4, 6] = np.nan
    out = ops.roi_align(x.astype(dtype), NAN_BOXES.astype(dtype), (3, 4), sampling_ratio=2, aligned=aligned)
    expected = roi_align_reference(x, NAN_BOXES, (3, 4), sampling_ratio=2, aligned=aligned)
    assert np.isfinite(expected[1:3]).sum() > 0 and np.isnan(expected[1:3]).sum() > 0  # the case is exercised
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_roi_align_backward_sends_nothing_from_samples_outside_the_plane():
    # grad_out NaN on every bin of the box whose samples all lie outside: no pixel may receive it.
    boxes = np.array([[0, -20, -20, -12, -12], [0, 1, 1, 4, 4]], np.float64)
    grad_out = np.ones((2, 3, 2, 2))
    grad_out[0] = np.nan
    grad = ops.roi_align_backward(grad_out, boxes, (1, 3, 6, 6), sampling_ratio=2)
    expected = ops.roi_align_backward(grad_out[1:], boxes[1:], (1, 3, 6, 6), sampling_ratio=2)
    np.testing.assert_array_equal(grad, expected)
