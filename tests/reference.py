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


def batch_norm_reference(x, mean, var, gamma, beta, eps, residual=None, relu=False):
    """relu?((x - mean) / sqrt(var + eps) * gamma + beta + residual?) in float64; mean and var
    per channel (the caller picks batch or running statistics)."""
    per_channel = lambda v: np.asarray(v, dtype=np.float64)[None, :, None, None]
    y = (np.asarray(x, np.float64) - per_channel(mean)) / np.sqrt(per_channel(var) + eps)
    y = y * per_channel(gamma) + per_channel(beta)
    if residual is not None:
        y = y + residual
    return np.maximum(y, 0) if relu else y


def batch_stats_reference(x):
    """Two-pass batch mean and biased variance per channel, in float64."""
    x = np.asarray(x, np.float64)
    mean = x.mean(axis=(0, 2, 3))
    return mean, ((x - mean[None, :, None, None]) ** 2).mean(axis=(0, 2, 3))


@njit(cache=True)
def _pool2d_loops(x, kernel, stride, pad, dilation, out_h, out_w, is_max, count_include_pad, divisor):
    n_img, channels, height, width = x.shape
    y = np.zeros((n_img, channels, out_h, out_w))
    idx = np.zeros((n_img, channels, out_h, out_w), dtype=np.int64)
    for n in range(n_img):
        for c in range(channels):
            for p in range(out_h):
                for q in range(out_w):
                    best, best_at, total, inside = -np.inf, -1, 0.0, 0
                    for r in range(kernel[0]):
                        for s in range(kernel[1]):
                            h = p * stride[0] - pad[0] + r * dilation[0]
                            w = q * stride[1] - pad[1] + s * dilation[1]
                            if h < 0 or h >= height or w < 0 or w >= width:
                                continue
                            v = x[n, c, h, w]
                            inside += 1
                            total += v
                            if best_at < 0 or v > best or np.isnan(v):
                                best, best_at = v, h * width + w
                    if is_max:
                        y[n, c, p, q], idx[n, c, p, q] = best, best_at
                    else:
                        # count_include_pad counts window cells inside the padded input only
                        h0, w0 = p * stride[0] - pad[0], q * stride[1] - pad[1]
                        h1, w1 = min(h0 + kernel[0], height + pad[0]), min(w0 + kernel[1], width + pad[1])
                        padded = (h1 - h0) * (w1 - w0)
                        y[n, c, p, q] = total / (divisor if divisor else (padded if count_include_pad else inside))
    return y, idx


def pool2d_reference(x, kernel, stride, pad, dilation=(1, 1), ceil_mode=False, mode="max",
                     count_include_pad=True, divisor_override=0):
    """max (with flat h*W+w argmax per plane; ties keep the first, NaN wins) or avg pooling in
    float64 by its definition; output sizes by PyTorch's rule."""
    sizes = []
    for d in range(2):
        span = dilation[d] * (kernel[d] - 1) + 1
        num = x.shape[2 + d] + 2 * pad[d] - span + (stride[d] - 1 if ceil_mode else 0)
        out = num // stride[d] + 1
        if ceil_mode and (out - 1) * stride[d] >= x.shape[2 + d] + pad[d]:
            out -= 1
        sizes.append(out)
    return _pool2d_loops(np.asarray(x, np.float64), np.array(kernel), np.array(stride), np.array(pad),
                         np.array(dilation), sizes[0], sizes[1], mode == "max", count_include_pad, divisor_override)


def adaptive_avg_pool2d_reference(x, out_h, out_w):
    """Mean over PyTorch's adaptive windows [floor(i*In/Out), ceil((i+1)*In/Out))."""
    x = np.asarray(x, np.float64)
    height, width = x.shape[2:]
    y = np.zeros(x.shape[:2] + (out_h, out_w))
    for p in range(out_h):
        h0, h1 = p * height // out_h, -(-(p + 1) * height // out_h)
        for q in range(out_w):
            w0, w1 = q * width // out_w, -(-(q + 1) * width // out_w)
            y[:, :, p, q] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
    return y
