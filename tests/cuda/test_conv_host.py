"""conv.cu's im2col and col2im bodies (csrc/conv/cuda/im2col_body.h), run on the CPU over the
whole grid and compared with fastconv._C's im2col kernels: conv2d with a one-hot weight (output
channel k copies column row k) is im2col, and its input gradient is col2im. A GEMM with one
nonzero per sum adds exact zeros, so both comparisons are bit for bit; col2im's gather adds the
taps in the CPU kernel's order. torch's unfold and fold are a second, independent oracle."""
import itertools

import numpy as np
import pytest

from fastconv import _C
from fastconv.cuda.im2col import column_geometry, columns_shape
from tests.cuda import hostgrid

SOURCE = """
#include "conv/cuda/im2col_body.h"
namespace cv = fastconv::conv;

static cv::ColumnsGeometry geometry(const int64_t* a) {
  return {a[0], a[1], {a[2], a[4], a[6], a[8], 0, a[10]}, {a[3], a[5], a[7], a[9], 0, a[11]}, a[12], a[13]};
}

template <class T>
static void im2col(const int64_t* a, const T* x, T* cols, int64_t count) {
  const cv::ColumnsGeometry g = geometry(a);
  for (int64_t i = 0; i < count; ++i) cols[i] = cv::im2col_element(g, x, i);
}

template <class T>
static void col2im(const int64_t* a, const T* cols, T* x, int64_t count) {
  const cv::ColumnsGeometry g = geometry(a);
  for (int64_t i = 0; i < count; ++i) x[i] = cv::col2im_element(g, cols, i);
}

extern "C" {
void im2col_f32(const int64_t* a, const float* x, float* c, int64_t n) { im2col(a, x, c, n); }
void im2col_f64(const int64_t* a, const double* x, double* c, int64_t n) { im2col(a, x, c, n); }
void col2im_f32(const int64_t* a, const float* c, float* x, int64_t n) { col2im(a, c, x, n); }
void col2im_f64(const int64_t* a, const double* c, double* x, int64_t n) { col2im(a, c, x, n); }
}
"""

SUFFIX = {np.float32: "f32", np.float64: "f64"}

# (N, C, H, W, kh, kw, stride, padding, pad_end, dilation): plain, strided (the CPU's col2im by
# phases), dilated, asymmetric and negative end padding, a kernel as large as the padded input,
# 1x1 (the CPU's pointwise path).
CASES = [
    (2, 3, 7, 6, 3, 3, (1, 1), (1, 1), (1, 1), (1, 1)),
    (1, 2, 9, 8, 3, 2, (2, 3), (1, 0), (2, 1), (1, 1)),
    (2, 2, 8, 9, 3, 3, (1, 2), (2, 1), (0, 2), (2, 3)),
    (1, 3, 6, 7, 4, 3, (2, 2), (1, 2), (-1, 0), (1, 1)),
    (1, 1, 5, 4, 7, 6, (1, 1), (1, 1), (1, 1), (1, 1)),
    (2, 4, 5, 5, 1, 1, (1, 1), (0, 0), (0, 0), (1, 1)),
]


@pytest.fixture(scope="module")
def lib():
    return hostgrid.build(SOURCE)


def one_hot_weight(c, kh, kw, dtype):
    """(C*kh*kw, C, kh, kw): output channel (c * kh + r) * kw + s reads tap (r, s) of channel c."""
    rows = c * kh * kw
    return np.eye(rows, dtype=dtype).reshape(rows, c, kh, kw)


def run(lib, op, geometry, source, out):
    g = np.array(geometry, dtype=np.int64)
    getattr(lib, f"{op}_{SUFFIX[out.dtype.type]}")(hostgrid.ptr(g), hostgrid.ptr(source), hostgrid.ptr(out),
                                                   hostgrid.i64(out.size))
    return out


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_im2col_and_col2im_bodies_equal_the_cpu_kernels(lib, case, dtype, rng):
    n, c, h, w, kh, kw, stride, padding, pad_end, dilation = case
    geometry = column_geometry((n, c, h, w), kh, kw, stride, padding, dilation, pad_end)
    p, q = geometry[-2:]
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    weight = one_hot_weight(c, kh, kw, dtype)
    conv_args = (stride, padding, pad_end, dilation, 1)

    cols = run(lib, "im2col", geometry, x, np.full(columns_shape(geometry), np.nan, dtype))
    expected = np.full((n, weight.shape[0], p, q), np.nan, dtype)
    _C.conv2d_forward(x, weight, None, expected, *conv_args, algo="im2col")
    np.testing.assert_array_equal(cols, expected.reshape(cols.shape))

    dy = rng.standard_normal(cols.shape).astype(dtype)
    dx = run(lib, "col2im", geometry, dy, np.full(x.shape, np.nan, dtype))
    expected_dx = np.full(x.shape, np.nan, dtype)
    _C.conv2d_backward_input(dy.reshape(expected.shape), weight, expected_dx, *conv_args, algo="im2col")
    np.testing.assert_array_equal(dx, expected_dx)


@pytest.mark.parametrize("case", [c for c in CASES if c[7] == c[8]])  # torch pads both ends alike
def test_im2col_and_col2im_bodies_are_torch_unfold_and_fold(lib, case, torch, rng):
    n, c, h, w, kh, kw, stride, padding, _, dilation = case
    geometry = column_geometry((n, c, h, w), kh, kw, stride, padding, dilation)
    x = rng.standard_normal((n, c, h, w))
    options = dict(kernel_size=(kh, kw), dilation=dilation, padding=padding, stride=stride)
    cols = run(lib, "im2col", geometry, x, np.empty(columns_shape(geometry)))
    np.testing.assert_array_equal(cols, torch.nn.functional.unfold(torch.from_numpy(x), **options).numpy())
    dx = run(lib, "col2im", geometry, cols, np.empty(x.shape))
    folded = torch.nn.functional.fold(torch.from_numpy(cols), output_size=(h, w), **options).numpy()
    np.testing.assert_allclose(dx, folded, rtol=1e-13, atol=1e-13)  # torch scatters in another order


@pytest.mark.parametrize("bad, message", [
    (dict(kh=0), "kh: expected a kernel size >= 1"),
    (dict(stride=(0, 1)), "stride: must be >= 1"),
    (dict(dilation=(1, 0)), "dilation: must be >= 1"),
    (dict(padding=(-1, 0)), "padding: must be >= 0"),
    (dict(kw=9), "larger than the padded input"),
    (dict(stride=(2**63, 1)), "stride: expected values of magnitude at most 2\\*\\*63 - 1"),
])
def test_column_geometry_refuses_bad_arguments_before_any_launch(bad, message):
    arguments = dict(kh=3, kw=3, stride=(1, 1), padding=(1, 1), dilation=(1, 1)) | bad
    with pytest.raises(ValueError, match=message):
        column_geometry((1, 2, 5, 5), **arguments)


def test_column_geometry_is_conv2d_output_size():
    for h, k, s, p, d in itertools.product(range(1, 7), range(1, 4), range(1, 3), range(0, 2), range(1, 3)):
        if d * (k - 1) + 1 > h + 2 * p:
            continue
        *_, out_h, out_w = column_geometry((1, 1, h, h + 1), k, k, (s, s), (p, p), (d, d))
        assert (out_h, out_w) == ((h + 2 * p - d * (k - 1) - 1) // s + 1, (h + 1 + 2 * p - d * (k - 1) - 1) // s + 1)
