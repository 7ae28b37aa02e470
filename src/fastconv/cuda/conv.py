"""conv2d on CUDA: fastconv._C's conv2d_forward, conv2d_backward_input and conv2d_backward_weight,
with their signatures, for CuPy arrays. The forward runs one of six algorithms:

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
                  with the bias and the ReLU; a GEMM per group would have a single row;
  "fft"           real FFTs of the whole zero-padded planes (cuFFT, through cupy.fft and its
                  plan cache) on a grid of fast lengths (2^a 3^b 5^c 7^d) large enough that no
                  product wraps around, fastconv's per-bin complex products summed over the
                  channels (conv.cu, spectral_body.h), the inverse FFT, then the bias and the
                  ReLU: its cost barely grows with the kernel's size. A stride keeps every
                  stride-th value of the stride-1 output (the gradients zero-upsample the output
                  gradient): the CPU's tiled FFT refuses strides, this whole-plane one runs them.
                  Dilation is refused, as on the CPU.

The GEMMs of "im2col" and the Winograd algorithms are fastconv.cuda.gemm.matmul's: cuBLAS or fastconv's
own tiled GEMM, by fastconv.cuda.gemm.set_algorithm. `algo="auto"` in fastconv.ops times the
likely algorithms on the device once per layer shape and remembers the fastest on disk
(conv2d_resolve); called here directly, "auto" is the fixed rule (conv2d_heuristic). An
algorithm's workspace (conv2d_workspace_bytes) is checked against the device's free memory
before anything is allocated. "depthwise" and "fft" have gradients of their own. FFT's are
the same per-bin products with the other spectra (spectral_body.h derives them). Depthwise's:
one thread per input element gathers the output-gradient values that read it, and each weight
tap's sum over N*P*Q is cut into interleaved partial sums that a second kernel adds in order
(no atomics: the same bits every run). The other algorithms' gradients run im2col + GEMM:
  forward          y[n, g]  = w[g] @ cols[n, g]
  input gradient   dx       = col2im(w[g]^T @ dy[n, g])
  weight gradient  dw[g]    = sum_n dy[n, g] @ cols[n, g]^T
The CPU's other algorithms (direct, winograd_2x5, winograd_4x5, winograd_2x7, winograd_4x2) are refused
by name.

Precision: float32 GEMMs are exact float32 unless TF32 is allowed (fastconv.cuda.gemm's
set_allow_tf32 / allow_tf32(), as torch.backends.cuda.matmul.allow_tf32; its docstring states the
bound); the Winograd transforms, FFT products and depthwise stay float32 either way. The forward
also takes float16 and bfloat16 ("im2col", "implicit"; fastconv/cuda/precision.py states the bounds).
"""
import functools
import math
import os

import numpy as np

from fastconv import _C, backend
from fastconv._version import __version__
from fastconv.backend import DeviceError
from fastconv.cuda import _kernel_args as args
from fastconv.cuda import gemm, loader, precision
from fastconv.ops import conv_algo
from fastconv.ops.conv_algo import winograd_variant

ALGORITHMS = ("im2col", "implicit", "winograd_2x3", "winograd_4x3", "depthwise", "fft")
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
    if algo == "fft" and tuple(dilation) != (1, 1):
        return "fft needs dilation 1"
    if algo == "depthwise" and input_shape[1] != groups:
        return "depthwise needs one input channel per group (groups == in_channels)"
    return None


def conv2d_heuristic(input_shape, weight_shape, stride, pad_begin, pad_end, dilation, groups, dtype=np.float32,
                     candidates=None):
    """The fixed rule on CUDA: the first algorithm of its order of preference among `candidates`
    (default: every algorithm that runs the shape). algo="auto" of fastconv.ops starts from it
    and times it against the likely others (conv2d_resolve); deterministic mode runs it as is.

    The depthwise kernels wherever each group has one input channel, as on the CPU (a GEMM per
    group would have a single row), in every direction; Winograd for 3x3 stride-1 layers with at
    least 32 channels in and out per group (its 2.25x or 4x fewer multiplications should outweigh
    its transforms' memory traffic once the GEMMs are that deep), F(4x4, 3x3) or F(2x2, 3x3) by
    the CPU's rule (fastconv.ops.conv_algo.winograd_variant: F(4x4) unless the output is too
    small to fill its 4x4 tiles); FFT for ungrouped stride-1 kernels from 7x7 on (the CPU's
    rule: its products cost the same whatever the kernel's size); implicit GEMM for grouped
    layers (many small GEMMs, no column matrix per group) and where the column matrix would
    exceed COLUMN_BYTES_LIMIT; otherwise im2col, whose GEMM is cuBLAS's by default. None of it
    measured on a GPU: the timing in conv2d_resolve is what corrects it."""
    geometry = (stride, pad_begin, pad_end, dilation, groups)
    if candidates is None:
        candidates = [a for a in ALGORITHMS
                      if conv2d_unsupported_reason(a, input_shape, weight_shape, *geometry) is None]
    return next(a for a in _preferences(input_shape, weight_shape, geometry, dtype) if a in candidates)


