"""Tensors cross into numpy and other frameworks without copies: __array__ and DLPack."""
import numpy as np
import pytest

import fastconv
from fastconv import backend


def test_numpy_reads_a_tensor_as_its_values_without_a_copy():
    t = fastconv.tensor(np.arange(6, dtype=np.float32).reshape(2, 3), requires_grad=True)
    a = np.asarray(t)
    assert a.dtype == np.float32 and a.shape == (2, 3)
    assert np.shares_memory(a, t.data)
    assert np.asarray(t, dtype=np.float64).dtype == np.float64
    assert not np.shares_memory(np.array(t, copy=True), t.data)
    with pytest.raises(ValueError, match="without a copy"):
        t.__array__(np.float64, copy=False)


def test_from_dlpack_shares_numpy_memory():
    a = np.zeros((3, 4), np.float32)
    t = fastconv.from_dlpack(a, requires_grad=True)
    a[1, 2] = 7
    assert t.data[1, 2] == 7 and t.requires_grad and t.is_leaf


def test_torch_and_fastconv_share_memory_both_ways(torch):
    source = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    t = fastconv.from_dlpack(source)
    source[0, 0] = -1
    assert t.data[0, 0] == -1  # no copy on the way in
    back = torch.from_dlpack(t)
    t.data[2, 3] = 99
    assert back[2, 3].item() == 99  # nor on the way out
    y = (t * 2).sum()
    assert y.item() == pytest.approx(float((source * 2).sum()))


def test_from_dlpack_refuses_what_is_not_an_array():
    with pytest.raises(TypeError, match="from_dlpack: expected an array with __dlpack__"):
        backend.from_dlpack([1.0, 2.0])
