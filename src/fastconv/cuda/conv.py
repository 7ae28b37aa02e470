"""conv2d on CUDA: fastconv._C's conv2d_forward, conv2d_backward_input and conv2d_backward_weight,
with their signatures, for CuPy arrays. The forward runs one of five algorithms:

  "im2col"        the column matrix (N, C*kh*kw, P*Q) in torch.nn.functional.unfold's layout
                  (fastconv/cuda/im2col.py), then one batched GEMM per group;
  "implicit"      implicit GEMM (gemm/cuda/gemm.cu): the same GEMM with the column matrix never
                  written, its tiles gathered from the input as they are multiplied, the bias
                  and the ReLU applied as the output tile is written;
  "winograd_2x3"  Winograd F(2x2, 3x3) for 3x3 kernels at stride 1 without dilation (conv.cu's
                  transforms around 16 batched GEMMs, the bias and the ReLU in the output
                  transform): 16 products per 2x2 output tile and channel pair instead of 36;
  "winograd_4x3"  Winograd F(4x4, 3x3), the same with 6x6 input tiles overlapping by 2 and 36
                  GEMMs: 36 products per 4x4 output tile and channel pair instead of 144, with
                  the CPU's transforms (csrc/common/winograd_codelets.h), less accurate than F(2x2)
                  (the CPU's winograd_4x3 tests bound float32's error at 5e-5 of the output's
                  largest value);
  "depthwise"     one input channel per group (groups == in_channels, any channel multiplier):
                  one thread per output element sums its R*S taps (conv.cu, depthwise_body.h),
                  with the bias and the ReLU; a GEMM per group would have a single row.

The GEMMs of "im2col" and the Winograd algorithms are fastconv.cuda.gemm.matmul's: cuBLAS or fastconv's
own tiled GEMM, by fastconv.cuda.gemm.set_algorithm. `algo="auto"` picks by a fixed rule
(conv2d_heuristic), without timing. "depthwise" has gradients of its own: one thread per input
element gathers the output-gradient values that read it, and each weight tap's sum over N*P*Q is
cut into interleaved partial sums that a second kernel adds in order (no atomics: the same bits
every run). The other algorithms' gradients run im2col + GEMM:
  forward          y[n, g]  = w[g] @ cols[n, g]
  input gradient   dx       = col2im(w[g]^T @ dy[n, g])
  weight gradient  dw[g]    = sum_n dy[n, g] @ cols[n, g]^T
The CPU's other algorithms (direct, winograd_2x5, fft) are refused by name.

Precision: float32 GEMMs are exact float32 unless TF32 is allowed (fastconv.cuda.gemm's
set_allow_tf32 / allow_tf32(), as torch.backends.cuda.matmul.allow_tf32; its docstring states the
bound); the Winograd transforms and depthwise stay float32 either way. The forward also takes
float16 and bfloat16 ("im2col", "implicit"; fastconv/cuda/precision.py states the bounds).
"""
import functools
import math

import numpy as np

from fastconv import _C, backend
from fastconv.backend import DeviceError
from fastconv.cuda import _kernel_args as args
from fastconv.cuda import gemm, loader, precision
from fastconv.ops.conv_algo import winograd_variant

ALGORITHMS = ("im2col", "implicit", "winograd_2x3", "winograd_4x3", "depthwise")
# Winograd F(m x m, 3x3)'s output tile size m of each Winograd algorithm.
WINOGRAD_TILE = {"winograd_2x3": 2, "winograd_4x3": 4}
conv2d_output_shape = _C.conv2d_output_shape

# Beyond this many bytes of column matrix, "auto" gathers the columns instead of writing them.
COLUMN_BYTES_LIMIT = 256 << 20

# The depthwise weight gradient sums each tap's N*P*Q products in at most MAX_WEIGHT_PARTS
# interleaved parts of at least MIN_PART_TERMS terms: enough threads to fill a GPU when the layer
# has few taps, few enough parts for the second pass to add. The split depends on the shape alone,
# so every run adds the same values in the same order.
MAX_WEIGHT_PARTS = 256
MIN_PART_TERMS = 64


def conv2d_algorithms():
    return list(ALGORITHMS)


def conv2d_unsupported_reason(algo, input_shape, weight_shape, stride, pad_begin, pad_end, dilation, groups):
    if algo not in ALGORITHMS:
        return f"{algo} runs on the CPU only; on CUDA conv2d runs as one of {ALGORITHMS}"
    if algo in WINOGRAD_TILE and (tuple(weight_shape[2:]) != (3, 3) or tuple(stride) != (1, 1)
                                  or tuple(dilation) != (1, 1)):
        return f"{algo} runs 3x3 kernels at stride 1 without dilation"
    if algo == "depthwise" and input_shape[1] != groups:
        return "depthwise needs one input channel per group (groups == in_channels)"
    return None


