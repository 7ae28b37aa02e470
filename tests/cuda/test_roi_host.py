"""roi.cu's bodies (csrc/roi/cuda/roi_align_body.h, roi_pool_body.h), run on the CPU over the
whole grid and compared with fastconv._C's CPU kernels.

Bit for bit: the forwards (the same arithmetic in the same order), the deterministic backwards
(each gradient element adds its terms in the CPU kernel's order), and the scatter backwards when
their threads run in index order (the CPU kernel's order again). Run in a shuffled order, as a
GPU's atomics may add, the scatter backwards agree within rounding only, and the deterministic
ones keep every bit: their threads never write each other's elements."""
import numpy as np
import pytest

from fastconv import _C
from fastconv.cuda import loader
from fastconv.cuda import roi as cuda_roi
from tests.cuda import host_kernels, hostgrid

SOURCE = """
#include "roi/cuda/roi_align_body.h"
#include "roi/cuda/roi_pool_body.h"
namespace roi = fastconv::roi;

static roi::RoiShape shape(const int64_t* a) { return {a[0], a[1], a[2], a[3], a[4], a[5], a[6]}; }

struct PlainAdd {
  template <class T>
  void operator()(T* at, T value) const { *at += value; }
};

// Each function runs thread order[0], order[1], ... of a grid of `count` threads.
template <class T>
static void align_forward(const int64_t* a, double scale, int64_t ratio, int aligned, const T* x, const T* boxes,
                          T* out, const int64_t* order, int64_t count) {
  for (int64_t t = 0; t < count; ++t)
    out[order[t]] = roi::roi_align_forward_element(shape(a), {scale, ratio, aligned != 0}, x, boxes, order[t]);
}

template <class T>
static void align_backward_scatter(const int64_t* a, double scale, int64_t ratio, int aligned, const T* dy,
                                   const T* boxes, T* dx, const int64_t* order, int64_t count) {
  for (int64_t t = 0; t < count; ++t)
    roi::roi_align_backward_scatter(shape(a), {scale, ratio, aligned != 0}, dy, boxes, order[t], dx, PlainAdd{});
}

template <class T>
static void align_backward_gather(const int64_t* a, double scale, int64_t ratio, int aligned, const T* dy,
                                  const T* boxes, T* dx, const int64_t* order, int64_t count) {
  for (int64_t t = 0; t < count; ++t)
    dx[order[t]] = roi::roi_align_backward_gather(shape(a), {scale, ratio, aligned != 0}, dy, boxes, order[t]);
}

template <class T>
static void pool_forward(const int64_t* a, double scale, const T* x, const T* boxes, T* out, int64_t* argmax,
                         const int64_t* order, int64_t count) {
  for (int64_t t = 0; t < count; ++t) roi::roi_pool_forward_element(shape(a), scale, x, boxes, order[t], out, argmax);
}

template <class T>
static void pool_backward_scatter(const T* dy, const int64_t* argmax, T* dx, const int64_t* order, int64_t count) {
  for (int64_t t = 0; t < count; ++t) roi::roi_pool_backward_scatter(dy, argmax, order[t], dx, PlainAdd{});
}

template <class T>
static void pool_backward_plane(const int64_t* a, const T* dy, const int64_t* argmax, T* dx, const int64_t* order,
                                int64_t count) {
  for (int64_t t = 0; t < count; ++t) roi::roi_pool_backward_plane(shape(a), dy, argmax, order[t], dx);
}

#define EXPORT(T, S)                                                                                                 \\
  extern "C" void align_forward_##S(const int64_t* a, double s, int64_t r, int al, const T* x, const T* b, T* o,   \\
                                    const int64_t* ord, int64_t n) { align_forward(a, s, r, al, x, b, o, ord, n); } \\
  extern "C" void align_backward_scatter_##S(const int64_t* a, double s, int64_t r, int al, const T* x, const T* b, \\
                                             T* o, const int64_t* ord, int64_t n) {                                 \\
    align_backward_scatter(a, s, r, al, x, b, o, ord, n);                                                           \\
  }                                                                                                                  \\
  extern "C" void align_backward_gather_##S(const int64_t* a, double s, int64_t r, int al, const T* x, const T* b,  \\
                                            T* o, const int64_t* ord, int64_t n) {                                  \\
    align_backward_gather(a, s, r, al, x, b, o, ord, n);                                                            \\
  }                                                                                                                  \\
  extern "C" void pool_forward_##S(const int64_t* a, double s, const T* x, const T* b, T* o, int64_t* am,           \\
                                   const int64_t* ord, int64_t n) { pool_forward(a, s, x, b, o, am, ord, n); }       \\
  extern "C" void pool_backward_scatter_##S(const T* dy, const int64_t* am, T* dx, const int64_t* ord, int64_t n) { \\
    pool_backward_scatter(dy, am, dx, ord, n);                                                                      \\
  }                                                                                                                  \\
  extern "C" void pool_backward_plane_##S(const int64_t* a, const T* dy, const int64_t* am, T* dx,                  \\
                                          const int64_t* ord, int64_t n) { pool_backward_plane(a, dy, am, dx, ord, n); }
EXPORT(float, f32)
EXPORT(double, f64)
"""

SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}
# Scatter run in a shuffled order against the CPU kernel: rounding only.
SHUFFLED_TOLERANCE = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}

# Boxes [batch, x1, y1, x2, y2] in input coordinates before spatial_scale 0.5, out of image
# order: overlapping, partly and wholly outside the input, inverted (empty when aligned), tiny,
# large enough for several adaptive samples per bin, and one whose samples all lie within a
# pixel above the input (they reach rows 0 and 1).
BOXES = [
    [1, 2.0, 3.0, 17.0, 14.0],
    [0, 0.0, 0.0, 9.5, 9.5],
    [1, 5.0, 4.0, 12.0, 19.0],
    [0, -6.0, -3.0, 8.0, 30.0],
    [1, 25.0, 25.0, 40.0, 44.0],
    [0, 10.0, 12.0, 4.0, 6.0],
    [1, 7.2, 7.3, 7.9, 8.1],
    [0, 1.0, 2.0, 27.0, 21.0],
    [0, 2.0, -1.9, 8.0, -0.1],
]
N, C, H, W, PH, PW, SCALE = 2, 3, 11, 13, 3, 4, 0.5


@pytest.fixture(scope="module")
def lib():
    return hostgrid.build(SOURCE)


def sizes(k):
    return np.array([N, C, H, W, k, PH, PW], dtype=np.int64)


def thread_order(count, rng=None):
    order = np.arange(count, dtype=np.int64)
    if rng is not None:
        rng.shuffle(order)
    return order


def call(lib, name, dtype, *arguments):
    """lib.<name>_<f32|f64>(*arguments, order, count): arrays by pointer, the rest as given."""
    *head, order = arguments
    converted = [hostgrid.ptr(a) if isinstance(a, np.ndarray) else a for a in head]
    getattr(lib, f"{name}_{SUFFIX[np.dtype(dtype)]}")(*converted, hostgrid.ptr(order), hostgrid.i64(order.size))


def problem(rng, dtype):
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    boxes = np.array(BOXES, dtype=dtype)
    dy = rng.standard_normal((len(BOXES), C, PH, PW)).astype(dtype)
    return x, boxes, dy


def align_params(ratio, aligned):
    return hostgrid.f64(SCALE), hostgrid.i64(ratio), hostgrid.ctypes.c_int(int(aligned))


ALIGN_CASES = [(-1, False), (-1, True), (2, True), (1, False)]
DTYPES = [np.float32, np.float64]


