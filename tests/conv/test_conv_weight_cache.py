"""Transformed conv2d weights (ops/conv_weight_cache.py): prepared weights and the implicit
cache give the same results as transforming on every call, and a weight changed in place is
never served stale."""
import numpy as np
import pytest

from fastconv import _C, ops
from fastconv.ops import conv_weight_cache
from fastconv.ops.conv import conv2d_arguments
from tests.reference import conv2d_reference

WINOGRAD = ["winograd_2x3", "winograd_4x3"]
TRANSFORMED = [*WINOGRAD, "fft"]


@pytest.fixture(autouse=True)
def fresh_cache():
    budget = conv_weight_cache.budget_bytes()
    conv_weight_cache.clear()
    yield
    conv_weight_cache.set_budget(budget)
    conv_weight_cache.clear()


def _uncached(fn):
    """fn() with the cache off: the kernels transform the weight on every call."""
    budget = conv_weight_cache.budget_bytes()
    conv_weight_cache.set_budget(0)
    try:
        return fn()
    finally:
        conv_weight_cache.set_budget(budget)


@pytest.mark.parametrize("algo", TRANSFORMED)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("groups", [1, 2])
def test_cached_and_prepared_paths_are_identical_to_uncached(rng, algo, dtype, groups):
    x = rng.standard_normal((2, 8, 9, 10)).astype(dtype)
    w = rng.standard_normal((6, 8 // groups, 3, 3)).astype(dtype)
    gy = rng.standard_normal((2, 6, 9, 10)).astype(dtype)
    args = dict(padding=1, groups=groups, algo=algo)
    y0 = _uncached(lambda: ops.conv2d(x, w, **args))
    dx0 = _uncached(lambda: ops.conv2d_input(x.shape, w, gy, **args))
    for _ in range(2):  # the first call fills the cache, the second reads it
        np.testing.assert_array_equal(ops.conv2d(x, w, **args), y0)
        np.testing.assert_array_equal(ops.conv2d_input(x.shape, w, gy, **args), dx0)
    assert conv_weight_cache.cached_bytes() > 0
    prepared = ops.prepare_conv_weight(w, groups=groups, algos=[algo])
    np.testing.assert_array_equal(ops.conv2d(x, prepared, **args), y0)
    dx, dw, _ = ops.conv2d_backward(x, prepared, gy, **args)
    np.testing.assert_array_equal(dx, dx0)
    np.testing.assert_array_equal(dw, ops.conv2d_weight(x, w.shape, gy, **args))


@pytest.mark.parametrize("algo", TRANSFORMED)
def test_a_weight_changed_in_place_is_transformed_again(rng, algo):
    x = rng.standard_normal((1, 4, 8, 8))
    w = rng.standard_normal((5, 4, 3, 3))
    gy = rng.standard_normal((1, 5, 8, 8))
    conv = lambda ww: conv2d_reference(x, ww, None, *conv2d_arguments(ww.shape, 1, 1, 1, 1))
    ops.conv2d(x, w, padding=1, algo=algo)
    ops.conv2d_input(x.shape, w, gy, padding=1, algo=algo)
    w -= 0.1 * rng.standard_normal(w.shape)  # an optimiser step: same array, same address
    np.testing.assert_allclose(ops.conv2d(x, w, padding=1, algo=algo), conv(w), rtol=1e-10, atol=1e-10)
    w[2, 1, 0, 2] += 1.0  # one value only
    np.testing.assert_allclose(ops.conv2d(x, w, padding=1, algo=algo), conv(w), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(ops.conv2d_input(x.shape, w, gy, padding=1, algo=algo),
                               ops.conv2d_input(x.shape, w, gy, padding=1, algo="im2col"), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("algo", TRANSFORMED)
def test_an_in_place_change_is_transformed_into_the_entrys_own_buffers(rng, algo):
    """An optimiser step changes the array in place: its entry takes the new bytes and writes the
    new transforms over the old ones' buffers (nothing allocated per step); they equal a new
    entry's, bit for bit."""
    x, gy = rng.standard_normal((2, 4, 12, 12)), rng.standard_normal((2, 5, 12, 12))
    w = rng.standard_normal((5, 4, 3, 3))

    def both():
        ops.conv2d(x, w, padding=1, algo=algo)
        ops.conv2d_input(x.shape, w, gy, padding=1, algo=algo)
        (entry,) = conv_weight_cache._entries.values()
        return entry

    entry = both()
    buffers = {key: u.__array_interface__["data"][0] for key, u in entry._transforms.items()}
    held = conv_weight_cache.cached_bytes()
    w *= -0.5
    assert both() is entry and conv_weight_cache.cached_bytes() == held
    assert {key: u.__array_interface__["data"][0] for key, u in entry._transforms.items()} == buffers
    np.testing.assert_array_equal(entry.weight, w)
    fresh = ops.PreparedWeight(w)
    for (name, use, _, tile), u in entry._transforms.items():
        np.testing.assert_array_equal(u, fresh.transformed(name, use, tile))


def test_fft_keeps_one_transform_per_tile_size(rng):
    """FFT's filter spectra are made at the tile size the input's size picks: two input sizes
    with different tiles each get their own, and each is right."""
    w = rng.standard_normal((4, 3, 5, 5))
    prepared = ops.prepare_conv_weight(w, algos=["fft"])  # nothing made yet: no input size
    assert prepared.nbytes == w.nbytes
    tiles = set()
    for size in (6, 40):
        x = rng.standard_normal((2, 3, size, size))
        args = conv2d_arguments(w.shape, 1, 2, 1, 1)
        tiles.add(_C.conv2d_weight_transform_tile("fft", x.shape, w.shape, *args, "forward"))
        ref = conv2d_reference(x, w, None, *args[:4])
        for weight in (w, prepared, w):  # cache miss, prepared, cache hit
            np.testing.assert_allclose(ops.conv2d(x, weight, padding=2, algo="fft"), ref, rtol=1e-10, atol=1e-10)
    assert len(tiles) == 2 and len(prepared._transforms) == 2


def test_a_prepared_weight_is_a_frozen_copy(rng):
    x = rng.standard_normal((1, 3, 6, 6))
    w = rng.standard_normal((2, 3, 3, 3))
    prepared = ops.prepare_conv_weight(w)
    before = ops.conv2d(x, w, padding=1, algo="im2col")
    w += 1.0
    np.testing.assert_allclose(ops.conv2d(x, prepared, padding=1, algo="winograd_4x3"), before, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(ops.conv2d(x, prepared, padding=1, algo="im2col"), before, rtol=1e-12)
    with pytest.raises(ValueError, match="weight: prepared for groups=1, called with groups=3"):
        ops.conv2d(np.zeros((1, 3, 6, 6)), ops.prepare_conv_weight(np.zeros((3, 1, 3, 3))), groups=3)


def test_views_with_other_strides_do_not_share_an_entry(rng):
    x = rng.standard_normal((1, 4, 7, 7))
    base = rng.standard_normal((4, 4, 3, 3))
    flipped = np.ascontiguousarray(base[:, :, ::-1, ::-1])
    for w in (base, flipped, base):
        np.testing.assert_allclose(ops.conv2d(x, w, padding=1, algo="winograd_2x3"),
                                   ops.conv2d(x, w, padding=1, algo="im2col"), rtol=1e-10, atol=1e-10)


def test_cache_stays_inside_its_budget(rng):
    weights = [rng.standard_normal((16, 16, 3, 3)) for _ in range(4)]
    one = ops.prepare_conv_weight(weights[0], algos=["winograd_4x3"]).nbytes // 2  # forward only
    conv_weight_cache.set_budget(2 * one)
    x = rng.standard_normal((1, 16, 6, 6))
    for w in weights:
        ops.conv2d(x, w, padding=1, algo="winograd_4x3")
    assert 0 < conv_weight_cache.cached_bytes() <= 2 * one


def test_cached_bytes_are_what_the_entries_hold_as_they_come_change_and_go(rng):
    def held():
        return sum(prepared.nbytes for prepared in conv_weight_cache._entries.values())

    x, gy = rng.standard_normal((1, 4, 6, 6)), rng.standard_normal((1, 4, 6, 6))
    weights = [rng.standard_normal((4, 4, 3, 3)) for _ in range(3)]
    steps = [lambda w=w: ops.conv2d(x, w, padding=1, algo="winograd_4x3") for w in weights]
    steps += [lambda: ops.conv2d_input(x.shape, weights[0], gy, padding=1, algo="winograd_4x3"),  # a second transform
              lambda: weights[1].__iadd__(1.0),  # changed in place: its entry is replaced at its next use
              steps[1], steps[2],
              lambda: conv_weight_cache.set_budget(held() // 2)]  # evicts the oldest
    for step in steps:
        step()
        assert conv_weight_cache.cached_bytes() == held() > 0
    conv_weight_cache.clear()
    assert conv_weight_cache.cached_bytes() == 0


def test_transform_rejects_bad_arguments():
    w = np.zeros((4, 3, 3, 3), np.float32)
    with pytest.raises(ValueError, match="algo='im2col' has no transformed weights"):
        _C.conv2d_transform_weight(w, np.empty(1, np.float32), 1, "im2col", "forward")
    with pytest.raises(ValueError, match="needs a 3x3 kernel"):
        _C.conv2d_transform_weight(np.zeros((4, 3, 5, 5), np.float32), np.empty(1, np.float32), 1, "winograd_4x3", "forward")
    with pytest.raises(ValueError, match="out: expected 1296 values, got 1"):
        _C.conv2d_transform_weight(w, np.empty(1, np.float32), 1, "winograd_4x3", "forward")
    with pytest.raises(ValueError, match="transformed: expected 1296 values, got 3"):
        _C.conv2d_forward(np.zeros((1, 3, 5, 5), np.float32), w, None, np.empty((1, 4, 5, 5), np.float32),
                          (1, 1), (1, 1), (1, 1), (1, 1), 1, "winograd_4x3", False, np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="tile: FFT needs a power of two from 3 to 64"):
        _C.conv2d_transformed_weight_size("fft", w.shape, 1, "forward", 24)
    with pytest.raises(ValueError, match="tile: algo='winograd_4x3' takes no tile size, got 16"):
        _C.conv2d_transform_weight(w, np.empty(1296, np.float32), 1, "winograd_4x3", "forward", 16)
    with pytest.raises(ValueError, match="use: expected 'forward' or 'input_gradient'"):
        _C.conv2d_transformed_weight_size("winograd_4x3", w.shape, 1, "backward")


@pytest.mark.parametrize("shape,expected", [
    ((1, 8, 16, 16), "winograd_4x3"),   # 16 tiles of 36 points vs 64 of 16
    ((1, 8, 3, 3), "winograd_4x3"),     # 36 vs 4 x 16
    ((1, 8, 2, 2), "winograd_2x3"),     # one tile each: 16 < 36
    ((1, 8, 6, 6), "winograd_2x3"),     # 4 x 36 = 9 x 16: a tie goes to the more accurate
])
def test_winograd_picks_the_tile_size_with_fewer_points(shape, expected):
    from fastconv.ops import conv_algo
    args = conv2d_arguments((4, 8, 3, 3), 1, 1, 1, 1)
    assert conv_algo.winograd_variant(shape, (4, 8, 3, 3), args) == expected


def test_winograd_name_runs_and_refuses_what_it_cannot(rng):
    x = rng.standard_normal((2, 5, 8, 8))
    w = rng.standard_normal((3, 5, 3, 3))
    ref = conv2d_reference(x, w, None, (1, 1), (1, 1), (1, 1))
    np.testing.assert_allclose(ops.conv2d(x, w, padding=1, algo="winograd"), ref, rtol=1e-10, atol=1e-10)
    gy = rng.standard_normal(ref.shape)
    dx, dw, _ = ops.conv2d_backward(x, w, gy, padding=1, algo="winograd")
    np.testing.assert_allclose(dx, ops.conv2d_input(x.shape, w, gy, padding=1, algo="im2col"), rtol=1e-10, atol=1e-10)
    # at stride 2 the phases are 2x2 (F(4x4, 2x2)); at stride 3, 1x1: no tiling runs them
    ref2 = conv2d_reference(x, w, None, (2, 2), (1, 1), (1, 1))
    np.testing.assert_allclose(ops.conv2d(x, w, padding=1, stride=2, algo="winograd"), ref2, rtol=1e-10, atol=1e-10)
    with pytest.raises(ValueError, match="cannot run this convolution: .*needs a 3x3 kernel, or a strided one whose "
                                         "stride phases are 3x3"):
        ops.conv2d(x, w, padding=1, stride=3, algo="winograd")


def test_a_derived_array_and_its_transform_follow_the_weights_bytes(rng):
    """derived(): the entry holds an array made from the weight (here its negation, over twice
    the channels) and the transform of that, both remade when the weight changes in place."""
    def doubled_negation(w, out):
        out[:3], out[3:] = -w, -2 * w
    derivation = conv_weight_cache.Derivation(("test",), (6, 4, 3, 3), doubled_negation)
    w = rng.standard_normal((3, 4, 3, 3))
    for step in range(2):
        made = np.concatenate([-w, -2 * w])
        want = np.empty(_C.conv2d_transformed_weight_size("winograd_4x3", made.shape, 1, "forward", 0))
        _C.conv2d_transform_weight(made, want, 1, "winograd_4x3", "forward", 0)
        array, u = conv_weight_cache.derived(_C, w, 1, derivation, "winograd_4x3", "forward", 0)
        np.testing.assert_array_equal(array, made)
        np.testing.assert_array_equal(u, want)
        assert conv_weight_cache.derived(_C, w, 1, derivation, "im2col", "forward", 0)[1] is None
        w *= 3.0  # an optimiser's in-place step
    conv_weight_cache.set_budget(0)
    array, u = conv_weight_cache.derived(_C, w, 1, derivation, "winograd_4x3", "forward", 0)
    np.testing.assert_array_equal(array, np.concatenate([-w, -2 * w]))
    assert u is None  # the kernel transforms it itself


@pytest.mark.parametrize("derived", [False, True])
def test_an_entry_larger_than_the_budget_is_neither_kept_nor_counted(rng, derived):
    w = rng.standard_normal((16, 16, 3, 3))
    x = rng.standard_normal((1, 16, 6, 6))
    conv_weight_cache.set_budget(w.nbytes)  # less than the weight's copy and its transform
    derivation = conv_weight_cache.Derivation(("test",), w.shape, lambda w, out: np.negative(w, out=out))
    for _ in range(2):
        if derived:
            conv_weight_cache.derived(_C, w, 1, derivation, "winograd_4x3", "forward", 0)
        else:
            ops.conv2d(x, w, padding=1, algo="winograd_4x3")
        assert conv_weight_cache.cached_bytes() == 0