def conv2d_heuristic(input_shape, weight_shape, stride, pad_begin, pad_end, dilation, groups, dtype=np.float32):
    """The algorithm algo="auto" runs on CUDA: a fixed rule, not measured on a GPU.

    The depthwise kernels wherever each group has one input channel, as on the CPU (a GEMM per
    group would have a single row), in every direction; Winograd for 3x3 stride-1 layers with at
    least 32 channels in and out per group (its 2.25x or 4x fewer multiplications should outweigh
    its transforms' memory traffic once the GEMMs are that deep), F(4x4, 3x3) or F(2x2, 3x3) by
    the CPU's rule (fastconv.ops.conv_algo.winograd_variant: F(4x4) unless the output is too
    small to fill its 4x4 tiles); implicit GEMM for
    grouped layers (many small GEMMs, no column matrix per group) and where the column matrix
    would exceed COLUMN_BYTES_LIMIT; otherwise im2col, whose GEMM is cuBLAS's by default."""
    k, c_per_group, kh, kw = weight_shape
    geometry = (stride, pad_begin, pad_end, dilation, groups)
    if conv2d_unsupported_reason("depthwise", input_shape, weight_shape, *geometry) is None:
        return "depthwise"
    if (conv2d_unsupported_reason("winograd_2x3", input_shape, weight_shape, *geometry) is None
            and min(k // groups, c_per_group) >= 32):
        # F(4x4) vs F(2x2) is the CPU's choice, unmeasured on a GPU: F(4x4)'s 36 GEMMs are each a
        # quarter as wide as F(2x2)'s 16, which may favour F(2x2) there on mid-sized outputs.
        return winograd_variant(input_shape, weight_shape, geometry)
    n, c = input_shape[:2]
    p, q = _C.conv2d_output_shape(tuple(input_shape), tuple(weight_shape), *geometry)[2:]
    column_bytes = n * c * kh * kw * p * q * np.dtype(dtype).itemsize
    if groups > 1 or column_bytes > COLUMN_BYTES_LIMIT:
        return "implicit"
    return "im2col"


def conv2d_weight_transform_tile(algo, input_shape, weight_shape, stride, pad_begin, pad_end, dilation, groups, use):
    return 0  # Winograd's filter transform is made by each call (16 values per filter)


def conv2d_transformed_weight_size(algo, weight_shape, groups, use, tile=0):
    return 0


def _check_algo(algo, input_shape, weight_shape, geometry):
    reason = conv2d_unsupported_reason(algo, input_shape, weight_shape, *geometry)
    if reason is not None:
        raise ValueError(f"algo: {reason}")


def _columns():
    try:
        from fastconv.cuda import im2col
    except ImportError as exc:
        raise DeviceError("conv2d: this build has no CUDA im2col kernels (fastconv/cuda/im2col.py)") from exc
    return im2col


def _geometry(input_shape, weight_shape, stride, pad_begin, pad_end, dilation, groups):
    """conv2d's output shape after fastconv._C's checks of the arguments (they read no array)."""
    return tuple(_C.conv2d_output_shape(tuple(input_shape), tuple(weight_shape), stride, pad_begin, pad_end, dilation,
                                        groups))


def _im2col(x, weight_shape, stride, pad_begin, pad_end, dilation):
    _, _, kh, kw = weight_shape
    if precision.is_half(x.dtype):
        return precision.im2col_16bit(x, kh, kw, stride, pad_begin, pad_end, dilation)
    columns = _columns()
    shape = columns.columns_shape(columns.column_geometry(x.shape, kh, kw, stride, pad_begin, dilation, pad_end))
    cols = backend.empty(shape, x.dtype, backend.device_of(x))
    columns.im2col(x, kh, kw, stride, pad_begin, dilation, cols, pad_end=pad_end)
    return cols


def _by_group(array, n, groups):
    """(N, G, rows per group, cols) view of an (N, rows, ...) C-contiguous array (cols named, not
    -1: N may be 0)."""
    return array.reshape(n, groups, array.shape[1] // groups, math.prod(array.shape[2:]))


def _bias_and_relu(out, b, relu):
    if b is not args.NULL:
        out += b.reshape(1, -1, 1, 1)
    if relu:
        backend.array_module(out).maximum(out, 0, out=out)  # NaN passes, as torch.relu's


def _im2col_forward(x, w, b, out, stride, pad_begin, pad_end, dilation, groups, relu):
    n, k = out.shape[:2]
    cols = _im2col(x, w.shape, stride, pad_begin, pad_end, dilation)
    _by_group(out, n, groups)[...] = gemm.matmul(w.reshape(groups, k // groups, -1), _by_group(cols, n, groups))
    _bias_and_relu(out, b, relu)


def _implicit_forward(x, w, b, out, stride, pad_begin, pad_end, dilation, groups, relu):
    n, c, h, wd = x.shape
    k, _, kh, kw = w.shape
    p, q = out.shape[2:]
    suffix = gemm.kernel_suffix(x.dtype)  # the tensor-core kernel for TF32 and the 16-bit types
    if gemm.uses_tensor_cores(x.dtype):
        gemm.require_tensor_cores(x)
    tile_m, tile_n = gemm.TILES[suffix]
    tiles = groups * -(-(k // groups) // tile_m) * -(-(n * p * q) // tile_n)
    sizes = args.int64s(n, c, h, wd, k, kh, kw, *stride, *pad_begin, *dilation, p, q, groups)
    loader.launch_blocks(loader.function("gemm", f"implicit_conv2d_forward_{suffix}"), tiles,
                         (*sizes, x, w, b, out, args.flag(relu)), threads=gemm.THREADS)


def _winograd_forward(algo, x, w, b, out, stride, pad_begin, pad_end, dilation, groups, relu):
    """conv.cu's winograd_<tiling>_{filter,input,output} kernels around alpha^2 batched GEMMs, for
    m x m output tiles of alpha x alpha points (alpha = m + 2)."""
    n, c, h, wd = x.shape
    k = w.shape[0]
    p, q = out.shape[2:]
    tile = WINOGRAD_TILE[algo]
    points = (tile + 2) ** 2
    geometry = (n, c, h, wd, p, q, *pad_begin, min(h, h + pad_end[0]), min(wd, wd + pad_end[1]))
    tiles = n * -(-p // tile) * -(-q // tile)
    device = backend.device_of(x)
    u = backend.empty((points, k, c // groups), x.dtype, device)
    v = backend.empty((points, c, tiles), x.dtype, device)
    args.launch("conv", f"{algo}_filter", k * (c // groups), (), (w, u))
    args.launch("conv", f"{algo}_input", c * tiles, geometry, (x, v))
    # Per point and group: (K/G, C/G) @ (C/G, tiles); the result is [points][K][tiles].
    m = gemm.matmul(u.reshape(points, groups, k // groups, c // groups),
                    v.reshape(points, groups, c // groups, tiles))
    loader.launch(args.kernel("conv", f"{algo}_output", x.dtype), k * tiles,
                  (*args.int64s(k * tiles, *geometry, k), m, b, out, args.flag(relu)))


def _depthwise_sizes(input_shape, weight_shape, output_shape, stride, pad_begin, dilation):
    """The 15 int64 sizes of conv.cu's depthwise kernels, in depthwise::Geometry's order."""
    n, c, h, wd = input_shape
    k, _, kh, kw = weight_shape
    return (n, c, k, h, wd, kh, kw, *stride, *pad_begin, *dilation, *output_shape[2:])


def _depthwise_forward(x, w, b, out, stride, pad_begin, pad_end, dilation, groups, relu):
    sizes = _depthwise_sizes(x.shape, w.shape, out.shape, stride, pad_begin, dilation)
    args.launch("conv", "depthwise_forward", out.size, sizes, (x, w, b, out, args.flag(relu)))


FORWARD = {"im2col": _im2col_forward, "implicit": _implicit_forward, "depthwise": _depthwise_forward,
           **{algo: functools.partial(_winograd_forward, algo) for algo in WINOGRAD_TILE}}


def conv2d_forward(input, weight, bias, out, stride, pad_begin, pad_end, dilation, groups, algo="im2col",
                   relu=False, transformed=None):
    x = precision.conv_input(input, "input")  # float16 / bfloat16 too: fastconv/cuda/precision.py
    w = precision.conv_input(weight, "weight", x.dtype)
    geometry = (stride, pad_begin, pad_end, dilation, groups)
    shape = _geometry(x.shape, w.shape, *geometry)
    if algo == "auto":
        algo = precision.auto_algorithm(conv2d_heuristic(x.shape, w.shape, *geometry, x.dtype), x.dtype)
    _check_algo(algo, x.shape, w.shape, geometry)
    precision.check_algorithm(algo, x.dtype)
    args.output(out, "out", shape, x.dtype)
    b = precision.conv_vector(bias, "bias", shape[1], x.dtype)
    FORWARD[algo](x, w, b, out, *geometry, relu)


def _gradient_kernel(algo, input_shape, weight_shape, grad_output, *conv_args):
    """The algorithm whose kernel computes a gradient of the convolution (depthwise's own, else
    im2col's), with the geometry, grad_output's shape and `algo` checked first."""
    shape = _geometry(input_shape, weight_shape, *conv_args)
    if algo == "auto":
        algo = conv2d_heuristic(input_shape, weight_shape, *conv_args, grad_output.dtype)
    _check_algo(algo, input_shape, weight_shape, conv_args)
    if tuple(grad_output.shape) != shape:
        raise ValueError(f"grad_output: expected shape {shape}, got {tuple(grad_output.shape)}")
    return "depthwise" if algo == "depthwise" else "im2col"


def _im2col_backward_input(dy, w, grad_input, stride, pad_begin, pad_end, dilation, groups):
    n, k, p, q = dy.shape
    cols = gemm.matmul(w.reshape(groups, k // groups, -1).transpose(0, 2, 1), _by_group(dy, n, groups))
    rows = w.shape[1] * groups * w.shape[2] * w.shape[3]
    _columns().col2im(cols.reshape(n, rows, p * q), w.shape[2], w.shape[3], stride, pad_begin, dilation,
                      grad_input, pad_end=pad_end)


def _depthwise_backward_input(dy, w, grad_input, stride, pad_begin, pad_end, dilation, groups):
    sizes = _depthwise_sizes(grad_input.shape, w.shape, dy.shape, stride, pad_begin, dilation)
    args.launch("conv", "depthwise_input_gradient", grad_input.size, sizes, (dy, w, grad_input))


def conv2d_backward_input(grad_output, weight, grad_input, stride, pad_begin, pad_end, dilation, groups,
                          algo="im2col", transformed=None):
    w = args.float_input(weight, "weight")
    dy = args.float_input(grad_output, "grad_output", w.dtype)
    geometry = (stride, pad_begin, pad_end, dilation, groups)
    kernel = _gradient_kernel(algo, grad_input.shape, w.shape, dy, *geometry)
    args.output(grad_input, "grad_input", grad_input.shape, w.dtype)
    BACKWARD_INPUT[kernel](dy, w, grad_input, *geometry)


def _im2col_backward_weight(x, dy, grad_weight, stride, pad_begin, pad_end, dilation, groups):
    n = x.shape[0]
    cols = _im2col(x, grad_weight.shape, stride, pad_begin, pad_end, dilation)
    per_image = gemm.matmul(_by_group(dy, n, groups), _by_group(cols, n, groups).transpose(0, 1, 3, 2))
    grad_weight[...] = per_image.sum(axis=0).reshape(grad_weight.shape)


def weight_gradient_parts(terms):
    """How many interleaved partial sums the depthwise weight gradient adds each tap's `terms`
    products in (MAX_WEIGHT_PARTS, MIN_PART_TERMS)."""
    return max(1, min(MAX_WEIGHT_PARTS, terms // MIN_PART_TERMS))


def _depthwise_backward_weight(x, dy, grad_weight, stride, pad_begin, pad_end, dilation, groups):
    n, _, p, q = dy.shape
    taps = grad_weight.size
    parts = weight_gradient_parts(n * p * q)
    partials = backend.empty((taps, parts), np.float64, backend.device_of(x))
    sizes = _depthwise_sizes(x.shape, grad_weight.shape, dy.shape, stride, pad_begin, dilation)
    args.launch("conv", "depthwise_weight_parts", partials.size, (*sizes, parts), (x, dy, partials))
    loader.launch(args.kernel("conv", "depthwise_weight_sum", x.dtype), taps,
                  (*args.int64s(taps, parts), partials, grad_weight))


def conv2d_backward_weight(input, grad_output, grad_weight, grad_bias, stride, pad_begin, pad_end, dilation, groups,
                           algo="im2col"):
    x = args.float_input(input, "input")
    dy = args.float_input(grad_output, "grad_output", x.dtype)
    geometry = (stride, pad_begin, pad_end, dilation, groups)
    kernel = _gradient_kernel(algo, x.shape, grad_weight.shape, dy, *geometry)
    args.output(grad_weight, "grad_weight", grad_weight.shape, x.dtype)
    BACKWARD_WEIGHT[kernel](x, dy, grad_weight, *geometry)
    if grad_bias is not None:
        args.output(grad_bias, "grad_bias", (dy.shape[1],), x.dtype)
        grad_bias[...] = dy.sum(axis=(0, 2, 3))


BACKWARD_INPUT = {"im2col": _im2col_backward_input, "depthwise": _depthwise_backward_input}
BACKWARD_WEIGHT = {"im2col": _im2col_backward_weight, "depthwise": _depthwise_backward_weight}
