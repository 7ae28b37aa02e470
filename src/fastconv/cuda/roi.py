"""roi_align and roi_pool on CUDA (csrc/roi/cuda/roi.cu), with fastconv._C's names and
arguments: outputs are preallocated by fastconv.ops.roi on the input's device.

Boxes are checked on the host before any launch, by fastconv._C's own checks (batch indices
that name an image, finite coordinates after scaling, sample tables within bounds): the (K, 5)
boxes are copied to the host and a CPU entry point runs on zero channels, which checks
everything and computes nothing (roi_align's backward for both directions: its checks are the
forward's, and with no channel it builds no sample table).

The backwards come in two formulations, chosen by `deterministic` (default: the module's
DETERMINISTIC, True):
  - deterministic: no floating-point atomics. roi_align's input gradient is gathered, each
    element summing the shares of the samples that land on it in the CPU kernel's order; roi_pool
    gives each input plane one thread that adds its entries in box order. The same bits every
    run; each element adds the CPU kernel's terms in its order (roi_pool's gradient is the CPU's
    to the bit; roi_align's differs in the last bits only where the GPU fuses the sample
    coordinates' multiply-adds).
  - atomic (deterministic=False): torchvision's CUDA formulation, a thread per output bin adding
    its shares with atomicAdd. Expected to be faster when boxes are many (the gather walks every
    box of its image for each input element), but the order of the adds, and so the last bits,
    change from run to run, as torch.use_deterministic_algorithms warns for torchvision.
The default is the deterministic one because fastconv's backwards are reproducible on the CPU
and training runs are compared bit for bit across devices and reruns; set
fastconv.cuda.roi.DETERMINISTIC = False (or pass deterministic=False) for torchvision's speed.
"""
import numpy as np

from fastconv import _C
from fastconv.backend import array_module, is_cuda_array
from fastconv.cuda import _kernel_args as args
from fastconv.ops._checks import check_ndim, contiguous

DETERMINISTIC = True


def _deterministic(flag):
    return DETERMINISTIC if flag is None else bool(flag)


def _host(array):
    return array.get() if is_cuda_array(array) else np.asarray(array)


def _shape(image, image_name, pooled, pooled_name, boxes_count):
    """(N, C, H, W, K, PH, PW) from the input-side and output-side arrays, checked against each
    other and the boxes."""
    check_ndim(image, 4, image_name, "(N, C, H, W)")
    check_ndim(pooled, 4, pooled_name, "(K, C, PH, PW)")
    n, c, h, w = (int(d) for d in image.shape)
    k, pc, ph, pw = (int(d) for d in pooled.shape)
    if h == 0 or w == 0:
        raise ValueError(f"{image_name}: expected non-empty spatial dimensions, got shape {tuple(image.shape)}")
    if (k, pc) != (boxes_count, c):
        raise ValueError(f"{pooled_name}: expected shape ({boxes_count}, {c}, PH, PW) for {boxes_count} boxes and "
                         f"{image_name}'s {c} channels, got {tuple(pooled.shape)}")
    return n, c, h, w, k, ph, pw


def _checked_boxes(boxes, dtype):
    boxes = args.float_input(boxes, "boxes", dtype)
    check_ndim(boxes, 2, "boxes", "(K, 5)")
    if boxes.shape[1] != 5:
        raise ValueError(f"boxes: expected shape (K, 5), got {tuple(boxes.shape)}")
    return boxes


def _align_params(spatial_scale, sampling_ratio, aligned):
    """roi_align's parameters as its kernels take them (double, int64, int)."""
    return np.float64(spatial_scale), np.int64(sampling_ratio), args.flag(aligned)


def _no_channels(shape, dtype):
    """A host array of `shape` with its channel axis emptied: fastconv._C checks the rest."""
    return np.empty((shape[0], 0, *shape[2:]), dtype)


def _check_aligned_boxes(rois, image_shape, pooled_shape, spatial_scale, sampling_ratio, aligned):
    _C.roi_align_backward(_no_channels(pooled_shape, rois.dtype), _host(rois), _no_channels(image_shape, rois.dtype),
                          spatial_scale, sampling_ratio, aligned)


