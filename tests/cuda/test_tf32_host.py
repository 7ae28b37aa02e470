"""The tensor-core GEMM (csrc/gemm/cuda/mma_gemm.h) and the 16-bit conversions (precision.h),
run on the host: the conversions against numpy's and ml_dtypes' and an independent float64
rounding; the fragment maps against the PTX ISA's m16n8k8 (TF32) and m16n8k16 (16-bit) layouts
(each element of A, B and C held once, the inverse maps agreeing); and the whole block / warp
tiling through its wrappers
(fastconv/cuda/gemm.py, conv.py) on real 256-thread blocks whose mma.sync is emulated from the
whole warp's fragments (tests/cuda/host_blocks.py), against float64 products.

The bounds, with |A||B| the element-wise product of the absolute values (what a dot product's
rounding error is proportional to), u = 2^-11 (TF32's unit roundoff: 10 stored mantissa bits)
and K terms summed in float32 (unit roundoff 2^-24, at most K * 2^-24 relative per sum):
    TF32     |C - AB| <= (2u + u^2 + K * 2^-24) |A||B|, tested as (2^-10 + K * 2^-23) |A||B|
             (a factor 2 on the sum's term for the tensor cores' unspecified adder order);
    16-bit   products exact, so |C - AB| <= K * 2^-23 |A||B| + half an ulp of the 16-bit result.
"""
import numpy as np
import pytest

from fastconv import _C
from fastconv.backend import DeviceError
from fastconv.cuda import conv as cuda_conv
from fastconv.cuda import gemm, precision
from tests.cuda import host_blocks, host_kernels, hostgrid
from tests.cuda.test_gemm_host import KERNELS
from tests.reference import conv2d_reference

ml_dtypes = pytest.importorskip("ml_dtypes")
BF16 = np.dtype(ml_dtypes.bfloat16)
HALF_ULP = {np.dtype(np.float16): 2.0 ** -11, BF16: 2.0 ** -8}

UNIT = r"""
#include "gemm/cuda/mma_gemm.h"
namespace fp = fastconv::precision;
namespace mma = fastconv::gemm::mma;
extern "C" void tf32_round(const float* x, uint32_t* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = fp::tf32_round_bits(x[i]);
}
extern "C" void to_half(const float* x, unsigned short* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = fp::narrow<fp::half>(x[i]).bits;
}
extern "C" void to_bfloat16(const float* x, unsigned short* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = fp::narrow<fp::bfloat16>(x[i]).bits;
}
extern "C" void from_half(const unsigned short* h, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = fp::widen(fp::half{h[i]});
}
extern "C" void from_bfloat16(const unsigned short* h, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = fp::widen(fp::bfloat16{h[i]});
}
// (row, col) of the first value of every (lane, register) of A and B of a format, of C; and the
// (lane, register, half) holding each element of A and B.
template <class Format>
void fragments(int32_t* a, int32_t* b, int32_t* c, int32_t* a_holders, int32_t* b_holders) {
  for (int lane = 0; lane < 32; ++lane) {
    for (int r = 0; r < 4; ++r) {
      const mma::Element ea = Format::a_element(lane, r), ec = mma::c_element(lane, r);
      a[(lane * 4 + r) * 2] = ea.row, a[(lane * 4 + r) * 2 + 1] = ea.col;
      c[(lane * 4 + r) * 2] = ec.row, c[(lane * 4 + r) * 2 + 1] = ec.col;
    }
    for (int r = 0; r < 2; ++r) {
      const mma::Element eb = Format::b_element(lane, r);
      b[(lane * 2 + r) * 2] = eb.row, b[(lane * 2 + r) * 2 + 1] = eb.col;
    }
  }
  for (int row = 0; row < 16; ++row)
    for (int col = 0; col < Format::K; ++col) {
      const mma::Holder h = Format::a_holder(row, col);
      int32_t* out = a_holders + (row * Format::K + col) * 3;
      out[0] = h.lane, out[1] = h.reg, out[2] = h.half;
    }
  for (int row = 0; row < Format::K; ++row)
    for (int col = 0; col < 8; ++col) {
      const mma::Holder h = Format::b_holder(row, col);
      int32_t* out = b_holders + (row * 8 + col) * 3;
      out[0] = h.lane, out[1] = h.reg, out[2] = h.half;
    }
}
extern "C" void fragments_tf32(int32_t* a, int32_t* b, int32_t* c, int32_t* ah, int32_t* bh) {
  fragments<mma::Tf32>(a, b, c, ah, bh);
}
extern "C" void fragments_16bit(int32_t* a, int32_t* b, int32_t* c, int32_t* ah, int32_t* bh) {
  fragments<mma::Bits16<fp::half>>(a, b, c, ah, bh);
}
"""
SHIM = "#define __device__\n#define __shared__ static\nstruct HostDim3 { unsigned x, y, z; };\n" \
       "static HostDim3 threadIdx;\ninline void __syncthreads() {}\n"


