"""conv2d on CUDA in float16 and bfloat16: which arrays and algorithms it takes, and the 16-bit
column matrix of its "im2col" algorithm.

float16 / bfloat16 inputs and weights (bias of the same dtype) run the forward as "im2col" or
"implicit", on tensor cores (mma.sync m16n8k16): every product of two 16-bit values is exact in
float32 (11 + 11 significant bits), the sums are float32, and the output is rounded to the
input's dtype once ("implicit": after the bias and the ReLU) or twice ("im2col": the GEMM's
result, then the bias added in the 16-bit type). So, with S = sum over the taps of |w| |x|:
    "implicit"  |y - exact| <= C/G*kh*kw * 2^-23 * S + u * |y|
    "im2col"    |y - exact| <= C/G*kh*kw * 2^-23 * S + u * (2 |y| + |bias|)
u = 2^-11 (float16) or 2^-8 (bfloat16), half a unit in the last place. "auto" picks "implicit"
where its fixed rule would pick an algorithm that has no 16-bit kernels (the Winograd
transforms, depthwise). Gradients run float32 / float64 only. The tensor cores need a GPU of
compute capability 8.0 or newer (fastconv.cuda.gemm.require_tensor_cores).
"""
import numpy as np

from fastconv import backend
from fastconv.cuda import _kernel_args as args
from fastconv.cuda import gemm, loader
from fastconv.ops._checks import contiguous

HALF_ALGORITHMS = ("im2col", "implicit")


def conv_input(array, name, dtype=None):
    """`array` as a C-contiguous array of a dtype conv2d's forward multiplies (float32, float64,
    float16, bfloat16), of `dtype` when one is given."""
    array = gemm.check_dtype(array, name)
    if dtype is not None and array.dtype != dtype:
        raise TypeError(f"{name}: dtype {array.dtype} does not match {np.dtype(dtype)}")
    return contiguous(array)


def conv_vector(array, name, length, dtype):
    """An optional per-channel input: None (args.NULL) or `length` values of `dtype`."""
    if array is None:
        return args.NULL
    array = conv_input(array, name, dtype)
    if tuple(array.shape) != (length,):
        raise ValueError(f"{name}: expected shape ({length},), got {tuple(array.shape)}")
    return array


def is_half(dtype):
    return np.dtype(dtype) in gemm.HALF_DTYPES


def auto_algorithm(algo, dtype):
    """The algorithm "auto" runs for `dtype`, given the one its rule picked: "implicit" for a
    16-bit dtype where that one has no 16-bit kernels."""
    return "implicit" if is_half(dtype) and algo not in HALF_ALGORITHMS else algo


def check_algorithm(algo, dtype):
    if is_half(dtype) and algo not in HALF_ALGORITHMS:
        raise ValueError(f"algo: {algo} runs float32 and float64 only; a {np.dtype(dtype)} convolution runs as one "
                         f"of {HALF_ALGORITHMS}")


def im2col_16bit(x, kh, kw, stride, pad_begin, pad_end, dilation):
    """The (N, C*kh*kw, P*Q) column matrix of a float16 / bfloat16 x (conv.cu's im2col_b16, the
    layout of fastconv.cuda.im2col's)."""
    from fastconv.cuda import im2col
    geometry = im2col.column_geometry(x.shape, kh, kw, stride, pad_begin, dilation, pad_end)
    cols = backend.empty(im2col.columns_shape(geometry), x.dtype, backend.device_of(x))
    loader.launch(loader.function("conv", "im2col_b16"), cols.size, args.int64s(cols.size, *geometry) + (x, cols))
    return cols
