"""The per-element parts of the CUDA batch norm (csrc/norm/cuda/batch_norm_body.h), run on the host
over the whole grid against fastconv._C's CPU kernels. The channel sums, which norm.cu reduces
in shared memory, are summed here by a plain loop over the same values (channel_offset): the
statistics then agree with the CPU's to rounding (the order of the sums differs), and the
elementwise bodies given the same statistics agree bit for bit (eval forward; train forward in
float64, where the saved statistics are the double ones the normalisation uses). The statistics
are summed in ranges as norm.cu splits a channel (split_range, sum_partials), several per channel
too, uneven ones included."""
import numpy as np
import pytest

from fastconv import _C
from tests.cuda import hostgrid
from tests.cuda.hostgrid import f64, i64, ptr

PRELUDE = '#include "norm/cuda/batch_norm_body.h"\nnamespace nm = fastconv::norm;\nusing fastconv::index_t;\n'
SOURCE = PRELUDE + "".join(f"""
extern "C" void stats_{s}(const {t}* x, index_t N, index_t C, index_t HW, index_t splits, double momentum,
                          double eps, {t}* rm, {t}* rv, {t}* sm, {t}* si, double* partials, double* mean,
                          double* invstd) {{
  for (index_t b = 0; b < C * splits; ++b) {{  // norm.cu's pass 1, each range summed by one thread
    const index_t c = b / splits;
    const nm::SplitRange r = nm::split_range(b % splits, splits, N * HW);
    partials[2 * b] = partials[2 * b + 1] = 0;
    for (index_t j = r.begin; j < r.end; ++j) {{
      const double d = static_cast<double>(x[nm::channel_offset(c, j, C, HW)]) - static_cast<double>(x[c * HW]);
      partials[2 * b] += d;
      partials[2 * b + 1] += d * d;
    }}
  }}
  for (index_t c = 0; c < C; ++c)
    nm::finish_batch_stats(c, nm::sum_partials(partials, c, splits), x[c * HW], N * HW, momentum, eps, rm, rv, sm,
                           si, mean, invstd);
}}
extern "C" void eval_stats_{s}(const {t}* rm, const {t}* rv, index_t C, double eps, double* mean, double* invstd) {{
  for (index_t c = 0; c < C; ++c) nm::eval_stats_body(c, rm, rv, eps, mean, invstd);
}}
extern "C" void apply_{s}(index_t n, index_t C, index_t HW, const {t}* x, const {t}* z, const {t}* gamma,
                          const {t}* beta, const double* mean, const double* invstd, int relu, {t}* y) {{
  for (index_t i = 0; i < n; ++i) nm::batch_norm_apply_body(i, C, HW, x, z, gamma, beta, mean, invstd, relu != 0, y);
}}
extern "C" void grad_sums_{s}(const {t}* dy, const {t}* x, const {t}* y, const {t}* gamma, const {t}* mean,
                              const {t}* invstd, int training, index_t N, index_t C, index_t HW, {t}* dgamma,
                              {t}* dbeta, double* coefficients) {{
  for (index_t c = 0; c < C; ++c) {{
    double sum = 0, sum_xmu = 0;
    for (index_t j = 0; j < N * HW; ++j) {{
      const index_t i = nm::channel_offset(c, j, C, HW);
      const double g = nm::masked_grad(i, dy, y);
      sum += g;
      sum_xmu += g * (static_cast<double>(x[i]) - static_cast<double>(mean[c]));
    }}
    const nm::GradCoefficients k = nm::finish_grad_sums(c, sum, sum_xmu, N * HW, gamma, invstd, training != 0,
                                                        dgamma, dbeta);
    coefficients[3 * c] = k.k;
    coefficients[3 * c + 1] = k.k_xmu;
    coefficients[3 * c + 2] = k.k_0;
  }}
}}
extern "C" void grad_input_{s}(index_t n, index_t C, index_t HW, const {t}* dy, const {t}* x, const {t}* y,
                               const {t}* mean, const double* coefficients, {t}* dx, {t}* dz) {{
  for (index_t i = 0; i < n; ++i) nm::batch_norm_grad_input_body(i, C, HW, dy, x, y, mean, coefficients, dx, dz);
}}
""" for t, s in (("float", "f32"), ("double", "f64")))

SUFFIX = {np.float32: "f32", np.float64: "f64"}
RTOL = {np.float32: 2e-5, np.float64: 1e-12}
SHAPES = [(4, 3, 5, 7), (1, 2, 1, 9), (3, 5, 2, 2)]
NULL = None  # ctypes passes None as a null pointer


@pytest.fixture(scope="module")
def lib():
    return hostgrid.build(SOURCE)


def _optional(array):
    return NULL if array is None else ptr(array)


def _case(rng, shape, dtype, affine, residual):
    c = shape[1]
    x = (rng.standard_normal(shape) * 3 + 5).astype(dtype)  # |mean| > std: the shift matters
    z = rng.standard_normal(shape).astype(dtype) if residual else None
    gamma = rng.uniform(0.5, 2, c).astype(dtype) if affine else None
    beta = rng.standard_normal(c).astype(dtype) if affine else None
    return x, z, gamma, beta


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("affine, residual, relu, splits", [(True, True, True, 1), (False, False, False, 4),
                                                             (True, False, True, 3)])