@pytest.fixture(scope="module")
def unit():
    return hostgrid.build(SHIM + UNIT)


def _run(function, x, out_dtype):
    x = np.ascontiguousarray(x)
    out = np.empty(x.shape, out_dtype)
    function(hostgrid.ptr(x), hostgrid.ptr(out), hostgrid.i64(x.size))
    return out


def _special_floats(rng):
    tiny = np.float32(2.0 ** -149)
    edges = np.array([0.0, -0.0, 1.0, 1 + 2 ** -11, -(1 + 2 ** -11), 1 + 2 ** -12, 1 + 3 * 2 ** -12, 3 * 2 ** -11,
                      np.inf, -np.inf, np.finfo(np.float32).max, -np.finfo(np.float32).max, 2.0 ** -126, tiny,
                      4096 * tiny, 4097 * tiny, 12288 * tiny, 65504, 65519, 65520, 65536, 2.0 ** -24, 2.0 ** -25,
                      3 * 2.0 ** -26, 2.0 ** -14, 2.0 ** -14 - 2.0 ** -25, 1 + 2 ** -8, 1 + 3 * 2 ** -8],
                     np.float32)
    bits = rng.integers(0, 2 ** 32, 20000, dtype=np.uint64).astype(np.uint32)
    spread = (rng.standard_normal(20000) * np.exp2(rng.integers(-30, 30, 20000))).astype(np.float32)
    return np.concatenate([edges, bits.view(np.float32), spread])


def _tf32_by_float64(x):
    """x rounded to 11 significant bits, ties away from zero, in float64 (exact): the spacing of
    TF32 is 2^(e - 10) for |x| in [2^e, 2^(e+1)), and 2^-136 below float32's normal range."""
    x = x.astype(np.float64)
    magnitude = np.abs(x)
    _, exponent = np.frexp(magnitude)  # magnitude = f * 2^exponent, f in [0.5, 1)
    spacing = np.exp2(np.maximum(exponent - 1, -126) - 10.0)
    return np.sign(x) * np.floor(magnitude / spacing + 0.5) * spacing


def test_tf32_rounding_is_nearest_ties_away(unit, rng):
    x = _special_floats(rng)
    got = _run(unit.tf32_round, x, np.uint32)
    finite = np.isfinite(x)
    bits = x.view(np.uint32)
    # The bits: the 13 low ones cut, the 19 high ones those of the float64 rounding.
    assert not (got[finite] & 0x1FFF).any()
    want = _tf32_by_float64(x[finite])
    overflowed = np.abs(want) > np.finfo(np.float32).max
    want[overflowed] = np.copysign(np.inf, want[overflowed])
    np.testing.assert_array_equal(got[finite].view(np.float32).astype(np.float64), want)
    np.testing.assert_array_equal(got[~finite], bits[~finite])  # infinities and NaNs untouched
    # Ties go away from zero: 1 + 2^-11 is halfway between 1 and 1 + 2^-10.
    assert got[3].view(np.float32) == np.float32(1 + 2 ** -10) and got[4].view(np.float32) == -np.float32(1 + 2 ** -10)
    assert got[5].view(np.float32) == 1.0  # below halfway: down


