"""sampling.cu's grid_sample, affine_grid and interpolate (bodies in csrc/sampling/cuda/*_body.h),
compiled for the host and run through their wrappers (fastconv/cuda/sampling.py) over the whole
grid (tests/cuda/host_kernels.py), compared with fastconv._C's CPU kernels bit for bit: each sum
adds the CPU kernel's terms in its order. The grid gradient is compared with the CPU kernel on
one thread: with more threads than images it splits an image's channels into groups and adds
their partial sums, a different order. On one host thread the atomic formulations add in index
order, the CPU kernel's, so they agree to the bit too (on a GPU, within rounding)."""
import ctypes
import itertools

import numpy as np
import pytest

from fastconv import _C
from fastconv.cuda import loader
from fastconv.cuda import sampling as cuda_sampling
from tests.cuda import host_kernels, hostgrid

DTYPES = [np.float32, np.float64]
N, C, H, W, OH, OW = 2, 3, 5, 6, 4, 7


@pytest.fixture
def host(monkeypatch):
    """fastconv.cuda.sampling running sampling.cu compiled for the host, and the names of the
    kernels it launched."""
    host_kernels.install(monkeypatch, "sampling")
    launched = []
    function = loader.function
    monkeypatch.setattr(loader, "function", lambda family, name: launched.append(name) or function(family, name))
    return launched


def grid_points(rng, dtype, shape=(N, OH, OW, 2)):
    """Points inside and up to 30% outside [-1, 1], a few exactly on pixel centres and corners
    (weights of 0 and 1)."""
    grid = rng.uniform(-1.3, 1.3, shape)
    grid[0, 0, :3] = [[-1, -1], [0, 0], [1, 1]]
    return grid.astype(dtype)


@pytest.mark.parametrize("mode, padding, align", list(itertools.product((0, 1), (0, 1, 2), (False, True))))
@pytest.mark.parametrize("dtype", DTYPES)
def test_grid_sample_equals_the_cpu_kernel(host, rng, one_thread, dtype, mode, padding, align):
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    grid = grid_points(rng, dtype)
    out, expected = np.full((N, C, OH, OW), np.nan, dtype), np.full((N, C, OH, OW), np.nan, dtype)
    cuda_sampling.grid_sample_forward(x, grid, out, mode, padding, align)
    _C.grid_sample_forward(x, grid, expected, mode, padding, align)
    np.testing.assert_array_equal(out, expected)

    dy = rng.standard_normal(out.shape).astype(dtype)
    expected_dx, expected_dgrid = np.full_like(x, np.nan), np.full_like(grid, np.nan)
    _C.grid_sample_backward(x, grid, dy, expected_dx, expected_dgrid, mode, padding, align)
    assert np.count_nonzero(expected_dx) > x.size // 3
    for deterministic in (True, False):
        dx, dgrid = np.full_like(x, np.nan), np.full_like(grid, np.nan)
        cuda_sampling.grid_sample_backward(x, grid, dy, dx, dgrid, mode, padding, align, deterministic=deterministic)
        np.testing.assert_array_equal(dx, expected_dx)
        np.testing.assert_array_equal(dgrid, expected_dgrid)
    suffix = "f32" if dtype == np.float32 else "f64"
    assert f"grid_sample_input_gradient_gather_{suffix}" in host
    assert f"grid_sample_input_gradient_atomic_{suffix}" in host


def test_grid_sample_backward_computes_only_what_is_asked(host, rng):
    x, grid = rng.standard_normal((N, C, H, W)), grid_points(rng, np.float64)
    dy = rng.standard_normal((N, C, OH, OW))
    dgrid = np.full_like(grid, np.nan)
    cuda_sampling.grid_sample_backward(x, grid, dy, None, dgrid, 0, 0, False)
    assert not np.isnan(dgrid).any() and "grid_sample_corners_f64" not in host
    dx = np.full_like(x, np.nan)
    cuda_sampling.grid_sample_backward(x, grid, dy, dx, None, 0, 0, False)
    assert not np.isnan(dx).any() and host.count("grid_sample_grid_gradient_f64") == 1


