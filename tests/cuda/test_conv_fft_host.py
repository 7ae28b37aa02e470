"""conv2d's CUDA FFT algorithm on the host: the per-bin product bodies (conv/cuda/spectral_body.h)
over the whole grid on spectra numpy.fft computed, against the sums they stand for in complex128;
and the wrapper's whole pipeline (fastconv/cuda/conv.py, conv.cu through
tests/cuda/host_kernels.py, numpy.fft standing in for cuFFT) in every direction against the
float64 direct convolution and fastconv._C's gradients, and the CPU's own FFT where it runs the
shape (stride 1)."""
import numpy as np
import pytest

from fastconv import _C
from fastconv.cuda import conv as cuda_conv
from fastconv.cuda import loader
from tests.conv.test_fft import ERROR_BOUND
from tests.cuda import host_kernels, hostgrid
from tests.reference import conv2d_reference

BODIES = """
#include "conv/cuda/spectral_body.h"
namespace sp = fastconv::conv::spectral;
#define RUN(T, SUFFIX)                                                                                           \\
  extern "C" void forward_##SUFFIX(int64_t N, int64_t C, int64_t K, int64_t G, int64_t B, const T* a,          \\
                                   const T* b, T* out, int64_t count) {                                        \\
    for (int64_t i = 0; i < count; ++i) sp::forward_element(sp::Geometry{N, C, K, G, B}, a, b, out, i);       \\
  }                                                                                                            \\
  extern "C" void input_gradient_##SUFFIX(int64_t N, int64_t C, int64_t K, int64_t G, int64_t B, const T* a,   \\
                                          const T* b, T* out, int64_t count) {                                 \\
    for (int64_t i = 0; i < count; ++i) sp::input_gradient_element(sp::Geometry{N, C, K, G, B}, a, b, out, i); \\
  }                                                                                                            \\
  extern "C" void weight_gradient_##SUFFIX(int64_t N, int64_t C, int64_t K, int64_t G, int64_t B, const T* a,  \\
                                           const T* b, T* out, int64_t count) {                                \\
    for (int64_t i = 0; i < count; ++i) sp::weight_gradient_element(sp::Geometry{N, C, K, G, B}, a, b, out, i);\\
  }
RUN(float, f32)
RUN(double, f64)
"""

SUFFIX = {np.float32: "f32", np.float64: "f64"}


def _by_group(groups, x_planes, k_planes, sum_of_group):
    """[sum_of_group(its input channels, its filters) for each group], as slices."""
    c_per_group, k_per_group = x_planes // groups, k_planes // groups
    return [sum_of_group(slice(g * c_per_group, (g + 1) * c_per_group), slice(g * k_per_group, (g + 1) * k_per_group))
            for g in range(groups)]


def _forward_sums(x, w, groups):
    """Y[n, k] = sum_{c in group(k)} X[n, c] conj(W[k, c])."""
    parts = _by_group(groups, x.shape[1], w.shape[0], lambda c, k: np.einsum("ncf,kcf->nkf", x[:, c], np.conj(w[k])))
    return np.concatenate(parts, axis=1)


def _input_gradient_sums(dy, w, groups):
    """DX[n, c] = sum_{k in group(c)} DY[n, k] W[k, c]."""
    parts = _by_group(groups, w.shape[1] * groups, w.shape[0], lambda c, k: np.einsum("nkf,kcf->ncf", dy[:, k], w[k]))
    return np.concatenate(parts, axis=1)


def _weight_gradient_sums(x, dy, groups):
    """DW[k, c] = sum_n X[n, c] conj(DY[n, k]), c in group(k)."""
    parts = _by_group(groups, x.shape[1], dy.shape[1],
                      lambda c, k: np.einsum("ncf,nkf->kcf", x[:, c], np.conj(dy[:, k])))
    return np.concatenate(parts, axis=0)


def _spectrum(rng, shape, dtype):
    """Spectra of random real planes (numpy.fft's rfft2 of (shape..., 6, 7): 6 x 4 bins)."""
    planes = rng.standard_normal((*shape, 6, 7))
    return np.ascontiguousarray(np.fft.rfft2(planes).reshape(*shape, -1).astype(np.complex64 if dtype == np.float32
                                                                                 else np.complex128))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, c, k, groups", [(2, 3, 5, 1), (1, 6, 4, 2), (3, 4, 4, 4)])