def test_half_and_bfloat16_conversions_match_numpy_and_ml_dtypes(unit, rng):
    x = _special_floats(rng)
    x = x[~np.isnan(x)]  # NaN payloads differ between converters; NaN stays NaN, below
    with np.errstate(over="ignore"):  # the overflow to infinity is what is compared
        want_half, want_bfloat16 = x.astype(np.float16), x.astype(BF16)
    np.testing.assert_array_equal(_run(unit.to_half, x, np.uint16), want_half.view(np.uint16))
    np.testing.assert_array_equal(_run(unit.to_bfloat16, x, np.uint16), want_bfloat16.view(np.uint16))
    every = np.arange(2 ** 16, dtype=np.uint32).astype(np.uint16)
    for function, dtype in ((unit.from_half, np.float16), (unit.from_bfloat16, BF16)):
        got, want = _run(function, every, np.float32), every.view(dtype).astype(np.float32)
        np.testing.assert_array_equal(got.view(np.uint32)[~np.isnan(want)], want.view(np.uint32)[~np.isnan(want)])
        assert np.isnan(got[np.isnan(want)]).all()
    nan = np.array([np.nan, -np.nan], np.float32)
    for function, dtype in ((unit.to_half, np.float16), (unit.to_bfloat16, BF16)):
        assert np.isnan(_run(function, nan, np.uint16).view(dtype).astype(np.float32)).all()


# Per format: the depth K of the instruction, values per register, and lane 5's (row, col) of
# the first value of each A and B register, spelled out from the PTX ISA's tables (lane 5:
# groupID 1, threadID_in_group 1).
FORMATS = {"tf32": (8, 1, [[1, 1], [9, 1], [1, 5], [9, 5]], [[1, 1], [5, 1]]),
           "16bit": (16, 2, [[1, 2], [9, 2], [1, 10], [9, 10]], [[2, 1], [10, 1]])}


@pytest.mark.parametrize("form", FORMATS)
def test_fragment_maps_hold_every_element_once(unit, form):
    depth, per_reg, lane5_a, lane5_b = FORMATS[form]
    a, b, c = (np.empty((32, regs, 2), np.int32) for regs in (4, 2, 4))
    a_holders, b_holders = np.empty((16, depth, 3), np.int32), np.empty((depth, 8, 3), np.int32)
    getattr(unit, f"fragments_{form}")(*(hostgrid.ptr(v) for v in (a, b, c, a_holders, b_holders)))
    # A register's values: its first, then (16-bit) the next k: A's next column, B's next row.
    a_all = [(row, col + h) for row, col in a.reshape(-1, 2) for h in range(per_reg)]
    b_all = [(row + h, col) for row, col in b.reshape(-1, 2) for h in range(per_reg)]
    for held, shape in ((a_all, (16, depth)), (b_all, (depth, 8)), (list(map(tuple, c.reshape(-1, 2))), (16, 8))):
        assert sorted(held) == [(r, k) for r in range(shape[0]) for k in range(shape[1])]
    assert a[5].tolist() == lane5_a and b[5].tolist() == lane5_b
    assert c[5].tolist() == [[1, 2], [1, 3], [9, 2], [9, 3]]
    for held, holders, next_k in ((a, a_holders, (0, 1)), (b, b_holders, (1, 0))):
        for lane in range(32):
            for reg in range(held.shape[1]):
                row, col = held[lane, reg]
                for h in range(per_reg):
                    assert tuple(holders[row + h * next_k[0], col + h * next_k[1]]) == (lane, reg, h)


@pytest.fixture
def host(monkeypatch):
    host_kernels.install(monkeypatch, "conv")
    return host_blocks.install(monkeypatch, "gemm", KERNELS)


@pytest.fixture
def tf32():
    with gemm.allow_tf32():
        yield


def _bound(a, b, dtype):
    """The element-wise error bound of the module docstring for a @ b."""
    k = a.shape[-1]
    scale = np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64))
    if np.dtype(dtype) == np.float32:
        return (2.0 ** -10 + k * 2.0 ** -23) * scale
    return k * 2.0 ** -23 * scale


