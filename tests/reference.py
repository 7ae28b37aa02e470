"""Independent references for the kernels: naive loops in float64 (numba-compiled when numba
is installed), written from the definitions, sharing no code with fastconv."""
import numpy as np

try:
    from numba import njit
except ImportError:  # the references still run, only slower
    def njit(*args, **kwargs):
        return args[0] if args and callable(args[0]) else (lambda f: f)


@njit(cache=True)
def _conv2d_direct(x, w, stride, pad, dilation, groups, out_h, out_w):
    n_img, channels = x.shape[0], x.shape[1]
    k_out, c_per_group, kh, kw = w.shape
    k_per_group = k_out // groups
    y = np.zeros((n_img, k_out, out_h, out_w))
    for n in range(n_img):
        for k in range(k_out):
            g = k // k_per_group
            for p in range(out_h):
                for q in range(out_w):
                    acc = 0.0
                    for c in range(c_per_group):
                        for r in range(kh):
                            ih = p * stride[0] - pad[0] + r * dilation[0]
                            if ih < 0 or ih >= x.shape[2]:
                                continue
                            for s in range(kw):
                                iw = q * stride[1] - pad[1] + s * dilation[1]
                                if 0 <= iw < x.shape[3]:
                                    acc += x[n, g * c_per_group + c, ih, iw] * w[k, c, r, s]
                    y[n, k, p, q] = acc
    return y


def conv2d_reference(x, w, bias=None, stride=(1, 1), pad_begin=(0, 0), pad_end=(0, 0),
                     dilation=(1, 1), groups=1):
    """Direct convolution in float64 by its definition (PyTorch's cross-correlation)."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    out_h = (x.shape[2] + pad_begin[0] + pad_end[0] - dilation[0] * (w.shape[2] - 1) - 1) // stride[0] + 1
    out_w = (x.shape[3] + pad_begin[1] + pad_end[1] - dilation[1] * (w.shape[3] - 1) - 1) // stride[1] + 1
    y = _conv2d_direct(x, w, np.array(stride), np.array(pad_begin), np.array(dilation), groups, out_h, out_w)
    if bias is not None:
        y += np.asarray(bias, dtype=np.float64)[None, :, None, None]
    return y


def numeric_gradient(f, x, grad_out, eps=1e-6):
    """d<f(x), grad_out>/dx by central differences, element by element (float64)."""
    x = np.array(x, dtype=np.float64)
    grad = np.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        plus = np.sum(f(x) * grad_out)
        flat[i] = old - eps
        minus = np.sum(f(x) * grad_out)
        flat[i] = old
        gflat[i] = (plus - minus) / (2 * eps)
    return grad


@njit(cache=True)
def _conv_transpose2d_scatter(x, w, stride, pad, dilation, groups, out_h, out_w):
    n_img, c_in = x.shape[0], x.shape[1]
    c_out_per_group, kh, kw = w.shape[1], w.shape[2], w.shape[3]
    c_in_per_group = c_in // groups
    y = np.zeros((n_img, c_out_per_group * groups, out_h, out_w))
    for n in range(n_img):
        for ci in range(c_in):
            g = ci // c_in_per_group
            for h in range(x.shape[2]):
                for v in range(x.shape[3]):
                    for co in range(c_out_per_group):
                        for r in range(kh):
                            oh = h * stride[0] - pad[0] + r * dilation[0]
                            if oh < 0 or oh >= out_h:
                                continue
                            for s in range(kw):
                                ow = v * stride[1] - pad[1] + s * dilation[1]
                                if 0 <= ow < out_w:
                                    y[n, g * c_out_per_group + co, oh, ow] += x[n, ci, h, v] * w[ci, co, r, s]
    return y


def conv_transpose2d_reference(x, w, bias=None, stride=(1, 1), padding=(0, 0), output_padding=(0, 0),
                               groups=1, dilation=(1, 1)):
    """Transposed convolution in float64 by its definition: each input pixel scatters its
    weighted kernel into the output."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    out = [(x.shape[2 + d] - 1) * stride[d] - 2 * padding[d] + dilation[d] * (w.shape[2 + d] - 1)
           + output_padding[d] + 1 for d in range(2)]
    y = _conv_transpose2d_scatter(x, w, np.array(stride), np.array(padding), np.array(dilation), groups, *out)
    if bias is not None:
        y += np.asarray(bias, dtype=np.float64)[None, :, None, None]
    return y