def _preferences(input_shape, weight_shape, geometry, dtype):
    """Every algorithm in conv2d_heuristic's order of preference for the shape."""
    k, c_per_group, kh, kw = weight_shape
    stride, _, _, dilation, groups = geometry
    order = ["depthwise"]
    if min(k // groups, c_per_group) >= 32:
        # F(4x4) vs F(2x2) is the CPU's choice, unmeasured on a GPU: F(4x4)'s 36 GEMMs are each a
        # quarter as wide as F(2x2)'s 16, which may favour F(2x2) there on mid-sized outputs.
        order.append(winograd_variant(input_shape, weight_shape, geometry))
    if tuple(stride) == (1, 1) and groups == 1 and min(kh, kw) >= 7:
        order.append("fft")
    n, c = input_shape[:2]
    p, q = _geometry(input_shape, weight_shape, *geometry)[2:]
    column_bytes = n * c * kh * kw * p * q * np.dtype(dtype).itemsize
    gathered_first = groups > 1 or column_bytes > COLUMN_BYTES_LIMIT
    return order + (["implicit", "im2col"] if gathered_first else ["im2col", "implicit"])


# ---- algo="auto": timed on the device, remembered on disk ----

# The device's timing: an untimed warm-up run (kernel compiles, cuFFT plans, cuBLAS handles), a
# timed run (a candidate over twice the leader's is dropped there), then one more timed run of
# the others. A candidate that raises anything (out of memory, a cuFFT or cuBLAS error) is skipped.
DEVICE_TIMING = dict(rounds=1, max_rounds=1, warm_up=True, skipped=(Exception,))


def event_time(run, algo):
    """Seconds of one run(algo) on the device, between two CUDA events of the current stream."""
    import cupy
    start, end = cupy.cuda.Event(), cupy.cuda.Event()
    start.record()
    run(algo)
    end.record()
    end.synchronize()
    return cupy.cuda.get_elapsed_time(start, end) / 1e3


def device_properties():
    """(name, compute capability as "major.minor") of the current CUDA device."""
    import cupy
    return _properties(cupy.cuda.Device().id)


@functools.lru_cache(maxsize=None)
def _properties(device_id):
    import cupy
    properties = cupy.cuda.runtime.getDeviceProperties(device_id)
    name = properties["name"]
    return (name.decode() if isinstance(name, bytes) else name), f"{properties['major']}.{properties['minor']}"


def free_device_memory(array=None):
    """Bytes the current CUDA device can still allocate: the driver's free memory
    (cudaMemGetInfo) plus what CuPy's memory pool holds unused; None for a host array (the host
    runs of these kernels have no device limit)."""
    if array is not None and not backend.is_cuda_array(array):
        return None
    import cupy
    return cupy.cuda.runtime.memGetInfo()[0] + cupy.get_default_memory_pool().free_bytes()


def device_key():
    """What a timing on CUDA depends on besides the layer: the GPU's name and compute capability,
    the GEMM im2col and Winograd run (cuBLAS or the tiled one), whether float32 GEMMs may run in
    TF32 (fastconv.cuda.gemm.set_allow_tf32; CUPY_TF32 for cuBLAS) and fastconv's version.
    conv_cache keys CUDA choices by it."""
    name, capability = device_properties()
    tf32 = gemm.get_allow_tf32() or os.environ.get("CUPY_TF32", "0") != "0"
    return f"{name}|sm {capability}|gemm {gemm.get_algorithm()}|tf32 {int(tf32)}|{__version__}"


def _direction_kernel(algo, direction):
    """The algorithm whose kernels run `algo`'s `direction`: its own forward; depthwise's and
    FFT's own gradients; im2col's gradients for the others."""
    if direction == "forward" or algo in ("depthwise", "fft"):
        return algo
    return "im2col"


def _fitting(algorithms, direction, input_shape, weight_shape, geometry, dtype, free):
    """The algorithms whose workspace fits in `free` bytes (all of them where free is None)."""
    if free is None:
        return list(algorithms)
    return [a for a in algorithms
            if conv2d_workspace_bytes(a, direction, input_shape, weight_shape, *geometry, dtype) <= free]


def _auto(direction, input_shape, weight_shape, geometry, dtype, free):
    """(the fixed rule's pick, the candidates to time) for `direction`: every algorithm that runs
    the shape with a kernel of its own in that direction and whose workspace fits in `free`
    bytes; where none fits, the rule's pick over all of them (its workspace check then says
    what it needs)."""
    runnable = [a for a in ALGORITHMS if conv2d_unsupported_reason(a, input_shape, weight_shape, *geometry) is None
                and _direction_kernel(a, direction) == a]
    candidates = _fitting(runnable, direction, input_shape, weight_shape, geometry, dtype, free) or runnable
    return conv2d_heuristic(input_shape, weight_shape, *geometry, dtype, candidates=candidates), candidates


def conv2d_resolve(direction, run, input_shape, weight_shape, geometry, dtype):
    """algo="auto" of fastconv.ops on CUDA: the algorithm for one direction ("forward", "input",
    "weight") of a layer, chosen once per device and shape. conv2d_heuristic's pick and the
    likely others (fastconv.ops.conv_algo.likely_candidates: FFT from 5x5 kernels on, one
    Winograd tiling) whose workspace fits in the device's free memory are timed on the call's
    own arrays with CUDA events (`run(algo)` runs the call), all in the first call (a kernel's
    first run compiles it: spread over calls, that would land in the timings), a candidate that
    raises skipped;
    the fastest is kept for the process and in the disk cache under device_key()
    (fastconv.conv_cache.clear() forgets both). Deterministic mode runs the fixed rule."""
    input_shape, weight_shape, dtype = tuple(input_shape), tuple(weight_shape), str(np.dtype(dtype))
    machine = device_key()
    key = ("cuda", machine, input_shape, weight_shape, geometry, dtype, direction)
    if conv_algo.choice(key) is not None:
        return conv_algo.choice(key)
    first, candidates = _auto(direction, input_shape, weight_shape, geometry, dtype, free_device_memory())
    likely = conv_algo.likely_candidates(input_shape, weight_shape, geometry, candidates)
    return conv_algo.choose(key, repr(key[2:]), run, first, candidates, likely, machine, online=False,
                            timer=event_time, **DEVICE_TIMING)


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


# ---- FFT ----

COMPLEX = {np.dtype(np.float32): np.complex64, np.dtype(np.float64): np.complex128}


def _fast_length(n):
    """The smallest length >= n with no prime factor above 7: the sizes cuFFT runs fastest."""
    while True:
        rest = n
        for prime in (2, 3, 5, 7):
            while rest % prime == 0:
                rest //= prime
        if rest == 1:
            return n
        n += 1


def fft_grid(input_shape, pad_begin, pad_end):
    """(F_h, F_w): each padded input axis (H + pad_begin + pad_end) rounded up to a fast length.
    No product wraps around on it: the forward's outputs 0..Hp-R read padded rows up to Hp - 1,
    the input gradient (Hp - R + 1 gradient rows convolved with R taps) has Hp rows, and the
    weight gradient's lags 0..R-1 read gradient rows p and input rows p + r < Hp."""
    return tuple(_fast_length(h + b + e) for h, b, e in zip(input_shape[2:], pad_begin, pad_end))


def _spectra(planes, grid):
    """The real 2-D DFT of (..., h, w) planes zero-padded at their end to `grid`: cuFFT through
    cupy.fft (and its plan cache); numpy.fft for host arrays. complex64 for float32."""
    xp = backend.array_module(planes)
    return xp.ascontiguousarray(xp.fft.rfft2(planes, s=grid).astype(COMPLEX[planes.dtype], copy=False))


def _planes(spectra, grid, dtype):
    """The inverse of _spectra (scaled by 1 / (F_h F_w)): the real F_h x F_w planes."""
    return backend.array_module(spectra).fft.irfft2(spectra, s=grid).astype(dtype, copy=False)


def _padded_input(x, pad_begin, pad_end, grid):
    """x with its padding written as zeros, in F_h x F_w planes; rows and columns a negative end
    padding cuts off are left out. Without begin padding, x itself (the DFT zero-pads the end)."""
    n, c, h, w = x.shape
    kept_h, kept_w = h + min(pad_end[0], 0), w + min(pad_end[1], 0)
    if tuple(pad_begin) == (0, 0) and (kept_h, kept_w) == (h, w):
        return x
    padded = backend.zeros((n, c, *grid), x.dtype, backend.device_of(x))
    padded[:, :, pad_begin[0]:pad_begin[0] + kept_h, pad_begin[1]:pad_begin[1] + kept_w] = x[:, :, :kept_h, :kept_w]
    return padded


def _strided(planes, stride, shape):
    """The (P, Q) positions of a stride-1 output grid that a strided convolution keeps."""
    (sh, sw), (p, q) = stride, shape
    return planes[:, :, :(p - 1) * sh + 1:sh, :(q - 1) * sw + 1:sw]


def _upsampled(dy, stride, grid):
    """The output gradient on the stride-1 output grid (zeros between a stride's positions);
    dy itself at stride 1 (the DFT zero-pads the end)."""
    if tuple(stride) == (1, 1):
        return dy
    full = backend.zeros((*dy.shape[:2], *grid), dy.dtype, backend.device_of(dy))
    _strided(full, stride, dy.shape[2:])[...] = dy
    return full


def _spectral_product(op, a, b, planes, sizes, dtype):
    """conv.cu's spectral_<op> kernel: `planes` (two sizes) of products of spectra a and b per
    bin (spectral_body.h); sizes = (N, C, K, groups)."""
    bins = a.shape[-2] * a.shape[-1]
    out = backend.empty((*planes, *a.shape[-2:]), a.dtype, backend.device_of(a))
    loader.launch(args.kernel("conv", f"spectral_{op}", dtype), out.size,
                  (*args.int64s(out.size, *sizes, bins), a, b, out))
    return out


def _fft_forward(x, w, b, out, stride, pad_begin, pad_end, dilation, groups, relu):
    """y = IDFT(sum_c X conj(W)) on the stride-1 grid, subsampled by the stride."""
    if out.size == 0:  # no transform of an empty batch (a cuFFT plan needs one)
        return
    n, c = x.shape[:2]
    k = w.shape[0]
    grid = fft_grid(x.shape, pad_begin, pad_end)
    x_spectra = _spectra(_padded_input(x, pad_begin, pad_end, grid), grid)
    y_spectra = _spectral_product("forward", x_spectra, _spectra(w, grid), (n, k), (n, c, k, groups), x.dtype)
    out[...] = _strided(_planes(y_spectra, grid, x.dtype), stride, out.shape[2:])
    _bias_and_relu(out, b, relu)


def _fft_backward_input(dy, w, grad_input, stride, pad_begin, pad_end, dilation, groups):
    """dx_padded = IDFT(sum_k DY W), DY the spectra of the upsampled output gradient; dx is its
    rows and columns inside the padding (0 where a negative end padding cut the input)."""
    if grad_input.size == 0:
        return
    n, c, h, wd = grad_input.shape
    k = w.shape[0]
    grid = fft_grid(grad_input.shape, pad_begin, pad_end)
    dy_spectra = _spectra(_upsampled(dy, stride, grid), grid)
    dx_spectra = _spectral_product("input_gradient", dy_spectra, _spectra(w, grid), (n, c), (n, c, k, groups),
                                   dy.dtype)
    padded = _planes(dx_spectra, grid, dy.dtype)
    kept_h, kept_w = h + min(pad_end[0], 0), wd + min(pad_end[1], 0)
    if (kept_h, kept_w) != (h, wd):
        grad_input[...] = 0
    grad_input[:, :, :kept_h, :kept_w] = padded[:, :, pad_begin[0]:pad_begin[0] + kept_h,
                                                pad_begin[1]:pad_begin[1] + kept_w]


def _fft_backward_weight(x, dy, grad_weight, stride, pad_begin, pad_end, dilation, groups):
    """dw = IDFT(sum_n X conj(DY)) at lags 0..R-1, 0..S-1."""
    if x.shape[0] == 0:
        grad_weight[...] = 0
        return
    n, c = x.shape[:2]
    k, c_per_group, r, s = grad_weight.shape
    grid = fft_grid(x.shape, pad_begin, pad_end)
    x_spectra = _spectra(_padded_input(x, pad_begin, pad_end, grid), grid)
    dy_spectra = _spectra(_upsampled(dy, stride, grid), grid)
    dw_spectra = _spectral_product("weight_gradient", x_spectra, dy_spectra, (k, c_per_group), (n, c, k, groups),
                                   x.dtype)
    grad_weight[...] = _planes(dw_spectra, grid, x.dtype)[:, :, :r, :s]


# ---- workspace ----

def _im2col_workspace(direction, input_shape, weight_shape, output_shape, geometry):
    """Values: the column matrix; the forward's GEMM result before it is copied into the output;
    the weight gradient's per-image products before their sum."""
    n, c = input_shape[:2]
    k, c_per_group, kh, kw = weight_shape
    columns = n * c * kh * kw * math.prod(output_shape[2:])
    extra = {"forward": math.prod(output_shape), "input": 0, "weight": n * k * c_per_group * kh * kw}
    return columns + extra[direction]


def _winograd_workspace(tile, direction, input_shape, weight_shape, output_shape, geometry):
    """Values of U (points, K, C/G), V (points, C, tiles) and M (points, K, tiles)."""
    n, c = input_shape[:2]
    k, c_per_group = weight_shape[:2]
    tiles = n * -(-output_shape[2] // tile) * -(-output_shape[3] // tile)
    return (tile + 2) ** 2 * (k * c_per_group + c * tiles + k * tiles)


def _fft_workspace(direction, input_shape, weight_shape, output_shape, geometry):
    """Values (a complex value is two) of the padded or upsampled planes, their spectra, the
    filters' spectra, the product's spectra and its inverse transform."""
    n, c = input_shape[:2]
    k, c_per_group = weight_shape[:2]
    _, pad_begin, pad_end, _, _ = geometry
    grid = fft_grid(input_shape, pad_begin, pad_end)
    plane, spectrum = math.prod(grid), 2 * grid[0] * (grid[1] // 2 + 1)
    planes = {"forward": (n * c, k * c_per_group, n * k), "input": (n * k, k * c_per_group, n * c),
              "weight": (n * c + n * k, 0, k * c_per_group)}[direction]
    inputs, filters, outputs = planes
    return inputs * (plane + spectrum) + filters * spectrum + outputs * (spectrum + plane)


def _depthwise_workspace_bytes(direction, input_shape, weight_shape, output_shape, itemsize):
    """The weight gradient's float64 partial sums; nothing in the other directions."""
    if direction != "weight":
        return 0
    return math.prod(weight_shape) * weight_gradient_parts(output_shape[0] * math.prod(output_shape[2:])) * 8


WORKSPACE_VALUES = {"im2col": _im2col_workspace, "fft": _fft_workspace,
                    **{algo: functools.partial(_winograd_workspace, tile) for algo, tile in WINOGRAD_TILE.items()}}


def conv2d_workspace_bytes(algo, direction, input_shape, weight_shape, stride, pad_begin, pad_end, dilation, groups,
                           dtype=np.float32):
    """Bytes of device memory `algo` allocates for one call in `direction` ("forward", "input",
    "weight") besides the arrays passed in, from the shapes alone (Python integers: no
    overflow), before anything is allocated: the column matrix, Winograd's transformed tiles,
    FFT's padded planes and spectra (their sum: at most that is alive at once). cuFFT's own work
    area, which CuPy's plan cache keeps, is not counted. Implicit GEMM needs none; a gradient
    runs its algorithm's kernel (im2col's for implicit GEMM and Winograd)."""
    geometry = (stride, pad_begin, pad_end, dilation, groups)
    output_shape = _geometry(input_shape, weight_shape, *geometry)
    kernel = _direction_kernel(algo, direction)
    itemsize = np.dtype(dtype).itemsize
    if kernel == "implicit":
        return 0
    if kernel == "depthwise":
        return _depthwise_workspace_bytes(direction, input_shape, weight_shape, output_shape, itemsize)
    values = WORKSPACE_VALUES[kernel](direction, tuple(input_shape), tuple(weight_shape), output_shape, geometry)
    return values * itemsize


def _check_workspace(algo, direction, input_shape, weight_shape, geometry, array):
    """MemoryError naming `algo`, the bytes it needs and the bytes free, where its workspace
    does not fit in the free memory of `array`'s device."""
    needed = conv2d_workspace_bytes(algo, direction, input_shape, weight_shape, *geometry, array.dtype)
    if needed == 0:
        return
    free = free_device_memory(array)
    if free is not None and needed > free:
        raise MemoryError(f"conv2d: algo='{algo}' needs {needed} bytes of device memory for its workspace in the "
                          f"{direction} direction, and {free} bytes are free; pick another algorithm "
                          f"('implicit' needs none) or a smaller batch")


FORWARD = {"im2col": _im2col_forward, "implicit": _implicit_forward, "depthwise": _depthwise_forward,
           "fft": _fft_forward,
           **{algo: functools.partial(_winograd_forward, algo) for algo in WINOGRAD_TILE}}


def _no_pixel_shuffle(factor):
    """The CPU library's pixel_shuffle argument (its Winograd writes a shuffled output): the CUDA
    kernels write the convolution's own output only."""
    if factor != 1:
        raise ValueError(f"pixel_shuffle: the CUDA kernels take 1 only (the convolution's own output), got {factor}")


def conv2d_forward(input, weight, bias, out, stride, pad_begin, pad_end, dilation, groups, algo="im2col",
                   relu=False, transformed=None, residual=None, pixel_shuffle=1):
    _no_pixel_shuffle(pixel_shuffle)
    x = precision.conv_input(input, "input")  # float16 / bfloat16 too: fastconv/cuda/precision.py
    w = precision.conv_input(weight, "weight", x.dtype)
    geometry = (stride, pad_begin, pad_end, dilation, groups)
    shape = _geometry(x.shape, w.shape, *geometry)
    if algo == "auto":
        algo = precision.auto_algorithm(_auto("forward", x.shape, w.shape, geometry, x.dtype, free_device_memory(x))[0],
                                        x.dtype)
    _check_algo(algo, x.shape, w.shape, geometry)
    precision.check_algorithm(algo, x.dtype)
    args.output(out, "out", shape, x.dtype)
    b = precision.conv_vector(bias, "bias", shape[1], x.dtype)
    _check_workspace(algo, "forward", x.shape, w.shape, geometry, x)
    if residual is None:
        return FORWARD[algo](x, w, b, out, *geometry, relu)
    # The CUDA kernels' epilogues take no residual yet: added (then the ReLU) in one more pass.
    args.output(residual, "residual", shape, x.dtype)
    FORWARD[algo](x, w, b, out, *geometry, False)
    out += residual
    _bias_and_relu(out, args.NULL, relu)


def _gradient_kernel(algo, direction, input_shape, weight_shape, grad_output, *conv_args):
    """The algorithm whose kernel computes a gradient of the convolution (depthwise's and FFT's
    own, else im2col's), with the geometry, grad_output's shape, `algo` and the workspace
    checked first."""
    shape = _geometry(input_shape, weight_shape, *conv_args)
    if algo == "auto":
        algo = _auto(direction, input_shape, weight_shape, conv_args, grad_output.dtype,
                     free_device_memory(grad_output))[0]
    _check_algo(algo, input_shape, weight_shape, conv_args)
    if tuple(grad_output.shape) != shape:
        raise ValueError(f"grad_output: expected shape {shape}, got {tuple(grad_output.shape)}")
    _check_workspace(algo, direction, input_shape, weight_shape, conv_args, grad_output)
    return _direction_kernel(algo, direction)


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
                          algo="im2col", transformed=None, pixel_shuffle=1):
    _no_pixel_shuffle(pixel_shuffle)
    w = args.float_input(weight, "weight")
    dy = args.float_input(grad_output, "grad_output", w.dtype)
    geometry = (stride, pad_begin, pad_end, dilation, groups)
    kernel = _gradient_kernel(algo, "input", grad_input.shape, w.shape, dy, *geometry)
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
    kernel = _gradient_kernel(algo, "weight", x.shape, grad_weight.shape, dy, *geometry)
    args.output(grad_weight, "grad_weight", grad_weight.shape, x.dtype)
    BACKWARD_WEIGHT[kernel](x, dy, grad_weight, *geometry)
    if grad_bias is not None:
        args.output(grad_bias, "grad_bias", (dy.shape[1],), x.dtype)
        grad_bias[...] = dy.sum(axis=(0, 2, 3))


BACKWARD_INPUT = {"im2col": _im2col_backward_input, "depthwise": _depthwise_backward_input,
                  "fft": _fft_backward_input}
BACKWARD_WEIGHT = {"im2col": _im2col_backward_weight, "depthwise": _depthwise_backward_weight,
                   "fft": _fft_backward_weight}
