"""The threaded whole-array operations (csrc/core/elementwise.h) and the backend helpers that
call them for large host arrays: a copy between strided views, a fill, an in-place sum."""
import numpy as np
import pytest

import fastconv
from fastconv import _C, backend

DTYPES = [np.float32, np.float64]


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def threads(request):
    previous = fastconv.get_num_threads()
    fastconv.set_num_threads(request.param)
    yield request.param
    fastconv.set_num_threads(previous)


# Large enough (2 MB in float32) that both threads take rows.
SHAPE = (4, 6, 130, 129)


def _views(rng, dtype):
    """(what, source view, destination view): one shape, the strides the models make."""
    x = rng.standard_normal(SHAPE).astype(dtype)
    out = np.full((4, 10, 65, 65), np.nan, dtype)
    yield "subsampled into a channel slice", x[:, :, ::2, ::2], out[:, 2:8]
    grad = np.full(SHAPE, np.nan, dtype)
    yield "a slice scattered into every other pixel", out[:, 2:8], grad[:, :, ::2, ::2]
    yield "reversed rows and columns", x[:, :, ::-1, ::-1], np.empty_like(x)
    yield "NCHW into channels_last", x, np.empty((4, 130, 129, 6), dtype).transpose(0, 3, 1, 2)
    yield "contiguous", x, np.empty_like(x)
    yield "2-d", x[0, 0], np.empty((130, 129), dtype)
    yield "1-d strided", x[0, 0, 0, ::3], np.empty(43, dtype)[::-1]
    yield "empty", x[:, :0], np.empty((4, 0, 130, 129), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_copy_view_copies_every_value_of_any_strides(rng, dtype, threads):
    for what, src, dst in _views(rng, dtype):
        _C.copy_view(src, dst)
        np.testing.assert_array_equal(dst, src, err_msg=what)
        if what.startswith("subsampled"):  # the channels outside the slice are as they were
            assert np.isnan(dst.base[:, :2]).all() and np.isnan(dst.base[:, 8:]).all()
        if what.startswith("a slice scattered"):
            assert np.isnan(dst.base[:, :, 1::2]).all() and np.isnan(dst.base[:, :, :, 1::2]).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_fill_writes_every_value_of_a_view_and_nothing_else(rng, dtype, threads):
    a = rng.standard_normal(SHAPE).astype(dtype)
    before = a.copy()
    _C.fill(a[:, 1:5, ::2, 1::3], -2.5)
    expected = before.copy()
    expected[:, 1:5, ::2, 1::3] = -2.5
    np.testing.assert_array_equal(a, expected)
    _C.fill(a, float("nan"))
    assert np.isnan(a).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_add_into_sums_dense_arrays_of_either_layout(rng, dtype, threads):
    for shape in [SHAPE, (1000,), (7, 300)]:
        a = rng.standard_normal(shape).astype(dtype)
        b = rng.standard_normal(shape).astype(dtype)
        b[..., 0] = np.inf
        a.reshape(-1)[1] = np.nan
        expected = a + b  # float addition of the same pairs: the same bits
        _C.add_into(a, b)
        np.testing.assert_array_equal(a, expected)
    cl = rng.standard_normal((4, 130, 129, 6)).astype(dtype).transpose(0, 3, 1, 2)
    other = rng.standard_normal((4, 130, 129, 6)).astype(dtype).transpose(0, 3, 1, 2)
    expected = cl + other
    _C.add_into(cl, other)
    np.testing.assert_array_equal(cl, expected)
    doubled = other * 2
    _C.add_into(other, other)  # the same array on both sides: each value doubled
    np.testing.assert_array_equal(other, doubled)


def test_the_operations_refuse_what_they_cannot_do_naming_the_argument():
    f32 = np.zeros((2, 3, 4, 5), np.float32)
    with pytest.raises(ValueError, match="src: expected dst's shape"):
        _C.copy_view(np.zeros((2, 3, 4, 6), np.float32), f32)
    with pytest.raises(TypeError, match="src: expected float32"):
        _C.copy_view(np.zeros((2, 3, 4, 5)), f32)
    with pytest.raises(TypeError, match="dst: expected a float32 or float64 array"):
        _C.copy_view(np.zeros(3, np.int64), np.zeros(3, np.int64))
    with pytest.raises(ValueError, match="at most 4 dims"):
        _C.copy_view(np.zeros((1, 2, 3, 4, 5)), np.zeros((1, 2, 3, 4, 5)))
    frozen = np.zeros((2, 3, 4, 5), np.float32)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="dst: array is read-only"):
        _C.copy_view(f32, frozen)
    with pytest.raises(ValueError, match="dst: array is read-only"):
        _C.fill(frozen, 0.0)
    with pytest.raises(ValueError, match="src: must not share memory with dst"):
        _C.copy_view(f32[:, :, 1:], f32[:, :, :3])
    with pytest.raises(ValueError, match="src: expected dst's strides"):
        _C.add_into(f32, np.zeros((2, 3, 5, 4), np.float32).transpose(0, 1, 3, 2))
    with pytest.raises(ValueError, match="dst: expected an array whose elements fill its memory"):
        _C.add_into(f32[:, :, ::2], np.zeros((2, 3, 4, 5), np.float32)[:, :, ::2])
    with pytest.raises(ValueError, match="src: must be dst itself or share no memory"):
        flat = np.zeros(10, np.float32)
        _C.add_into(flat[:6], flat[2:8])
    # Interleaved views do not overlap in values, but their bytes span each other's: refused too,
    # as numpy's own may_share_memory would flag them.
    with pytest.raises(ValueError, match="must not share memory"):
        _C.copy_view(f32[:, :, :, ::2][..., :2], f32[:, :, :, 1::2])


@pytest.mark.parametrize("dtype", DTYPES)
def test_backend_helpers_agree_with_numpy_above_and_below_the_threaded_size(rng, dtype, monkeypatch):
    for threshold in (0, 1 << 40):  # every array threaded, none
        monkeypatch.setattr(backend, "_THREADED_BYTES", threshold)
        x = rng.standard_normal((2, 4, 10, 10)).astype(dtype)
        out = np.full((2, 8, 5, 5), np.nan, dtype)
        backend.copy_into(out[:, 2:6], x[:, :, ::2, ::2])
        np.testing.assert_array_equal(out[:, 2:6], x[:, :, ::2, ::2])
        assert np.isnan(out[:, :2]).all()
        z = backend.zeros((3, 4, 5), dtype)
        assert z.dtype == dtype and not z.any()
        a, b = x.copy(), rng.standard_normal(x.shape).astype(dtype)
        expected = a + b
        backend.add_into(a, b)
        np.testing.assert_array_equal(a, expected)
        ints = np.arange(6).reshape(2, 3)
        backend.add_into(ints, ints)  # not a float array: numpy's add
        np.testing.assert_array_equal(ints, 2 * np.arange(6).reshape(2, 3))