def roi_align_forward(input, boxes, out, spatial_scale, sampling_ratio, aligned):
    x = args.float_input(input, "input")
    rois = _checked_boxes(boxes, x.dtype)
    shape = _shape(x, "input", out, "out", rois.shape[0])
    args.output(out, "out", out.shape, x.dtype)
    _check_aligned_boxes(rois, x.shape, out.shape, spatial_scale, sampling_ratio, aligned)
    params = _align_params(spatial_scale, sampling_ratio, aligned)
    args.launch("roi", "roi_align_forward", out.size, shape, (x, rois, out, *params))


def roi_align_backward(grad_output, boxes, grad_input, spatial_scale, sampling_ratio, aligned, deterministic=None):
    dy = args.float_input(grad_output, "grad_output")
    rois = _checked_boxes(boxes, dy.dtype)
    shape = _shape(grad_input, "grad_input", dy, "grad_output", rois.shape[0])
    args.output(grad_input, "grad_input", grad_input.shape, dy.dtype)
    _check_aligned_boxes(rois, grad_input.shape, dy.shape, spatial_scale, sampling_ratio, aligned)
    arrays = (dy, rois, grad_input, *_align_params(spatial_scale, sampling_ratio, aligned))
    if _deterministic(deterministic):
        args.launch("roi", "roi_align_backward_gather", grad_input.size, shape, arrays)
    else:
        grad_input.fill(0)
        args.launch("roi", "roi_align_backward_atomic", dy.size, shape, arrays)


def roi_pool_forward(input, boxes, out, argmax, spatial_scale):
    x = args.float_input(input, "input")
    rois = _checked_boxes(boxes, x.dtype)
    shape = _shape(x, "input", out, "out", rois.shape[0])
    args.output(out, "out", out.shape, x.dtype)
    args.output(argmax, "argmax", out.shape, np.int64)
    no_channels = _no_channels(out.shape, x.dtype)
    _C.roi_pool_forward(_no_channels(x.shape, x.dtype), _host(rois), no_channels, no_channels.astype(np.int64),
                        spatial_scale)
    args.launch("roi", "roi_pool_forward", out.size, shape, (x, rois, out, argmax, np.float64(spatial_scale)))


def check_argmax(argmax, input_shape):
    """ValueError naming the first argmax entry that is neither -1 nor an index into its own
    channel of the input (the CPU kernel's rule), computed where argmax lives."""
    xp = array_module(argmax)
    n, c, h, w = input_shape
    plane, image = h * w, c * h * w
    channel = xp.arange(c, dtype=np.int64).reshape(1, c, 1, 1)
    valid = (argmax == -1) | ((argmax >= 0) & (argmax < n * image) & (argmax % max(image, 1) // plane == channel))
    if bool(valid.all()):
        return
    first = int(xp.argmin(valid.ravel()))
    k, ch, ph, pw = np.unravel_index(first, argmax.shape)
    raise ValueError(f"argmax: entry {int(argmax.ravel()[first])} at ({k}, {ch}, {ph}, {pw}) is neither -1 nor an "
                     f"index into input's channel {ch}")


def roi_pool_backward(grad_output, argmax, grad_input, deterministic=None):
    dy = args.float_input(grad_output, "grad_output")
    check_ndim(dy, 4, "grad_output", "(K, C, PH, PW)")
    shape = _shape(grad_input, "grad_input", dy, "grad_output", dy.shape[0])
    args.output(grad_input, "grad_input", grad_input.shape, dy.dtype)
    if argmax.dtype != np.int64 or tuple(argmax.shape) != tuple(dy.shape):
        raise ValueError(f"argmax: expected an int64 array of shape {tuple(dy.shape)}, got {argmax.dtype} "
                         f"{tuple(argmax.shape)}")
    argmax = contiguous(argmax)
    check_argmax(argmax, grad_input.shape)
    if _deterministic(deterministic):
        n, c = shape[:2]
        args.launch("roi", "roi_pool_backward_plane", n * c, shape, (dy, argmax, grad_input))
    else:
        grad_input.fill(0)
        args.launch("roi", "roi_pool_backward_atomic", dy.size, (), (dy, argmax, grad_input))
