"""The CUDA pooling kernels' per-thread bodies (csrc/pool/cuda/pool_body.h), run on the host over
the whole grid (tests/cuda/hostgrid.py), against fastconv._C's CPU kernels: bit for bit, since
each body adds in the CPU kernel's order. Max pooling's backward adds atomically on the GPU; here
the outputs run in order, as the CPU's loop does."""
import numpy as np
import pytest

from fastconv import _C
from tests.cuda import hostgrid
from tests.cuda.hostgrid import i64, ptr

_GEOMETRY = "int64_t H, int64_t W, int64_t P, int64_t Q, int64_t kh, int64_t kw, int64_t sh, int64_t sw, " \
            "int64_t ph, int64_t pw, int64_t dh, int64_t dw"
_WINDOW = "fastconv::pool::WindowGeometry{H, W, P, Q, kh, kw, sh, sw, ph, pw, dh, dw}"

SOURCE = '#include "pool/cuda/pool_body.h"\nnamespace pl = fastconv::pool;\n' + "".join(f"""
extern "C" void max_fwd_{s}(int64_t n, {_GEOMETRY}, const {t}* x, {t}* y, int64_t* idx) {{
  for (int64_t o = 0; o < n; ++o) pl::max_pool2d_forward_body(o, {_WINDOW}, x, y, idx);
}}
extern "C" void max_bwd_{s}(int64_t n, int64_t HW, int64_t PQ, const {t}* dy, const int64_t* idx, {t}* dx) {{
  for (int64_t o = 0; o < n; ++o) pl::max_pool2d_backward_body(o, HW, PQ, dy, idx, dx);
}}
extern "C" void avg_fwd_{s}(int64_t n, {_GEOMETRY}, int include, int64_t divisor, const {t}* x, {t}* y) {{
  for (int64_t o = 0; o < n; ++o) pl::avg_pool2d_forward_body(o, {_WINDOW}, include != 0, divisor, x, y);
}}
extern "C" void avg_bwd_{s}(int64_t n, {_GEOMETRY}, int include, int64_t divisor, const {t}* dy, {t}* dx) {{
  for (int64_t i = 0; i < n; ++i) pl::avg_pool2d_backward_body(i, {_WINDOW}, include != 0, divisor, dy, dx);
}}
extern "C" void adaptive_fwd_{s}(int64_t n, int64_t H, int64_t W, int64_t P, int64_t Q, const {t}* x, {t}* y) {{
  for (int64_t o = 0; o < n; ++o) pl::adaptive_avg_pool2d_forward_body(o, H, W, P, Q, x, y);
}}
extern "C" void adaptive_bwd_{s}(int64_t n, int64_t H, int64_t W, int64_t P, int64_t Q, const {t}* dy, {t}* dx) {{
  for (int64_t i = 0; i < n; ++i) pl::adaptive_avg_pool2d_backward_body(i, H, W, P, Q, dy, dx);
}}
""" for t, s in (("float", "f32"), ("double", "f64")))

SUFFIX = {np.float32: "f32", np.float64: "f64"}

# (input shape, kernel, stride, padding, dilation, ceil_mode): padding at its limit, ceil mode
# with a last window that starts in the padding (dropped) or in the input (kept), overlapping and
# dilated windows, a dilated window of padding only.
WINDOWS = [
    ((2, 3, 7, 9), (3, 3), (2, 2), (1, 1), (1, 1), False),
    ((2, 3, 7, 9), (3, 3), (2, 2), (1, 1), (1, 1), True),
    ((1, 2, 6, 5), (2, 3), (2, 2), (1, 1), (1, 1), True),
    ((1, 2, 8, 8), (2, 2), (2, 2), (0, 0), (1, 1), False),
    ((2, 2, 9, 7), (3, 2), (1, 3), (1, 0), (2, 1), True),
    ((1, 1, 5, 5), (3, 3), (3, 3), (1, 1), (3, 3), True),
    ((1, 2, 4, 11), (4, 5), (3, 2), (2, 2), (1, 2), False),
]


@pytest.fixture(scope="module")
def lib():
    return hostgrid.build(SOURCE)


def _geometry(x_shape, y_shape, kernel, stride, padding, dilation):
    return [i64(v) for v in (*x_shape[2:], *y_shape[2:], *kernel, *stride, *padding, *dilation)]