def test_train_forward_matches_the_cpu_kernel(lib, rng, dtype, shape, affine, residual, relu, splits):
    x, z, gamma, beta = _case(rng, shape, dtype, affine, residual)
    c = shape[1]
    rm0, rv0 = rng.standard_normal(c).astype(dtype), rng.uniform(0.5, 2, c).astype(dtype)
    rm_ref, rv_ref, y_ref = rm0.copy(), rv0.copy(), np.empty_like(x)
    sm_ref, si_ref = np.empty(c, dtype), np.empty(c, dtype)
    _C.batch_norm_train_forward(x, z, gamma, beta, rm_ref, rv_ref, y_ref, sm_ref, si_ref, 0.1, 1e-5, relu)

    rm, rv, sm, si = rm0.copy(), rv0.copy(), np.empty(c, dtype), np.empty(c, dtype)
    mean, invstd, partials = np.empty(c), np.empty(c), np.empty(2 * c * splits)
    s = SUFFIX[dtype]
    getattr(lib, f"stats_{s}")(ptr(x), i64(shape[0]), i64(c), i64(shape[2] * shape[3]), i64(splits), f64(0.1),
                               f64(1e-5), ptr(rm), ptr(rv), ptr(sm), ptr(si), ptr(partials), ptr(mean), ptr(invstd))
    for got, want in ((sm, sm_ref), (si, si_ref), (rm, rm_ref), (rv, rv_ref)):
        np.testing.assert_allclose(got, want, rtol=RTOL[dtype])

    y = np.empty_like(x)
    if dtype == np.float64:  # the CPU's own statistics: the elementwise body must then agree exactly
        mean, invstd = sm_ref.copy(), si_ref.copy()
    getattr(lib, f"apply_{s}")(i64(x.size), i64(c), i64(shape[2] * shape[3]), ptr(x), _optional(z), _optional(gamma),
                               _optional(beta), ptr(mean), ptr(invstd), int(relu), ptr(y))
    if dtype == np.float64:
        np.testing.assert_array_equal(y, y_ref)
    else:
        np.testing.assert_allclose(y, y_ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_eval_forward_matches_the_cpu_kernel_exactly(lib, rng, dtype, shape):
    x, z, gamma, beta = _case(rng, shape, dtype, True, True)
    c = shape[1]
    rm, rv = rng.standard_normal(c).astype(dtype), rng.uniform(0.5, 2, c).astype(dtype)
    y_ref = np.empty_like(x)
    _C.batch_norm_eval_forward(x, z, gamma, beta, rm, rv, y_ref, 1e-5, True)
    mean, invstd, y = np.empty(c), np.empty(c), np.empty_like(x)
    s = SUFFIX[dtype]
    getattr(lib, f"eval_stats_{s}")(ptr(rm), ptr(rv), i64(c), f64(1e-5), ptr(mean), ptr(invstd))
    getattr(lib, f"apply_{s}")(i64(x.size), i64(c), i64(shape[2] * shape[3]), ptr(x), ptr(z), ptr(gamma), ptr(beta),
                               ptr(mean), ptr(invstd), 1, ptr(y))
    np.testing.assert_array_equal(y, y_ref)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("training, relu, residual, affine", [(True, True, True, True), (True, False, False, False),
                                                              (False, True, False, True)])
def test_backward_matches_the_cpu_kernel(lib, rng, dtype, shape, training, relu, residual, affine):
    x, _, gamma, beta = _case(rng, shape, dtype, affine, False)
    c, hw = shape[1], shape[2] * shape[3]
    mean = rng.standard_normal(c).astype(dtype) + 5
    invstd = rng.uniform(0.3, 1, c).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    y = rng.standard_normal(shape).astype(dtype) if relu else None  # only its sign (the mask) is read
    ref = {n: np.empty(shape, dtype) for n in ("dx", "dz")}
    dgamma_ref, dbeta_ref = np.empty(c, dtype), np.empty(c, dtype)
    _C.batch_norm_backward(dy, x, y, gamma, mean, invstd, training, ref["dx"], ref["dz"] if residual else None,
                           dgamma_ref, dbeta_ref)

    s = SUFFIX[dtype]
    dgamma, dbeta, coefficients = np.empty(c, dtype), np.empty(c, dtype), np.empty(3 * c)
    getattr(lib, f"grad_sums_{s}")(ptr(dy), ptr(x), _optional(y), _optional(gamma), ptr(mean), ptr(invstd),
                                   int(training), i64(shape[0]), i64(c), i64(hw), ptr(dgamma), ptr(dbeta),
                                   ptr(coefficients))
    np.testing.assert_allclose(dbeta, dbeta_ref, rtol=RTOL[dtype], atol=RTOL[dtype])
    np.testing.assert_allclose(dgamma, dgamma_ref, rtol=RTOL[dtype], atol=RTOL[dtype])
    dx, dz = np.empty(shape, dtype), np.empty(shape, dtype) if residual else None
    getattr(lib, f"grad_input_{s}")(i64(x.size), i64(c), i64(hw), ptr(dy), ptr(x), _optional(y), ptr(mean),
                                    ptr(coefficients), ptr(dx), _optional(dz))
    np.testing.assert_allclose(dx, ref["dx"], rtol=RTOL[dtype] * 10, atol=RTOL[dtype] * 10)
    if residual:
        np.testing.assert_array_equal(dz, ref["dz"])