def test_the_per_bin_bodies_over_the_whole_grid_match_their_sums(rng, dtype, n, c, k, groups):
    """Every output bin of each body (one thread each) against its complex128 sum: conjugated
    where the correlation theorem says (forward, weight gradient), not for the input gradient's
    convolution. float32 sums in float32: within a few ulps of the values' scale."""
    library = hostgrid.build(BODIES)
    x, w, dy = (_spectrum(rng, shape, dtype) for shape in ((n, c), (k, c // groups), (n, k)))
    bins = x.shape[-1]
    cases = {"forward": (x, w, (n, k), _forward_sums(x, w, groups)),
             "input_gradient": (dy, w, (n, c), _input_gradient_sums(dy, w, groups)),
             "weight_gradient": (x, dy, (k, c // groups), _weight_gradient_sums(x, dy, groups))}
    for body, (a, b, planes, want) in cases.items():
        got = np.full((*planes, bins), np.nan, a.dtype)
        getattr(library, f"{body}_{SUFFIX[dtype]}")(*map(hostgrid.i64, (n, c, k, groups, bins)), hostgrid.ptr(a),
                                                    hostgrid.ptr(b), hostgrid.ptr(got), hostgrid.i64(got.size))
        scale = np.abs(want).max()
        assert np.abs(got - want).max() <= scale * (1e-6 if dtype == np.float32 else 1e-14), body


@pytest.fixture
def launched(monkeypatch):
    """conv.cu compiled for the host; the names of the kernels the wrapper asks for, in order."""
    host_kernels.install(monkeypatch, "conv")
    names, function = [], loader.function

    def recording(family, name):
        names.append(name)
        return function(family, name)
    monkeypatch.setattr(loader, "function", recording)
    return names


# (input, weight, (stride, pad_begin, pad_end, dilation, groups)): 7x7 with padding 3; odd
# image, asymmetric kernel and padding, groups; a negative end padding (rows the convolution never
# reads); strides 2 and (3, 2), which the CPU's FFT refuses; a 1x1 kernel; padding wider than the
# kernel; one output pixel; grid lengths 5, 6, 7, 9, 10, 12, 14, 15 and 16.
CASES = [
    ((2, 3, 10, 9), (4, 3, 7, 7), ((1, 1), (3, 3), (3, 3), (1, 1), 1)),
    ((1, 4, 11, 8), (6, 2, 3, 5), ((1, 1), (1, 2), (0, 1), (1, 1), 2)),
    ((2, 3, 9, 8), (5, 3, 4, 3), ((1, 1), (1, 0), (-1, 2), (1, 1), 1)),
    ((2, 2, 11, 12), (3, 2, 5, 5), ((2, 2), (2, 2), (2, 2), (1, 1), 1)),
    ((1, 4, 13, 9), (4, 2, 3, 4), ((3, 2), (1, 0), (0, -1), (1, 1), 2)),
    ((1, 3, 5, 6), (2, 3, 1, 1), ((1, 1), (0, 0), (0, 0), (1, 1), 1)),
    ((1, 2, 6, 5), (3, 2, 3, 3), ((1, 1), (5, 5), (5, 5), (1, 1), 1)),
    ((2, 2, 5, 5), (3, 2, 5, 5), ((1, 1), (0, 0), (0, 0), (1, 1), 1)),
]


def _arrays(rng, dtype, x_shape, w_shape, geometry):
    x, w = rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype)
    dy = rng.standard_normal(_C.conv2d_output_shape(x_shape, w_shape, *geometry)).astype(dtype)
    return x, w, rng.standard_normal(w_shape[0]).astype(dtype), dy


def _relative_error(got, want):
    return np.abs(got - want).max() / np.abs(want).max()


def _cpu_runs_fft(x_shape, w_shape, geometry):
    return _C.conv2d_unsupported_reason("fft", x_shape, w_shape, *geometry) is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
def test_fft_forward_matches_float64_and_the_cpu_s_fft(launched, rng, dtype, case):
    """Within the CPU's FFT error bound (tests/conv/test_fft.py) of the float64 direct
    convolution, bias and ReLU on; and of the CPU's own FFT where it runs the shape."""
    x, w, b, _ = _arrays(rng, dtype, *case)
    stride, pad_begin, pad_end, dilation, groups = geometry = case[2]
    got = np.full(_C.conv2d_output_shape(x.shape, w.shape, *geometry), np.nan, dtype)
    cuda_conv.conv2d_forward(x, w, b, got, *geometry, "fft", True)
    direct = np.maximum(conv2d_reference(x, w, b, stride, pad_begin, pad_end, dilation, groups), 0)
    assert _relative_error(got, direct) <= ERROR_BOUND[dtype]
    assert (got == 0).any() and (got > 0).any()  # the ReLU had something to do
    assert launched == [f"spectral_forward_{SUFFIX[dtype]}"]
    if _cpu_runs_fft(x.shape, w.shape, geometry):
        cpu = np.full_like(got, np.nan)
        _C.conv2d_forward(x, w, b, cpu, *geometry, "fft", True)
        assert _relative_error(got, cpu) <= ERROR_BOUND[dtype]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
def test_fft_gradients_match_im2col_s_in_float64(launched, rng, dtype, case):
    """The input and weight gradients (FFT's own products) against fastconv._C's im2col ones on
    the float64 arrays, within the FFT bound; grad_bias is the output gradient's sum."""
    x, w, _, dy = _arrays(rng, dtype, *case)
    geometry = case[2]
    dx, dw, db = np.full(x.shape, np.nan, dtype), np.full(w.shape, np.nan, dtype), np.full(w.shape[0], np.nan, dtype)
    cuda_conv.conv2d_backward_input(dy, w, dx, *geometry, "fft")
    cuda_conv.conv2d_backward_weight(x, dy, dw, db, *geometry, "fft")
    assert launched == [f"spectral_{direction}_gradient_{SUFFIX[dtype]}" for direction in ("input", "weight")]
    x64, w64, dy64 = (a.astype(np.float64) for a in (x, w, dy))
    want_dx, want_dw, want_db = np.empty(x.shape), np.empty(w.shape), np.empty(w.shape[0])
    _C.conv2d_backward_input(dy64, w64, want_dx, *geometry, "im2col")
    _C.conv2d_backward_weight(x64, dy64, want_dw, want_db, *geometry, "im2col")
    assert _relative_error(dx, want_dx) <= ERROR_BOUND[dtype]
    assert _relative_error(dw, want_dw) <= ERROR_BOUND[dtype]
    assert _relative_error(db, want_db) <= (1e-6 if dtype == np.float32 else 1e-14)  # sums in another order


def test_a_negative_end_padding_gives_the_cut_rows_zero_gradient(launched, rng):
    """Rows and columns a negative end padding cuts off are never read: their input gradient is
    exactly 0, not the FFT's rounding noise."""
    x, w, _, dy = _arrays(rng, np.float64, *CASES[2])
    dx = np.full(x.shape, np.nan)
    cuda_conv.conv2d_backward_input(dy, w, dx, *CASES[2][2], "fft")
    assert (dx[:, :, -1, :] == 0).all() and (dx[:, :, :-1, :] != 0).any()


def test_the_grid_is_made_of_fast_lengths_that_hold_the_padded_input():
    assert cuda_conv.fft_grid((1, 1, 10, 9), (3, 3), (3, 3)) == (16, 15)
    assert cuda_conv.fft_grid((1, 1, 11, 8), (1, 2), (-1, 1)) == (12, 12)
    assert cuda_conv.fft_grid((1, 1, 101, 13), (0, 0), (0, 0)) == (105, 14)  # 105 = 3 * 5 * 7


def test_fft_refuses_dilation_by_name(launched):
    x, w = np.zeros((1, 2, 9, 9)), np.zeros((2, 2, 3, 3))
    geometry = ((1, 1), (2, 2), (2, 2), (2, 2), 1)
    with pytest.raises(ValueError, match="algo: fft needs dilation 1"):
        cuda_conv.conv2d_backward_weight(x, np.zeros(_C.conv2d_output_shape(x.shape, w.shape, *geometry)),
                                         np.empty(w.shape), None, *geometry, "fft")
    assert launched == []