def _input(rng, shape, dtype):
    # Values on a coarse grid: ties between taps are common, so the tie-breaking order is tested.
    return np.ascontiguousarray(rng.integers(-4, 5, shape).astype(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, kernel, stride, padding, dilation, ceil", WINDOWS)
def test_max_pool_bodies_match_the_cpu_kernel(lib, rng, dtype, shape, kernel, stride, padding, dilation, ceil):
    x = _input(rng, shape, dtype)
    x.flat[rng.integers(0, x.size, 2)] = np.nan  # PyTorch's NaN rule: a NaN wins
    y_shape = _C.pool2d_output_shape(shape, kernel, stride, padding, dilation, ceil)
    y_ref, idx_ref = np.empty(y_shape, dtype), np.empty(y_shape, np.int64)
    _C.max_pool2d_forward(x, y_ref, idx_ref, kernel, stride, padding, dilation, ceil)
    y, idx = np.empty_like(y_ref), np.empty_like(idx_ref)
    geometry = _geometry(shape, y_shape, kernel, stride, padding, dilation)
    getattr(lib, f"max_fwd_{SUFFIX[dtype]}")(i64(y.size), *geometry, ptr(x), ptr(y), ptr(idx))
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(idx, idx_ref)

    dy = _input(rng, y_shape, dtype) / 3
    dx_ref = np.empty(shape, dtype)
    _C.max_pool2d_backward(dy, idx_ref, dx_ref)
    dx = np.zeros(shape, dtype)
    getattr(lib, f"max_bwd_{SUFFIX[dtype]}")(i64(dy.size), i64(shape[2] * shape[3]), i64(y_shape[2] * y_shape[3]),
                                            ptr(dy), ptr(idx), ptr(dx))
    np.testing.assert_array_equal(dx, dx_ref)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("count_include_pad, divisor", [(True, 0), (False, 0), (True, 5)])
@pytest.mark.parametrize("shape, kernel, stride, padding, dilation, ceil", [w for w in WINDOWS if w[4] == (1, 1)])
def test_avg_pool_bodies_match_the_cpu_kernel(lib, rng, dtype, count_include_pad, divisor, shape, kernel, stride,
                                              padding, dilation, ceil):
    x = rng.standard_normal(shape).astype(dtype)
    y_shape = _C.pool2d_output_shape(shape, kernel, stride, padding, dilation, ceil)
    y_ref = np.empty(y_shape, dtype)
    _C.avg_pool2d_forward(x, y_ref, kernel, stride, padding, ceil, count_include_pad, divisor)
    y = np.empty_like(y_ref)
    geometry = _geometry(shape, y_shape, kernel, stride, padding, dilation)
    getattr(lib, f"avg_fwd_{SUFFIX[dtype]}")(i64(y.size), *geometry, count_include_pad, i64(divisor), ptr(x), ptr(y))
    np.testing.assert_array_equal(y, y_ref)

    dy = rng.standard_normal(y_shape).astype(dtype)
    dx_ref = np.empty(shape, dtype)
    _C.avg_pool2d_backward(dy, dx_ref, kernel, stride, padding, ceil, count_include_pad, divisor)
    dx = np.empty_like(dx_ref)
    getattr(lib, f"avg_bwd_{SUFFIX[dtype]}")(i64(dx.size), *geometry, count_include_pad, i64(divisor), ptr(dy),
                                            ptr(dx))
    np.testing.assert_array_equal(dx, dx_ref)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("in_size, out_size", [((7, 9), (3, 4)), ((5, 5), (1, 1)), ((3, 4), (7, 9)),
                                                ((10, 6), (4, 6))])
def test_adaptive_avg_pool_bodies_match_the_cpu_kernel(lib, rng, dtype, in_size, out_size):
    shape, y_shape = (2, 3, *in_size), (2, 3, *out_size)
    x = rng.standard_normal(shape).astype(dtype)
    y_ref, y = np.empty(y_shape, dtype), np.empty(y_shape, dtype)
    _C.adaptive_avg_pool2d_forward(x, y_ref)
    getattr(lib, f"adaptive_fwd_{SUFFIX[dtype]}")(i64(y.size), *map(i64, (*in_size, *out_size)), ptr(x), ptr(y))
    np.testing.assert_array_equal(y, y_ref)

    dy = rng.standard_normal(y_shape).astype(dtype)
    dx_ref, dx = np.empty(shape, dtype), np.empty(shape, dtype)
    _C.adaptive_avg_pool2d_backward(dy, dx_ref)
    getattr(lib, f"adaptive_bwd_{SUFFIX[dtype]}")(i64(dx.size), *map(i64, (*in_size, *out_size)), ptr(dy), ptr(dx))
    np.testing.assert_array_equal(dx, dx_ref)