def _assert_within(got, want, bound, dtype):
    ulp = HALF_ULP.get(np.dtype(dtype), 0.0) * np.abs(want)
    error = np.abs(got.astype(np.float64) - want)
    assert (error <= bound + ulp).all(), f"worst excess {np.max(error - bound - ulp)}"


SHAPES = [(130, 67, 19), (1, 129, 9), (65, 1, 8), (3, 5, 1), (17, 9, 40)]


@pytest.mark.parametrize("shape", SHAPES)
def test_tf32_gemm_is_within_tf32_s_bound(host, rng, tf32, shape):
    m, n, k = shape
    a, b = rng.standard_normal((m, k)).astype(np.float32), rng.standard_normal((n, k)).astype(np.float32).T
    c0 = rng.standard_normal((m, n)).astype(np.float32)
    c = c0.copy()
    gemm.gemm(a, b, c, 0.5, -2.0, algo="tiled")
    want = 0.5 * (a.astype(np.float64) @ b) - 2.0 * c0
    _assert_within(c, want, 0.5 * _bound(a, b, np.float32) + 2.0 ** -23 * np.abs(want), np.float32)
    assert host["gemm_tf32"].launches and not host["gemm_f32"].launches


def test_tf32_rounds_the_operands_and_exact_float32_does_not(host):
    """1 + 2^-12 is below half a TF32 unit above 1 (rounds to 1), 1 + 2^-11 is exactly half (rounds
    away, to 1 + 2^-10); float32 keeps both."""
    a = np.array([[1 + 2 ** -12, 1 + 2 ** -11]], np.float32)
    b = np.array([[1.0], [1.0]], np.float32)
    exact = gemm.matmul(a, b, algo="tiled")
    with gemm.allow_tf32():
        rounded = gemm.matmul(a, b, algo="tiled")
    assert exact[0, 0] == np.float32(2 + 2 ** -12 + 2 ** -11)
    assert rounded[0, 0] == np.float32(2 + 2 ** -10)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("shape", SHAPES[:3])
