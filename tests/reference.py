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


# ---- roi_align / roi_pool (torchvision.ops semantics) ----

def random_boxes(rng, n_img, height, width, count, scale=1.0):
    """(K, 5) boxes for an input of (height, width) seen at spatial_scale `scale`: inside,
    partly and wholly outside, inverted (x2 < x1), and the first eighth empty (x2 = x1)."""
    span = np.array([width, height]) / scale
    p1 = rng.uniform(-0.3, 1.1, (count, 2)) * span
    p2 = p1 + rng.uniform(-0.2, 0.8, (count, 2)) * span
    boxes = np.concatenate([rng.integers(0, n_img, (count, 1)), p1, p2], axis=1)
    boxes[: count // 8, 3:] = boxes[: count // 8, 1:3]
    return boxes


@njit(cache=True)
def _roi_bilinear(plane, y, x):
    """A plane sampled at (y, x): 0 more than a pixel outside, clamped onto border pixels."""
    height, width = plane.shape
    if y < -1.0 or y > height or x < -1.0 or x > width:
        return 0.0
    y, x = max(y, 0.0), max(x, 0.0)
    y0, x0 = int(y), int(x)
    if y0 >= height - 1:
        y0 = y1 = height - 1
        y = float(y0)
    else:
        y1 = y0 + 1
    if x0 >= width - 1:
        x0 = x1 = width - 1
        x = float(x0)
    else:
        x1 = x0 + 1
    ly, lx = y - y0, x - x0
    return ((1 - ly) * (1 - lx) * plane[y0, x0] + (1 - ly) * lx * plane[y0, x1]
            + ly * (1 - lx) * plane[y1, x0] + ly * lx * plane[y1, x1])


@njit(cache=True)
def _roi_align(x, rois, ph_n, pw_n, scale, ratio, aligned):
    out = np.zeros((rois.shape[0], x.shape[1], ph_n, pw_n))
    off = 0.5 if aligned else 0.0
    for k in range(rois.shape[0]):
        b = int(rois[k, 0])
        x1, y1 = rois[k, 1] * scale - off, rois[k, 2] * scale - off
        w, h = rois[k, 3] * scale - off - x1, rois[k, 4] * scale - off - y1
        if not aligned:
            w, h = max(w, 1.0), max(h, 1.0)
        gh = ratio if ratio > 0 else int(np.ceil(h / ph_n))
        gw = ratio if ratio > 0 else int(np.ceil(w / pw_n))
        count = max(gh * gw, 1)
        for c in range(x.shape[1]):
            for ph in range(ph_n):
                for pw in range(pw_n):
                    acc = 0.0
                    for iy in range(gh):
                        yy = y1 + (ph + (iy + 0.5) / gh) * h / ph_n
                        for ix in range(gw):
                            xx = x1 + (pw + (ix + 0.5) / gw) * w / pw_n
                            acc += _roi_bilinear(x[b, c], yy, xx)
                    out[k, c, ph, pw] = acc / count
    return out


def roi_align_reference(x, rois, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    """torchvision.ops.roi_align by its definition, in float64; rois (K, 5)."""
    return _roi_align(np.asarray(x, np.float64), np.asarray(rois, np.float64), output_size[0], output_size[1],
                      float(spatial_scale), int(sampling_ratio), bool(aligned))


@njit(cache=True)
def _round_half_away(v):
    """C's round(): halves away from zero."""
    return int(np.sign(v) * np.floor(abs(v) + 0.5))


@njit(cache=True)
def _roi_pool(x, rois, ph_n, pw_n, scale):
    n_img, channels, height, width = x.shape
    out = np.zeros((rois.shape[0], channels, ph_n, pw_n))
    argmax = -np.ones((rois.shape[0], channels, ph_n, pw_n), np.int64)
    for k in range(rois.shape[0]):
        b = int(rois[k, 0])
        x1, y1 = _round_half_away(rois[k, 1] * scale), _round_half_away(rois[k, 2] * scale)
        x2, y2 = _round_half_away(rois[k, 3] * scale), _round_half_away(rois[k, 4] * scale)
        h, w = max(y2 - y1 + 1, 1), max(x2 - x1 + 1, 1)
        for ph in range(ph_n):
            h0 = min(max(int(np.floor(ph * h / ph_n)) + y1, 0), height)
            h1 = min(max(int(np.ceil((ph + 1) * h / ph_n)) + y1, 0), height)
            for pw in range(pw_n):
                w0 = min(max(int(np.floor(pw * w / pw_n)) + x1, 0), width)
                w1 = min(max(int(np.ceil((pw + 1) * w / pw_n)) + x1, 0), width)
                for c in range(channels):
                    best, at = -np.inf, -1
                    for i in range(h0, h1):
                        for j in range(w0, w1):
                            if x[b, c, i, j] > best:
                                best, at = x[b, c, i, j], ((b * channels + c) * height + i) * width + j
                    out[k, c, ph, pw] = best if at >= 0 else 0.0
                    argmax[k, c, ph, pw] = at
    return out, argmax


def roi_pool_reference(x, rois, output_size, spatial_scale=1.0):
    """torchvision.ops.roi_pool by its definition: (max, flat index into x or -1), float64."""
    return _roi_pool(np.asarray(x, np.float64), np.asarray(rois, np.float64), output_size[0], output_size[1],
                     float(spatial_scale))


# ---- grid_sample / affine_grid (torch.nn.functional semantics) ----

@njit(cache=True)
def _pixel_coordinate(v, size, padding, align_corners):
    """Normalised -> pixel coordinate; padding 1 = border (clamp), 2 = reflection (mirror at the
    corner centres, or at the image edges without align_corners, then clamp)."""
    p = (v + 1) / 2 * (size - 1) if align_corners else ((v + 1) * size - 1) / 2
    if padding == 2:
        lo, hi = (0.0, size - 1.0) if align_corners else (-0.5, size - 0.5)
        if hi <= lo:
            p = 0.0
        while p < lo or p > hi:
            p = 2 * lo - p if p < lo else 2 * hi - p
    if padding >= 1:
        p = min(max(p, 0.0), size - 1.0)
    return p


@njit(cache=True)
def _pixel(plane, i, j):
    if 0 <= i < plane.shape[0] and 0 <= j < plane.shape[1]:
        return plane[i, j]
    return 0.0


@njit(cache=True)
def _grid_sample(x, grid, nearest, padding, align_corners):
    n_img, channels, height, width = x.shape
    out = np.zeros((n_img, channels, grid.shape[1], grid.shape[2]))
    for n in range(n_img):
        for oh in range(grid.shape[1]):
            for ow in range(grid.shape[2]):
                px = _pixel_coordinate(grid[n, oh, ow, 0], width, padding, align_corners)
                py = _pixel_coordinate(grid[n, oh, ow, 1], height, padding, align_corners)
                for c in range(channels):
                    plane = x[n, c]
                    if nearest:
                        out[n, c, oh, ow] = _pixel(plane, int(round(py)), int(round(px)))
                    else:
                        x0, y0 = int(np.floor(px)), int(np.floor(py))
                        tx, ty = px - x0, py - y0
                        out[n, c, oh, ow] = ((1 - ty) * ((1 - tx) * _pixel(plane, y0, x0) + tx * _pixel(plane, y0, x0 + 1))
                                             + ty * ((1 - tx) * _pixel(plane, y0 + 1, x0) + tx * _pixel(plane, y0 + 1, x0 + 1)))
    return out


GRID_PADDING = {"zeros": 0, "border": 1, "reflection": 2}


def grid_sample_reference(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False):
    """torch.nn.functional.grid_sample (4-d) by its definition, in float64."""
    return _grid_sample(np.asarray(x, np.float64), np.asarray(grid, np.float64), mode == "nearest",
                        GRID_PADDING[padding_mode], bool(align_corners))


def affine_grid_reference(theta, size, align_corners=False):
    """torch.nn.functional.affine_grid: theta @ (x, y, 1) at each pixel's normalised centre."""
    n, _, h, w = size

    def axis(steps):
        if steps <= 1:
            return np.zeros(steps)
        v = np.linspace(-1.0, 1.0, steps)
        return v if align_corners else v * (steps - 1) / steps

    ys, xs = np.meshgrid(axis(h), axis(w), indexing="ij")
    base = np.stack([xs, ys, np.ones_like(xs)], axis=-1)
    return np.einsum("hwj,nij->nhwi", base, np.asarray(theta, np.float64))


# ---- interpolate (torch.nn.functional.interpolate semantics) ----

@njit(cache=True)
def _linear_source(d, size_in, size_out, scale, align_corners):
    """Source coordinate of output pixel d: corner centres aligned, or pixel centres mapped by
    1 / scale (or size_in / size_out) and clamped at 0."""
    if align_corners:
        return d * (size_in - 1) / (size_out - 1) if size_out > 1 else 0.0
    ratio = 1.0 / scale if scale > 0 else size_in / size_out
    return max((d + 0.5) * ratio - 0.5, 0.0)


@njit(cache=True)
def _interpolate(x, out_h, out_w, nearest, align_corners, scale_h, scale_w):
    n_img, channels, height, width = x.shape
    out = np.zeros((n_img, channels, out_h, out_w))
    for oh in range(out_h):
        for ow in range(out_w):
            if nearest:
                # float32 arithmetic, as PyTorch's legacy "nearest"
                sh = np.float32(1.0 / scale_h) if scale_h > 0 else np.float32(height) / np.float32(out_h)
                sw = np.float32(1.0 / scale_w) if scale_w > 0 else np.float32(width) / np.float32(out_w)
                i = min(int(np.floor(np.float32(oh) * sh)), height - 1)
                j = min(int(np.floor(np.float32(ow) * sw)), width - 1)
                out[:, :, oh, ow] = x[:, :, i, j]
                continue
            sy = _linear_source(oh, height, out_h, scale_h, align_corners)
            sx = _linear_source(ow, width, out_w, scale_w, align_corners)
            i0, j0 = min(int(np.floor(sy)), height - 1), min(int(np.floor(sx)), width - 1)
            i1, j1 = min(i0 + 1, height - 1), min(j0 + 1, width - 1)
            ly, lx = min(max(sy - i0, 0.0), 1.0), min(max(sx - j0, 0.0), 1.0)
            out[:, :, oh, ow] = ((1 - ly) * ((1 - lx) * x[:, :, i0, j0] + lx * x[:, :, i0, j1])
                                 + ly * ((1 - lx) * x[:, :, i1, j0] + lx * x[:, :, i1, j1]))
    return out


def interpolate_reference(x, out_hw, mode="bilinear", align_corners=False, scales=(0.0, 0.0)):
    """torch.nn.functional.interpolate (bilinear, nearest) to out_hw by its definition, float64.
    scales: the caller's scale factors (0: none), which set the source index rule."""
    return _interpolate(np.asarray(x, np.float64), out_hw[0], out_hw[1], mode == "nearest", bool(align_corners),
                        float(scales[0]), float(scales[1]))


def _keys_cubic(x, a):
    """Keys' cubic convolution kernel (Keys 1981), of half-width 2."""
    x = abs(x)
    if x <= 1:
        return (a + 2) * x ** 3 - (a + 3) * x ** 2 + 1
    return a * x ** 3 - 5 * a * x ** 2 + 8 * a * x - 4 * a if x < 2 else 0.0


def _resize_scale(n_in, n_out, align_corners, scale_factor):
    if align_corners:
        return (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    return 1.0 / scale_factor if scale_factor > 0 else n_in / n_out


def resampling_matrix(n_in, n_out, mode, align_corners=False, scale_factor=0.0, antialias=False):
    """The (n_out, n_in) matrix of one axis of torch's bicubic or antialiased interpolate, float64:
    row d holds the weight of every input pixel in output pixel d. Bicubic: Keys' kernel
    (a = -0.75) at the four pixels around the unclamped source coordinate, border pixels repeated.
    Antialiased (PIL's resampling): the triangle or Keys' (a = -0.5) kernel, stretched by the scale
    when downsampling, over the pixels whose centres lie within its support, normalised; an axis
    whose size does not change is copied."""
    m = np.zeros((n_out, n_in))
    scale = _resize_scale(n_in, n_out, align_corners, scale_factor)
    for d in range(n_out):
        if not antialias:
            src = scale * d if align_corners else scale * (d + 0.5) - 0.5
            i = min(int(np.floor(src)), n_in - 1)
            t = min(max(src - i, 0.0), 1.0)
            for j, offset in enumerate((-1, 0, 1, 2)):
                m[d, min(max(i + offset, 0), n_in - 1)] += _keys_cubic(offset - t, -0.75)
            continue
        if n_in == n_out:
            m[d, d] = 1.0
            continue
        half = 1.0 if mode == "bilinear" else 2.0
        stretch = max(scale, 1.0)
        kernel = (lambda x: max(0.0, 1.0 - abs(x))) if mode == "bilinear" else (lambda x: _keys_cubic(x, -0.5))
        centre = scale * (d + 0.5)
        first = max(int(centre - half * stretch + 0.5), 0)
        last = min(int(centre + half * stretch + 0.5), n_in)
        for i in range(first, last):
            m[d, i] = kernel((i + 0.5 - centre) / stretch)
        m[d] /= m[d].sum()
    return m


def filtered_interpolate_reference(x, out_hw, mode, align_corners=False, scales=(0.0, 0.0), antialias=False):
    """torch.nn.functional.interpolate, bicubic or antialiased, as the product of the two axes'
    resampling matrices, float64. scales: the caller's scale factors (0: none)."""
    x = np.asarray(x, np.float64)
    rows = resampling_matrix(x.shape[2], out_hw[0], mode, align_corners, scales[0], antialias)
    columns = resampling_matrix(x.shape[3], out_hw[1], mode, align_corners, scales[1], antialias)
    return np.einsum("oh,nchw,pw->ncop", rows, x, columns)


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


def pixel_shuffle_reference(x, f):
    """torch.nn.functional.pixel_shuffle by reshape and transpose: channel c f^2 + a f + b of
    (N, C f^2, H, W) is pixel (h f + a, w f + b) of channel c."""
    n, c, h, w = x.shape
    return x.reshape(n, c // (f * f), f, f, h, w).transpose(0, 1, 4, 2, 5, 3).reshape(n, c // (f * f), h * f, w * f)


def pixel_unshuffle_reference(x, f):
    """The inverse of pixel_shuffle_reference: (N, C, H f, W f) -> (N, C f^2, H, W)."""
    n, c, h, w = x.shape
    return x.reshape(n, c, h // f, f, w // f, f).transpose(0, 1, 3, 5, 2, 4).reshape(n, c * f * f, h // f, w // f)
