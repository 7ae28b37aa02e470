"""The compiled copy between NCHW and channels_last memory (csrc/core/layout.h), on every ISA."""
import numpy as np
import pytest

from fastconv import _C
from fastconv.backend import empty_channels_last, layout_copy
from fastconv.ops import is_channels_last, to_channels_last
from fastconv.ops._checks import contiguous

SHAPES = [(2, 3, 5, 7), (1, 17, 9, 13), (3, 8, 8, 8), (2, 40, 3, 11), (1, 1, 4, 4), (2, 5, 1, 1), (0, 4, 3, 3)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_copies_both_ways(isa, shape, dtype):
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    nhwc = empty_channels_last(shape, dtype)
    _C.copy_layout(x, nhwc)
    np.testing.assert_array_equal(nhwc, x)
    back = np.empty(shape, dtype)
    _C.copy_layout(nhwc, back)
    np.testing.assert_array_equal(back, x)
    assert np.array_equal(to_channels_last(x), x) and np.array_equal(contiguous(to_channels_last(x)), x)


def test_the_ops_helpers_give_each_layout():
    x = np.arange(2 * 6 * 4 * 5, dtype=np.float32).reshape(2, 6, 4, 5)
    cl = to_channels_last(x)
    assert is_channels_last(cl) and to_channels_last(cl) is cl
    assert contiguous(cl).flags.c_contiguous and np.array_equal(contiguous(cl), x)
    ints = layout_copy(x.astype(np.int64), channels_last=True)  # no compiled copy for ints: numpy's
    assert ints.transpose(0, 2, 3, 1).flags.c_contiguous and np.array_equal(ints, x)


def test_refuses_mismatched_arrays_naming_them():
    x = np.zeros((2, 3, 4, 5), np.float32)
    with pytest.raises(ValueError, match="dst: expected shape"):
        _C.copy_layout(x, empty_channels_last((2, 3, 4, 6), np.float32))
    with pytest.raises(TypeError, match="dst"):
        _C.copy_layout(x, empty_channels_last((2, 3, 4, 5), np.float64))
    with pytest.raises(ValueError, match="dst"):
        _C.copy_layout(x, np.zeros((2, 3, 5, 4), np.float32).transpose(0, 1, 3, 2))