@pytest.mark.parametrize("ratio, aligned", ALIGN_CASES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_roi_align_forward_body_equals_the_cpu_kernel(lib, rng, dtype, ratio, aligned):
    x, boxes, _ = problem(rng, dtype)
    expected = np.full((len(BOXES), C, PH, PW), np.nan, dtype)
    _C.roi_align_forward(x, boxes, expected, SCALE, ratio, aligned)
    out = np.full_like(expected, np.nan)
    call(lib, "align_forward", dtype, sizes(len(BOXES)), *align_params(ratio, aligned), x, boxes, out,
         thread_order(out.size))
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("ratio, aligned", ALIGN_CASES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_roi_align_backward_bodies_equal_the_cpu_kernel(lib, rng, dtype, ratio, aligned):
    x, boxes, dy = problem(rng, dtype)
    expected = np.full(x.shape, np.nan, dtype)
    _C.roi_align_backward(dy, boxes, expected, SCALE, ratio, aligned)
    assert np.count_nonzero(expected) > x.size // 4  # the boxes reach much of the input

    gathered = np.full_like(expected, np.nan)
    call(lib, "align_backward_gather", dtype, sizes(len(BOXES)), *align_params(ratio, aligned), dy, boxes, gathered,
         thread_order(x.size))
    np.testing.assert_array_equal(gathered, expected)

    shuffled = np.full_like(expected, np.nan)
    call(lib, "align_backward_gather", dtype, sizes(len(BOXES)), *align_params(ratio, aligned), dy, boxes, shuffled,
         thread_order(x.size, rng))
    np.testing.assert_array_equal(shuffled, expected)  # any thread order: the same bits

    scattered = np.zeros_like(expected)
    call(lib, "align_backward_scatter", dtype, sizes(len(BOXES)), *align_params(ratio, aligned), dy, boxes,
         scattered, thread_order(dy.size))
    np.testing.assert_array_equal(scattered, expected)  # threads in index order add in the CPU's order

    scattered[...] = 0
    call(lib, "align_backward_scatter", dtype, sizes(len(BOXES)), *align_params(ratio, aligned), dy, boxes,
         scattered, thread_order(dy.size, rng))
    tol = SHUFFLED_TOLERANCE[np.dtype(dtype)]
    np.testing.assert_allclose(scattered, expected, rtol=tol, atol=tol)  # as atomics add: rounding apart


def pool_problem(lib, rng, dtype):
    x, boxes, dy = problem(rng, dtype)
    out, argmax = np.full(dy.shape, np.nan, dtype), np.full(dy.shape, -7, np.int64)
    call(lib, "pool_forward", dtype, sizes(len(BOXES)), hostgrid.f64(SCALE), x, boxes, out, argmax,
         thread_order(out.size))
    return x, boxes, dy, out, argmax


@pytest.mark.parametrize("dtype", DTYPES)
def test_roi_pool_forward_body_equals_the_cpu_kernel(lib, rng, dtype):
    x, boxes, _, out, argmax = pool_problem(lib, rng, dtype)
    expected, expected_argmax = np.full_like(out, np.nan), np.full_like(argmax, -7)
    _C.roi_pool_forward(x, boxes, expected, expected_argmax, SCALE)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(argmax, expected_argmax)
    assert (argmax == -1).any() and (argmax >= 0).any()  # empty bins and full ones


@pytest.mark.parametrize("dtype", DTYPES)
def test_roi_pool_backward_bodies_equal_the_cpu_kernel(lib, rng, dtype):
    x, boxes, dy, _, argmax = pool_problem(lib, rng, dtype)
    # an entry may name channel 0 of any image: box 1 (image 0) routes one into image 1
    argmax[0, 0, 0, 0] = argmax[1, 0, 0, 0] = (1 * C + 0) * H * W + 5
    expected = np.full(x.shape, np.nan, dtype)
    _C.roi_pool_backward(dy, argmax, expected)

    per_plane = np.full_like(expected, np.nan)
    call(lib, "pool_backward_plane", dtype, sizes(len(BOXES)), dy, argmax, per_plane, thread_order(N * C, rng))
    np.testing.assert_array_equal(per_plane, expected)

    scattered = np.zeros_like(expected)
    call(lib, "pool_backward_scatter", dtype, dy, argmax, scattered, thread_order(dy.size))
    np.testing.assert_array_equal(scattered, expected)
    scattered[...] = 0
    call(lib, "pool_backward_scatter", dtype, dy, argmax, scattered, thread_order(dy.size, rng))
    tol = SHUFFLED_TOLERANCE[np.dtype(dtype)]
    np.testing.assert_allclose(scattered, expected, rtol=tol, atol=tol)


def test_argmax_check_is_the_cpu_kernels_rule():
    argmax = np.full((2, 3, 1, 2), -1, np.int64)
    argmax[1, 2, 0, 1] = (1 * 3 + 2) * 4 + 1  # image 1, channel 2: valid
    cuda_roi.check_argmax(argmax, (2, 3, 2, 2))
    for bad in (-2, 4, 2 * 3 * 4):  # not -1; channel 1 of image 0; past the input
        argmax[1, 2, 0, 1] = bad
        with pytest.raises(ValueError, match=rf"argmax: entry {bad} at \(1, 2, 0, 1\) is neither -1"):
            cuda_roi.check_argmax(argmax, (2, 3, 2, 2))
        with pytest.raises(ValueError, match=rf"argmax: entry {bad} at \(1, 2, 0, 1\) is neither -1"):
            _C.roi_pool_backward(np.zeros((2, 3, 1, 2)), argmax, np.empty((2, 3, 2, 2)))


@pytest.mark.parametrize("bad_box, message", [
    ([2, 0, 0, 4, 4], "batch index 2 of box 0 is not an image of input"),
    ([0, np.nan, 0, 4, 4], "box 0 has a non-finite coordinate"),
])
@pytest.mark.parametrize("op", ["roi_align_forward", "roi_align_backward", "roi_pool_forward"])
def test_boxes_are_checked_by_the_cpu_rules_before_any_launch(op, bad_box, message):
    x = np.zeros((2, 3, 5, 5), np.float32)
    boxes = np.array([bad_box], np.float32)
    pooled = np.zeros((1, 3, 2, 2), np.float32)
    call_op = {
        "roi_align_forward": lambda: cuda_roi.roi_align_forward(x, boxes, pooled, 1.0, -1, False),
        "roi_align_backward": lambda: cuda_roi.roi_align_backward(pooled, boxes, x, 1.0, -1, False),
        "roi_pool_forward": lambda: cuda_roi.roi_pool_forward(x, boxes, pooled, np.zeros(pooled.shape, np.int64), 1.0),
    }[op]
    with pytest.raises(ValueError, match=message):
        call_op()


def test_shapes_are_checked_before_any_launch():
    x = np.zeros((2, 3, 5, 5), np.float32)
    boxes = np.zeros((1, 5), np.float32)
    with pytest.raises(ValueError, match=r"out: expected shape \(1, 3, PH, PW\)"):
        cuda_roi.roi_align_forward(x, boxes, np.zeros((1, 2, 2, 2), np.float32), 1.0, -1, False)
    with pytest.raises(ValueError, match="input: expected non-empty spatial dimensions"):
        cuda_roi.roi_align_forward(np.zeros((2, 3, 0, 5), np.float32), boxes, np.zeros((1, 3, 2, 2), np.float32),
                                   1.0, -1, False)
    with pytest.raises(TypeError, match="boxes: dtype float64 does not match float32"):
        cuda_roi.roi_pool_forward(x, boxes.astype(np.float64), np.zeros((1, 3, 2, 2), np.float32),
                                  np.zeros((1, 3, 2, 2), np.int64), 1.0)


@pytest.fixture
def host_roi(monkeypatch):
    """fastconv.cuda.roi running roi.cu compiled for the host (tests/cuda/host_kernels.py), and
    the names of the kernels it launched."""
    host_kernels.install(monkeypatch, "roi")
    launched = []
    function = loader.function
    monkeypatch.setattr(loader, "function", lambda family, name: launched.append(name) or function(family, name))
    return launched


@pytest.mark.parametrize("deterministic", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
def test_the_wrappers_run_roi_cu_as_the_cpu_kernels(host_roi, rng, dtype, deterministic):
    x, boxes, dy = problem(rng, dtype)
    for ratio, aligned in ALIGN_CASES:
        out, expected = np.full(dy.shape, np.nan, dtype), np.full(dy.shape, np.nan, dtype)
        cuda_roi.roi_align_forward(x, boxes, out, SCALE, ratio, aligned)
        _C.roi_align_forward(x, boxes, expected, SCALE, ratio, aligned)
        np.testing.assert_array_equal(out, expected)
        dx, expected_dx = np.full(x.shape, np.nan, dtype), np.full(x.shape, np.nan, dtype)
        cuda_roi.roi_align_backward(dy, boxes, dx, SCALE, ratio, aligned, deterministic=deterministic)
        _C.roi_align_backward(dy, boxes, expected_dx, SCALE, ratio, aligned)
        np.testing.assert_array_equal(dx, expected_dx)  # one host thread: the CPU's order either way

    out, argmax = np.full(dy.shape, np.nan, dtype), np.full(dy.shape, -7, np.int64)
    cuda_roi.roi_pool_forward(x, boxes, out, argmax, SCALE)
    expected, expected_argmax = np.full_like(out, np.nan), np.full_like(argmax, -7)
    _C.roi_pool_forward(x, boxes, expected, expected_argmax, SCALE)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(argmax, expected_argmax)
    dx, expected_dx = np.full(x.shape, np.nan, dtype), np.full(x.shape, np.nan, dtype)
    cuda_roi.roi_pool_backward(dy, argmax, dx, deterministic=deterministic)
    _C.roi_pool_backward(dy, argmax, expected_dx)
    np.testing.assert_array_equal(dx, expected_dx)

    kind = ("gather", "plane") if deterministic else ("atomic", "atomic")
    suffix = SUFFIX[np.dtype(dtype)]
    assert host_roi[-3:] == [f"roi_align_backward_{kind[0]}_{suffix}", f"roi_pool_forward_{suffix}",
                             f"roi_pool_backward_{kind[1]}_{suffix}"]


def test_the_module_switch_chooses_the_backward(host_roi, rng, monkeypatch):
    x, boxes, dy = problem(rng, np.float64)
    for switch, kernel in ((False, "roi_align_backward_atomic_f64"), (True, "roi_align_backward_gather_f64")):
        monkeypatch.setattr(cuda_roi, "DETERMINISTIC", switch)
        cuda_roi.roi_align_backward(dy, boxes, np.empty(x.shape), SCALE, -1, False)
        assert host_roi[-1] == kernel


@pytest.mark.parametrize("op", ["roi_align_forward", "roi_align_backward"])
def test_roi_align_sample_limits_are_checked_before_any_launch(op):
    x = np.zeros((1, 3, 5, 5), np.float32)
    pooled = np.zeros((1, 3, 2, 2), np.float32)
    boxes = np.array([[0, 0, 0, 4, 4]], np.float32)
    call = {"roi_align_forward": lambda ratio: cuda_roi.roi_align_forward(x, boxes, pooled, 1.0, ratio, False),
            "roi_align_backward": lambda ratio: cuda_roi.roi_align_backward(pooled, boxes, x, 1.0, ratio, False)}[op]
    with pytest.raises(ValueError, match="sampling_ratio: expected at most"):
        call(2**40)
    with pytest.raises(ValueError, match="box 0 needs 8192 x 8192 samples"):
        call(8192)


@pytest.mark.parametrize("deterministic", [True, False])
def test_no_boxes_give_a_zero_gradient(host_roi, deterministic):
    boxes, dy = np.zeros((0, 5)), np.zeros((0, C, PH, PW))
    dx = np.full((N, C, H, W), np.nan)
    cuda_roi.roi_align_backward(dy, boxes, dx, SCALE, -1, False, deterministic=deterministic)
    np.testing.assert_array_equal(dx, 0)
    dx[...] = np.nan
    cuda_roi.roi_pool_backward(dy, np.zeros(dy.shape, np.int64), dx, deterministic=deterministic)
    np.testing.assert_array_equal(dx, 0)
