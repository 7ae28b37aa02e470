"""im2col and col2im on CUDA (csrc/conv/cuda/conv.cu): the column matrix of a 2-d convolution
and its adjoint, so that conv2d is im2col and a GEMM, and its input gradient a GEMM and col2im.

    im2col(x, kh, kw, stride, padding, dilation, out, pad_end=None)
        x (N, C, H, W) -> out (N, C * kh * kw, P * Q), torch.nn.functional.unfold's layout: row
        (c * kh + r) * kw + s holds tap (r, s) of channel c for each output pixel p * Q + q, 0 in
        the padding; a group's rows are one block.
    col2im(cols, kh, kw, stride, padding, dilation, out, pad_end=None)
        cols (N, C * kh * kw, P * Q) -> out (N, C, H, W), overwritten with the sum of the entries
        that read each pixel (torch.nn.functional.fold). A gather: each pixel sums its own taps
        in a fixed order, no atomics, so it is deterministic and agrees to the bit with the
        CPU's col2im.

stride, padding, dilation: pairs (height, width). padding pads both ends of an axis, unless
pad_end gives the bottom and right padding (fastconv._C's conv2d pad_begin / pad_end); P and Q
are conv2d's output size. The geometry is checked by fastconv._C's conv2d rules before any
launch; out must be C-contiguous, of the input's dtype.
"""
from fastconv import _C
from fastconv.cuda import _kernel_args as args
from fastconv.ops._checks import check_ndim, int_pair, is_int


def column_geometry(input_shape, kh, kw, stride, padding, dilation, pad_end=None):
    """The 14 sizes the column kernels take (N, C, H, W, kh, kw, strides, paddings, dilations, P,
    Q), after conv2d's checks in int64 (fastconv._C.conv2d_output_shape)."""
    for value, name in ((kh, "kh"), (kw, "kw")):
        if not is_int(value) or value < 1:
            raise ValueError(f"{name}: expected a kernel size >= 1, got {value!r}")
    stride, padding, dilation = (int_pair(v, name) for v, name in
                                 ((stride, "stride"), (padding, "padding"), (dilation, "dilation")))
    pad_end = padding if pad_end is None else int_pair(pad_end, "pad_end")
    n, c, h, w = input_shape
    _, _, p, q = _C.conv2d_output_shape((n, c, h, w), (1, c, kh, kw), stride, padding, pad_end, dilation, 1)
    return (n, c, h, w, kh, kw, *stride, *padding, *dilation, p, q)


def columns_shape(geometry):
    n, c, _, _, kh, kw, *_, p, q = geometry
    return (n, c * kh * kw, p * q)


def im2col(x, kh, kw, stride, padding, dilation, out, pad_end=None):
    x = args.float_input(x, "x")
    check_ndim(x, 4, "x", "(N, C, H, W)")
    geometry = column_geometry(x.shape, kh, kw, stride, padding, dilation, pad_end)
    args.output(out, "out", columns_shape(geometry), x.dtype)
    args.launch("conv", "im2col", out.size, geometry, (x, out))


def col2im(cols, kh, kw, stride, padding, dilation, out, pad_end=None):
    cols = args.float_input(cols, "cols")
    check_ndim(out, 4, "out", "(N, C, H, W)")
    geometry = column_geometry(out.shape, kh, kw, stride, padding, dilation, pad_end)
    if tuple(cols.shape) != columns_shape(geometry):
        raise ValueError(f"cols: expected shape {columns_shape(geometry)} for out {tuple(out.shape)}, got "
                         f"{tuple(cols.shape)}")
    args.output(out, "out", out.shape, cols.dtype)
    args.launch("conv", "col2im", out.size, geometry, (cols, out))
