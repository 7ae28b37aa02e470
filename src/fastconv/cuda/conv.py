"""conv2d on CUDA as im2col + a batched GEMM (cupy.matmul, cuBLAS): fastconv._C's conv2d_forward,
conv2d_backward_input and conv2d_backward_weight, with their signatures, for CuPy arrays.

The CUDA library has one algorithm, "im2col": `algo="auto"` resolves to it (ops/conv.py asks
conv2d_algorithms()), and the CPU's other algorithms are refused by name. The column matrix is
(N, C*kh*kw, P*Q) in torch.nn.functional.unfold's layout (fastconv/cuda/im2col.py), so a
group's rows are one block and a group's GEMM is one batched matmul:
  forward          y[n, g]  = w[g] @ cols[n, g]
  input gradient   dx       = col2im(w[g]^T @ dy[n, g])
  weight gradient  dw[g]    = sum_n dy[n, g] @ cols[n, g]^T
"""
from fastconv import _C, backend
from fastconv.backend import DeviceError
from fastconv.cuda import _kernel_args as args

ALGORITHM = "im2col"
conv2d_output_shape = _C.conv2d_output_shape


def conv2d_algorithms():
    return [ALGORITHM]


def conv2d_unsupported_reason(algo, input_shape, weight_shape, stride, pad_begin, pad_end, dilation, groups):
    if algo == ALGORITHM:
        return None
    return f"{algo} runs on the CPU only; on CUDA conv2d runs as im2col + cuBLAS GEMM ('{ALGORITHM}')"


def conv2d_weight_transform_tile(algo, input_shape, weight_shape, stride, pad_begin, pad_end, dilation, groups, use):
    return 0  # im2col has no weight transform


def conv2d_transformed_weight_size(algo, weight_shape, groups, use, tile=0):
    return 0


def _check_algo(algo):
    reason = conv2d_unsupported_reason(algo, None, None, None, None, None, None, None)
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
    columns = _columns()
    shape = columns.columns_shape(columns.column_geometry(x.shape, kh, kw, stride, pad_begin, dilation, pad_end))
    cols = backend.empty(shape, x.dtype, backend.device_of(x))
    columns.im2col(x, kh, kw, stride, pad_begin, dilation, cols, pad_end=pad_end)
    return cols


def _by_group(array, n, groups):
    """(N, G, rows per group, cols) view of an (N, rows, ...) C-contiguous array."""
    return array.reshape(n, groups, array.shape[1] // groups, -1)


def conv2d_forward(input, weight, bias, out, stride, pad_begin, pad_end, dilation, groups, algo=ALGORITHM,
                   relu=False, transformed=None):
    _check_algo(algo)
    x = args.float_input(input, "input")
    w = args.float_input(weight, "weight", x.dtype)
    xp = backend.array_module(x)
    shape = _geometry(x.shape, w.shape, stride, pad_begin, pad_end, dilation, groups)
    args.output(out, "out", shape, x.dtype)
    b = args.vector_input(bias, "bias", shape[1], x.dtype)
    n, k = shape[:2]
    cols = _im2col(x, w.shape, stride, pad_begin, pad_end, dilation)
    w_groups = w.reshape(groups, k // groups, -1)
    _by_group(out, n, groups)[...] = xp.matmul(w_groups, _by_group(cols, n, groups))
    if b is not args.NULL:
        out += b.reshape(1, k, 1, 1)
    if relu:
        xp.maximum(out, 0, out=out)  # NaN passes, as torch.relu's


def conv2d_backward_input(grad_output, weight, grad_input, stride, pad_begin, pad_end, dilation, groups,
                          algo=ALGORITHM, transformed=None):
    _check_algo(algo)
    w = args.float_input(weight, "weight")
    dy = args.float_input(grad_output, "grad_output", w.dtype)
    shape = _geometry(grad_input.shape, w.shape, stride, pad_begin, pad_end, dilation, groups)
    if tuple(dy.shape) != shape:
        raise ValueError(f"grad_output: expected shape {shape}, got {tuple(dy.shape)}")
    args.output(grad_input, "grad_input", grad_input.shape, w.dtype)
    n, k = shape[:2]
    w_groups = w.reshape(groups, k // groups, -1)
    cols = backend.array_module(w).matmul(w_groups.transpose(0, 2, 1), _by_group(dy, n, groups))
    _columns().col2im(cols.reshape(n, -1, shape[2] * shape[3]), w.shape[2], w.shape[3], stride, pad_begin, dilation,
                      grad_input, pad_end=pad_end)


def conv2d_backward_weight(input, grad_output, grad_weight, grad_bias, stride, pad_begin, pad_end, dilation, groups,
                           algo=ALGORITHM):
    _check_algo(algo)
    x = args.float_input(input, "input")
    dy = args.float_input(grad_output, "grad_output", x.dtype)
    shape = _geometry(x.shape, grad_weight.shape, stride, pad_begin, pad_end, dilation, groups)
    if tuple(dy.shape) != shape:
        raise ValueError(f"grad_output: expected shape {shape}, got {tuple(dy.shape)}")
    args.output(grad_weight, "grad_weight", grad_weight.shape, x.dtype)
    n, k = shape[:2]
    cols = _im2col(x, grad_weight.shape, stride, pad_begin, pad_end, dilation)
    per_image = backend.array_module(x).matmul(_by_group(dy, n, groups), _by_group(cols, n, groups).transpose(0, 1, 3, 2))
    grad_weight[...] = per_image.sum(axis=0).reshape(grad_weight.shape)
    if grad_bias is not None:
        args.output(grad_bias, "grad_bias", (k,), x.dtype)
        grad_bias[...] = dy.sum(axis=(0, 2, 3))