def test_16bit_gemm_accumulates_in_float32(host, rng, dtype, shape):
    dtype = BF16 if dtype == "bfloat16" else np.dtype(np.float16)
    m, n, k = shape
    a = rng.standard_normal((2, m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    got = gemm.matmul(a, b, algo="cublas" if dtype == BF16 else "tiled")  # bfloat16 always runs the kernel
    assert got.dtype == dtype
    _assert_within(got, a.astype(np.float64) @ b.astype(np.float64), _bound(a, b, dtype), dtype)
    assert host[f"gemm_{gemm.kernel_suffix(dtype)}"].launches


def test_float16_sums_are_float32_not_float16(host):
    """2048 + 1 + 1 ... : in float16 each +1 would be lost (2048's spacing is 2); float32 keeps them."""
    a = np.ones((1, 65), np.float16)
    a[0, 0] = 2048
    got = gemm.matmul(a, np.ones((65, 1), np.float16), algo="tiled")
    assert got[0, 0] == 2112


CONV_CASES = [
    ((2, 3, 7, 6), (5, 3, 3, 3), ((1, 1), (1, 1), (1, 1), (1, 1), 1)),
    ((1, 4, 9, 8), (6, 4, 3, 2), ((2, 3), (1, 0), (2, 1), (1, 1), 1)),
    ((1, 8, 6, 7), (12, 2, 3, 3), ((1, 1), (1, 1), (1, 1), (1, 1), 4)),
]


def _conv_case(rng, dtype, x_shape, w_shape, geometry, algo):
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    out = np.full(_C.conv2d_output_shape(x.shape, w.shape, *geometry), np.nan, dtype)
    cuda_conv.conv2d_forward(x, w, b, out, *geometry, algo, True)
    stride, pad_begin, pad_end, dilation, groups = geometry
    want = conv2d_reference(x, w, b.astype(np.float64), stride, pad_begin, pad_end, dilation, groups)
    scale = conv2d_reference(np.abs(x), np.abs(w), None, stride, pad_begin, pad_end, dilation, groups)
    depth = w_shape[1] * w_shape[2] * w_shape[3]
    bound = (2.0 ** -10 if np.dtype(dtype) == np.float32 else 0.0) * scale + depth * 2.0 ** -23 * scale
    if algo == "im2col":  # the GEMM's result rounded to the 16-bit type before the bias is added
        bias = np.abs(b.astype(np.float64))[:, None, None]
        bound = bound + HALF_ULP.get(np.dtype(dtype), 0.0) * (np.abs(want) + bias)
    _assert_within(out, np.maximum(want, 0), bound, dtype)  # relu is 1-Lipschitz: the bound holds after it
    assert (out == 0).any() and (out > 0).any()


@pytest.mark.parametrize("algo", ["implicit", "im2col"])
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_on_tensor_cores_is_within_its_bound(host, rng, monkeypatch, tf32, algo, dtype, case):
    monkeypatch.setattr(gemm, "_algorithm", "tiled")
    dtype = BF16 if dtype == "bfloat16" else np.dtype(dtype)
    _conv_case(rng, dtype, *case, algo)
    op = "implicit_conv2d_forward" if algo == "implicit" else "gemm"
    assert host[f"{op}_{gemm.kernel_suffix(dtype)}"].launches


def test_conv2d_auto_runs_16bit_layers_as_implicit_where_its_rule_picks_depthwise(host, rng):
    x, w = rng.standard_normal((1, 4, 5, 5)).astype(np.float16), rng.standard_normal((4, 1, 3, 3)).astype(np.float16)
    geometry = ((1, 1), (1, 1), (1, 1), (1, 1), 4)
    assert cuda_conv.conv2d_heuristic(x.shape, w.shape, *geometry) == "depthwise"
    out = np.empty((1, 4, 5, 5), np.float16)
    cuda_conv.conv2d_forward(x, w, None, out, *geometry, "auto")
    assert host["implicit_conv2d_forward_f16"].launches
    want = conv2d_reference(x, w, None, *geometry)
    _assert_within(out, want, 9 * 2.0 ** -23 * conv2d_reference(np.abs(x), np.abs(w), None, *geometry), np.float16)


def test_the_tf32_switch(monkeypatch):
    monkeypatch.setattr(gemm, "_allow_tf32", False)
    assert gemm.kernel_suffix(np.float32) == "f32" and not gemm.uses_tensor_cores(np.float32)
    with gemm.allow_tf32():
        assert gemm.get_allow_tf32() and gemm.kernel_suffix(np.float32) == "tf32"
        with gemm.allow_tf32(False):
            assert gemm.kernel_suffix(np.float32) == "f32"
        assert gemm.get_allow_tf32()
    assert not gemm.get_allow_tf32()
    assert gemm.kernel_suffix(np.float64) == "f64"  # float64 never runs TF32
    assert gemm.kernel_suffix(np.float16) == "f16" and gemm.uses_tensor_cores(np.float16)
    with pytest.raises(TypeError, match="enabled: expected a bool, got str"):
        gemm.set_allow_tf32("yes")
    monkeypatch.setenv("FASTCONV_CUDA_ALLOW_TF32", "on")
    with pytest.raises(ValueError, match="FASTCONV_CUDA_ALLOW_TF32: expected 0 or 1, got 'on'"):
        gemm._environment_flag("FASTCONV_CUDA_ALLOW_TF32")


class _ComputeTypes:
    """Stands in for CuPy's cupy._core._routines_linalg, whose set_compute_type needs a GPU."""
    COMPUTE_TYPE_DEFAULT, COMPUTE_TYPE_FP32, COMPUTE_TYPE_TF32 = 1, 4, 7

    def __init__(self):
        self.types = {np.dtype(np.float32): 1, np.dtype(np.float16): 1}

    def get_compute_type(self, dtype):
        return self.types[np.dtype(dtype)]

    def set_compute_type(self, dtype, compute_type):
        self.types[np.dtype(dtype)] = compute_type


def test_cublas_runs_with_cupy_s_tf32_compute_type_only_when_allowed(monkeypatch):
    linalg = _ComputeTypes()
    monkeypatch.setattr(gemm, "_cupy_linalg", lambda: linalg)
    monkeypatch.setattr(gemm, "_allow_tf32", False)
    on_gpu = object()  # any array module but numpy
    with gemm._cublas_precision(on_gpu, np.float32):
        assert linalg.get_compute_type(np.float32) == linalg.COMPUTE_TYPE_DEFAULT
    with gemm.allow_tf32(), gemm._cublas_precision(on_gpu, np.float32):
        assert linalg.get_compute_type(np.float32) == linalg.COMPUTE_TYPE_TF32
    with gemm._cublas_precision(on_gpu, np.float16):
        assert linalg.get_compute_type(np.float16) == linalg.COMPUTE_TYPE_FP32
    with gemm._cublas_precision(on_gpu, np.float64):
        pass
    assert linalg.types == {np.dtype(np.float32): 1, np.dtype(np.float16): 1}  # restored
    with gemm.allow_tf32(), gemm._cublas_precision(np, np.float32):  # host arrays: numpy's matmul
        assert linalg.get_compute_type(np.float32) == linalg.COMPUTE_TYPE_DEFAULT


class _OldGpuArray(np.ndarray):
    """A host array that says it lives on a compute capability 7.5 GPU."""
    device = type("Device", (), {"compute_capability": "75"})()


def test_tensor_cores_are_required_before_any_launch(host, monkeypatch):
    monkeypatch.setattr(gemm.backend, "is_cuda_array", lambda a: isinstance(a, _OldGpuArray))
    a = np.ones((4, 4), np.float16).view(_OldGpuArray)
    with pytest.raises(DeviceError, match=r"compute capability 8.0 or newer; this GPU is 7.5"):
        gemm.tiled_gemm(a, a, np.empty((4, 4), np.float16), 1.0, 0.0)
    assert all(kernel.launches == [] for kernel in host.values())


X16, W16 = np.ones((1, 2, 5, 5), np.float16), np.ones((3, 2, 3, 3), np.float16)
GEOMETRY = ((1, 1), (0, 0), (0, 0), (1, 1), 1)


@pytest.mark.parametrize("call, error, message", [
    (lambda: cuda_conv.conv2d_forward(X16, W16.astype(np.float32), None, np.empty((1, 3, 3, 3), np.float16),
                                      *GEOMETRY), TypeError, "weight: dtype float32 does not match float16"),
    (lambda: cuda_conv.conv2d_forward(X16, W16, np.ones(3, np.float32), np.empty((1, 3, 3, 3), np.float16),
                                      *GEOMETRY), TypeError, "bias: dtype float32 does not match float16"),
    (lambda: cuda_conv.conv2d_forward(X16, W16, None, np.empty((1, 3, 3, 3), np.float32), *GEOMETRY),
     TypeError, "out: dtype float32 does not match float16"),
    (lambda: cuda_conv.conv2d_forward(X16.astype(np.int32), W16, None, np.empty((1, 3, 3, 3), np.float16),
                                      *GEOMETRY), TypeError, "input: expected a float32, float64, float16 or bfloat16"),
    (lambda: cuda_conv.conv2d_forward(X16, W16, None, np.empty((1, 3, 3, 3), np.float16), *GEOMETRY, "winograd_2x3"),
     ValueError, r"algo: winograd_2x3 runs float32 and float64 only; a float16 convolution runs as one of"),
    (lambda: cuda_conv.conv2d_backward_input(np.ones((1, 3, 3, 3), np.float16), W16, np.empty((1, 2, 5, 5),
                                             np.float16), *GEOMETRY), TypeError,
     "weight: expected a float32 or float64 array, got dtype float16"),
    (lambda: gemm.matmul(np.ones((2, 3), np.float16), np.ones((3, 2), BF16), algo="tiled"), TypeError,
     "b: dtype bfloat16 does not match float16"),
])
def test_unsupported_dtype_mixes_are_refused_by_name_before_any_launch(host, call, error, message):
    with pytest.raises(error, match=message):
        call()
    assert all(kernel.launches == [] for kernel in host.values())
