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