@pytest.mark.parametrize("align", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_affine_grid_equals_the_cpu_kernel(host, rng, dtype, align):
    theta = rng.standard_normal((N, 2, 3)).astype(dtype)
    for h, w in ((4, 5), (1, 3)):
        grid, expected = np.full((N, h, w, 2), np.nan, dtype), np.full((N, h, w, 2), np.nan, dtype)
        cuda_sampling.affine_grid_forward(theta, grid, align)
        _C.affine_grid_forward(theta, expected, align)
        np.testing.assert_array_equal(grid, expected)
        dgrid = rng.standard_normal(grid.shape).astype(dtype)
        dtheta, expected_dtheta = np.full_like(theta, np.nan), np.full_like(theta, np.nan)
        cuda_sampling.affine_grid_backward(dgrid, dtheta, align)
        _C.affine_grid_backward(dgrid, expected_dtheta, align)
        np.testing.assert_array_equal(dtheta, expected_dtheta)


# (H, W) -> (OH, OW) with scale factors (0: input size / output size): upsampling by a factor
# given, exact 2x (nearest's shortcut), downsampling by sizes, unchanged size, one pixel, and
# downsampling by 5 (antialiased windows of 11 and 21 taps, cubic windows clamped at both ends).
RESIZES = [((5, 6), (11, 9), (2.3, 1.5)), ((4, 3), (8, 6), (2.0, 2.0)), ((9, 8), (4, 3), (0.0, 0.0)),
           ((5, 4), (5, 7), (0.0, 0.0)), ((1, 6), (3, 2), (0.0, 0.0)), ((25, 3), (5, 2), (0.2, 0.0))]
# mode (0 bilinear, 1 nearest, 2 bicubic, 3 and 4 antialiased bilinear and bicubic, 5
# nearest-exact), align_corners
MODES = [(0, False), (0, True), (1, False), (2, False), (2, True), (3, False), (3, True), (4, False), (5, False)]


@pytest.mark.parametrize("resize", RESIZES)
@pytest.mark.parametrize("mode, align", MODES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_interpolate_equals_the_cpu_kernel(host, rng, dtype, mode, align, resize):
    (h, w), (oh, ow), (sh, sw) = resize
    x = rng.standard_normal((N, C, h, w)).astype(dtype)
    out, expected = np.full((N, C, oh, ow), np.nan, dtype), np.full((N, C, oh, ow), np.nan, dtype)
    cuda_sampling.interpolate_forward(x, out, mode, align, sh, sw)
    _C.interpolate_forward(x, expected, mode, align, sh, sw)
    np.testing.assert_array_equal(out, expected)
    dy = rng.standard_normal(out.shape).astype(dtype)
    dx, expected_dx = np.full_like(x, np.nan), np.full_like(x, np.nan)
    cuda_sampling.interpolate_backward(dy, dx, mode, align, sh, sw)
    _C.interpolate_backward(dy, expected_dx, mode, align, sh, sw)
    np.testing.assert_array_equal(dx, expected_dx)


@pytest.mark.parametrize("call, message", [
    (lambda: cuda_sampling.grid_sample_forward(np.zeros((1, 2, 3)), np.zeros((1, 2, 2, 2)), np.zeros((1, 2, 2, 2)),
                                               0, 0, False), r"input: expected a 4-d array \(N, C, H, W\)"),
    (lambda: cuda_sampling.grid_sample_forward(np.zeros((1, 2, 3, 3)), np.zeros((2, 2, 2, 2)),
                                               np.zeros((1, 2, 2, 2)), 0, 0, False),
     r"grid: expected shape \(1, H_out, W_out, 2\), got \(2, 2, 2, 2\)"),
    (lambda: cuda_sampling.grid_sample_forward(np.zeros((1, 2, 3, 3)), np.zeros((1, 2, 2, 2)),
                                               np.zeros((1, 2, 2, 2)), 2, 0, False), "mode: expected 0 .* or 1"),
    (lambda: cuda_sampling.grid_sample_forward(np.zeros((1, 2, 3, 3)), np.zeros((1, 2, 2, 2)),
                                               np.zeros((1, 2, 2, 2)), 0, 3, False), "padding_mode: expected 0"),
    (lambda: cuda_sampling.grid_sample_forward(np.zeros((1, 2, 0, 3)), np.zeros((1, 2, 2, 2)),
                                               np.zeros((1, 2, 2, 2)), 0, 0, False),
     "input: expected non-empty spatial dimensions"),
    (lambda: cuda_sampling.interpolate_forward(np.zeros((1, 2, 3, 3)), np.zeros((1, 3, 2, 2)), 0, False, 0, 0),
     r"out: expected shape \(1, 2, H_out, W_out\), got \(1, 3, 2, 2\)"),
    (lambda: cuda_sampling.interpolate_forward(np.zeros((1, 2, 3, 3)), np.zeros((1, 2, 2, 2)), 0, False, -1, 0),
     "scale_h: expected 0 .* or a positive finite scale"),
    (lambda: cuda_sampling.interpolate_backward(np.zeros((1, 2, 2, 2)), np.zeros((1, 2, 3, 3)), 1, False, 0,
                                                float("nan")), "scale_w: expected 0"),
    (lambda: cuda_sampling.affine_grid_forward(np.zeros((2, 2, 3)), np.zeros((1, 2, 2, 2)), False),
     r"theta: expected shape \(1, 2, 3\), got \(2, 2, 3\)"),
    (lambda: cuda_sampling.affine_grid_backward(np.zeros((1, 2, 2, 2)), np.zeros((1, 3, 3)), False),
     r"grad_theta: expected shape \(1, 2, 3\), got \(1, 3, 3\)"),
])
def test_bad_arguments_get_the_cpu_kernels_message_before_any_launch(call, message):
    with pytest.raises(ValueError, match=message):
        call()


SHUFFLED_SOURCE = """
#include "sampling/cuda/grid_sample_body.h"
#include "sampling/cuda/interpolate_body.h"
namespace sm = fastconv::sampling;

// The gathers' threads run in `order`, as a GPU may schedule them.
extern "C" void grid_gather(const int64_t* a, const double* grad_output, const int64_t* sorted, const int64_t* start,
                            const double* weight, double* grad_input, const int64_t* order, int64_t count) {
  const sm::GridGeometry g{a[0], a[1], a[2], a[3], a[4], a[5], 0, fastconv::bilinear::Padding::zeros, false};
  for (int64_t t = 0; t < count; ++t)
    grad_input[order[t]] = sm::grid_sample_input_gradient_gather(g, grad_output, sorted, start, weight, order[t]);
}

extern "C" void resize_gather(const int64_t* a, const double* grad_output, double* grad_input, const int64_t* order,
                              int64_t count, int mode) {
  const sm::ResizeGeometry g{a[0], a[1], a[2], a[3], a[4], a[5], mode, false, 0.0, 0.0};
  for (int64_t t = 0; t < count; ++t) grad_input[order[t]] = sm::interpolate_backward_element(g, grad_output, order[t]);
}
"""


def test_the_gathers_give_the_same_bits_in_any_thread_order(host, rng, monkeypatch):
    """Each gather thread writes its own element from read-only inputs: shuffling the threads
    changes nothing. The corner list and its sort come from the wrapper's own path."""
    library = hostgrid.build(SHUFFLED_SOURCE)
    x, grid = rng.standard_normal((N, C, H, W)), grid_points(rng, np.float64)
    dy = rng.standard_normal((N, C, OH, OW))
    expected = np.empty_like(x)
    _C.grid_sample_backward(x, grid, dy, expected, None, 0, 0, False)
    launch, gather_arguments = cuda_sampling.args.launch, []

    def launch_all_but_the_gather(family, op, count, sizes, arrays):
        if op == "grid_sample_input_gradient_gather":
            gather_arguments.extend(arrays)
        else:
            launch(family, op, count, sizes, arrays)

    monkeypatch.setattr(cuda_sampling.args, "launch", launch_all_but_the_gather)
    cuda_sampling.grid_sample_backward(x, grid, dy, np.empty_like(x), None, 0, 0, False)
    _, order, start, weight = gather_arguments[:4]
    sizes = np.array([N, C, H, W, OH, OW], np.int64)
    threads = rng.permutation(x.size).astype(np.int64)
    dx = np.full_like(x, np.nan)
    library.grid_gather(*map(hostgrid.ptr, (sizes, dy, order, start, weight, dx, threads)), hostgrid.i64(x.size))
    np.testing.assert_array_equal(dx, expected)

    up = rng.standard_normal((N, C, 2 * H + 1, 3 * W - 2))
    sizes = np.array([N, C, H, W, *up.shape[2:]], np.int64)
    for mode in (0, 1, 2, 3, 5):  # bilinear, nearest, bicubic, antialiased bilinear, nearest-exact
        expected = np.empty_like(x)
        _C.interpolate_backward(up, expected, mode, False, 0.0, 0.0)
        dx = np.full_like(x, np.nan)
        library.resize_gather(*map(hostgrid.ptr, (sizes, up, dx, threads)), hostgrid.i64(x.size), ctypes.c_int(mode))
        np.testing.assert_array_equal(dx, expected)


@pytest.mark.parametrize("h, w", [(1, 4), (3, 1), (1, 1)])
def test_grid_sample_of_a_single_row_or_column_equals_the_cpu_kernel(host, rng, one_thread, h, w):
    """The CPU kernel reads 2x2 blocks shifted inside the plane; a plane one pixel high or wide
    has no such block (its steps are 0), and must still get the same sums."""
    x = rng.standard_normal((N, C, h, w))
    grid = grid_points(rng, np.float64)
    dy = rng.standard_normal((N, C, OH, OW))
    for mode, padding, align in itertools.product((0, 1), (0, 1, 2), (False, True)):
        out, expected = np.empty(dy.shape), np.empty(dy.shape)
        cuda_sampling.grid_sample_forward(x, grid, out, mode, padding, align)
        _C.grid_sample_forward(x, grid, expected, mode, padding, align)
        np.testing.assert_array_equal(out, expected)
        dx, dgrid, expected_dx, expected_dgrid = (np.empty_like(a) for a in (x, grid, x, grid))
        cuda_sampling.grid_sample_backward(x, grid, dy, dx, dgrid, mode, padding, align)
        _C.grid_sample_backward(x, grid, dy, expected_dx, expected_dgrid, mode, padding, align)
        np.testing.assert_array_equal(dx, expected_dx)
        np.testing.assert_array_equal(dgrid, expected_dgrid)
