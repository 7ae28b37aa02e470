"""Runs fuzz cases (tests/fuzz/cases.py) read as JSON lines on stdin and answers each with one
JSON line: {"status": "ok"} or {"status": "fail", "detail": ...}. The parent (runner.py) sees a
crash as the end of this process' output and names the case it was running.

A case passes when fastconv's result matches the reference (torch in float64 or in the input's
dtype; tests/reference.py for the roi ops) or when both refuse it, fastconv with a ValueError,
TypeError or MemoryError naming an argument. Memory is capped (RLIMIT_DATA) so that a size that
would take all of the machine's memory is a MemoryError here, in torch and in fastconv alike.
"""
import json
import math
import os
import re
import resource
import sys

import numpy as np

MEMORY_LIMIT = 3 * 2**30
FLOATS = ("float32", "float64")
ARGUMENTS = ("input", "weight", "bias", "stride", "padding", "dilation", "groups", "output_padding", "algo",
             "kernel_size", "ceil_mode", "divisor_override", "output_size", "running_mean", "running_var",
             "eps", "momentum", "residual", "boxes", "spatial_scale", "sampling_ratio", "grid", "mode",
             "padding_mode", "theta", "size", "scale_factor", "a", "b", "out", "align_corners", "antialias",
             "recompute_scale_factor")
REFUSALS = (ValueError, TypeError, MemoryError)
TRANSFORM_ALGOS = ("winograd", "fft")  # a non-finite input spreads over a whole transformed tile


class Refused(Exception):
    """The reference refused the case: fastconv must refuse it too."""


class Unchecked(Exception):
    """The reference cannot run the case (too large for it): fastconv may compute or refuse it."""


def make_array(spec, rng):
    """The array a case describes: values, dtype and memory layout."""
    shape, layout = tuple(spec["shape"]), spec["layout"]
    base_shape = (1,) + shape[1:] if layout == "broadcast" and shape else shape
    if layout == "strided" and shape:
        base_shape = shape[:-1] + (2 * shape[-1],)
    base = rng.standard_normal(base_shape)
    if spec["values"] == "nonfinite" and base.size:
        flat = base.reshape(-1)
        flat[rng.integers(0, flat.size, 3)] = [np.nan, np.inf, -np.inf]
    base = base.astype(spec["dtype"])
    if layout == "broadcast" and shape:
        return np.broadcast_to(base, shape)
    if layout == "strided" and shape:
        return base[..., ::2]
    if layout == "transposed":
        return np.ascontiguousarray(base.transpose()).transpose()
    return base


def _tensor(torch, a):
    return None if a is None else torch.tensor(np.ascontiguousarray(a, np.float64))


def _pair(value):
    return tuple(value) if isinstance(value, list) else value


def assert_close(ours, expected, dtype, terms=1, loose_nonfinite=False, what="output"):
    """ours (fastconv's dtype) against a float64 expected: same shape, NaN and infinities where it
    has them, finite values within a tolerance that grows with the terms each output sums.
    loose_nonfinite: where a non-finite value meets an implicit zero (padding, a transform's
    tile) the answer depends on the algorithm, not on the definition: there only the values
    finite on both sides are compared."""
    ours, expected = np.asarray(ours, np.float64), np.asarray(expected, np.float64)
    if ours.shape != expected.shape:
        raise AssertionError(f"{what}: shape {ours.shape}, expected {expected.shape}")
    if not loose_nonfinite:
        for name, test in (("NaN", np.isnan), ("+inf", np.isposinf), ("-inf", np.isneginf)):
            differ = test(ours) != test(expected)
            if differ.any():
                at = tuple(int(i) for i in np.argwhere(differ)[0])
                raise AssertionError(f"{what}: {name} differs at {at}: {ours[at]} vs expected {expected[at]}")
    finite = np.isfinite(ours) & np.isfinite(expected)
    if not finite.any():
        return
    scale = max(1.0, float(np.abs(expected[finite]).max()))
    tolerance = (2e-5 if dtype == "float32" else 1e-11) * scale * max(1.0, math.sqrt(terms)) * 10
    error = np.abs(ours - expected)[finite]
    if error.max() > tolerance:
        at = tuple(int(i) for i in np.argwhere(finite & (np.abs(ours - expected) == error.max()))[0])
        raise AssertionError(f"{what}: {ours[at]} vs expected {expected[at]} at {at} (tolerance {tolerance:.3g})")


# ---- one function per family: (fastconv's call, the reference's call, check(ours, theirs)) ----

def conv2d(case, arrays, torch):
    from fastconv import ops
    x, w, b = arrays["input"], arrays["weight"], arrays.get("bias")
    args = dict(stride=_pair(case["stride"]), padding=_pair(case["padding"]), dilation=_pair(case["dilation"]),
                groups=case["groups"])

    def theirs():
        y = torch.nn.functional.conv2d(_tensor(torch, x), _tensor(torch, w), _tensor(torch, b), **args)
        return (torch.relu(y) if case["relu"] else y).numpy()

    def check(ours, expected):
        # A non-finite weight times a padding zero: NaN in torch's im2col, nothing in kernels
        # that skip padding; a transform spreads any non-finite value over its tile.
        loose = not np.isfinite(w).all() or (case["algo"] in TRANSFORM_ALGOS and not np.isfinite(x).all())
        assert_close(ours, expected, x.dtype.name, w[0].size, loose)
    return lambda: ops.conv2d(x, w, b, **args, algo=case["algo"], relu=case["relu"]), theirs, check


def conv_transpose2d(case, arrays, torch):
    from fastconv import ops
    x, w, b = arrays["input"], arrays["weight"], arrays.get("bias")
    args = dict(stride=_pair(case["stride"]), padding=_pair(case["padding"]),
                output_padding=_pair(case["output_padding"]), groups=case["groups"],
                dilation=_pair(case["dilation"]))

    def theirs():
        return torch.nn.functional.conv_transpose2d(_tensor(torch, x), _tensor(torch, w), _tensor(torch, b),
                                                    **args).numpy()
    terms = w.shape[0] * math.prod(w.shape[2:])
    # fastconv computes a transposed convolution as a convolution over the zero-upsampled, padded
    # input, where a non-finite weight meets zeros (NaN) that PyTorch's scatter never forms.
    loose = not np.isfinite(w).all()
    return (lambda: ops.conv_transpose2d(x, w, b, **args), theirs,
            lambda ours, expected: assert_close(ours, expected, x.dtype.name, terms, loose))


def _window(case):
    return {k: _pair(case[k]) for k in ("kernel_size", "stride", "padding") if k in case}


def max_pool2d(case, arrays, torch):
    from fastconv import ops
    x = arrays["input"]
    args = dict(_window(case), dilation=_pair(case["dilation"]), ceil_mode=case["ceil_mode"],
                return_indices=case["return_indices"])

    def theirs():
        out = torch.nn.functional.max_pool2d(_tensor(torch, x), **args)
        return tuple(t.numpy() for t in out) if case["return_indices"] else out.numpy()

    def check(ours, expected):
        if not case["return_indices"]:
            return assert_close(ours, expected, x.dtype.name)
        assert_close(ours[0], expected[0], x.dtype.name)
        np.testing.assert_array_equal(ours[1], expected[1], err_msg="indices")
    return lambda: ops.max_pool2d(x, **args), theirs, check


def avg_pool2d(case, arrays, torch):
    from fastconv import ops
    x = arrays["input"]
    args = dict(_window(case), ceil_mode=case["ceil_mode"], count_include_pad=case["count_include_pad"],
                divisor_override=case["divisor_override"])
    kernel = _pair(case["kernel_size"])
    terms = min(np.prod(kernel if isinstance(kernel, tuple) else (kernel, kernel), dtype=float), 1e6)
    return (lambda: ops.avg_pool2d(x, **args),
            lambda: torch.nn.functional.avg_pool2d(_tensor(torch, x), **args).numpy(),
            lambda ours, expected: assert_close(ours, expected, x.dtype.name, terms))


def adaptive_avg_pool2d(case, arrays, torch):
    from fastconv import ops
    x, size = arrays["input"], _pair(case["output_size"])
    return (lambda: ops.adaptive_avg_pool2d(x, size),
            lambda: torch.nn.functional.adaptive_avg_pool2d(_tensor(torch, x), size).numpy(),
            lambda ours, expected: assert_close(ours, expected, x.dtype.name, math.prod(x.shape[2:])))


def batch_norm(case, arrays, torch):
    import fastconv.functional as F
    from fastconv import Tensor
    x, c, rng = arrays["input"], case["channels"], np.random.default_rng(case["seed"] + 1)
    dtype = x.dtype
    stats = [rng.standard_normal(c).astype(dtype), (rng.random(c) + 0.5).astype(dtype)]
    affine = [rng.standard_normal(c).astype(dtype) for _ in range(2)] if case["affine"] else [None, None]
    z = rng.standard_normal(x.shape).astype(dtype) if case["residual"] else None
    ours_stats, their_stats = [s.copy() for s in stats], [_tensor(torch, s) for s in stats]
    args = dict(training=case["training"], momentum=case["momentum"], eps=case["eps"])

    def ours():
        y = F.batch_norm(Tensor(x), *ours_stats, *(None if a is None else Tensor(a) for a in affine), **args,
                         residual=None if z is None else Tensor(z), relu=case["relu"])
        return y.numpy()

    def theirs():
        y = torch.nn.functional.batch_norm(_tensor(torch, x), *their_stats, *(_tensor(torch, a) for a in affine),
                                           **args)
        y = y if z is None else y + _tensor(torch, z)
        return (torch.relu(y) if case["relu"] else y).numpy()

    def check(out, expected):
        terms = x.size // max(c, 1)
        assert_close(out, expected, dtype.name, terms)
        for name, a, b in zip(("running_mean", "running_var"), ours_stats, their_stats):
            assert_close(a, b.numpy(), dtype.name, terms, what=name)
    return ours, theirs, check


def _boxes(case, dtype):
    return np.array(case["boxes"], np.float64).reshape(-1, 5).astype(dtype)


def _boxes_refused_by_definition(case, n):
    """Boxes torchvision would read out of bounds with (a batch index outside the input) or
    compute nothing meaningful from (a non-finite coordinate): fastconv must refuse them."""
    rows = np.array(case["boxes"], np.float64).reshape(-1, 5)
    return bool(len(rows)) and (not np.isfinite(rows).all() or (rows[:, 0] < 0).any() or (rows[:, 0] >= n).any())


def _roi(case, arrays, reference):
    x = arrays["input"]
    boxes = _boxes(case, x.dtype) if x.dtype.name in FLOATS else _boxes(case, np.float64)
    size = _pair(case["output_size"])
    size = size if isinstance(size, tuple) else (size, size)

    def theirs():
        if x.dtype.name not in FLOATS or _boxes_refused_by_definition(case, x.shape[0]):
            raise Refused("boxes or dtype")
        huge_box = bool(len(boxes)) and np.abs(np.asarray(boxes, np.float64)[:, 1:]).max() >= 1e29
        if min(size) <= 0 or max(size) > 64 or case.get("sampling_ratio", 0) > 64 or huge_box:
            raise Unchecked("sizes beyond the reference's reach")
        return reference(x, boxes, size)
    return x, boxes, theirs


def roi_align(case, arrays, torch):
    from fastconv import ops
    from tests.reference import roi_align_reference
    ratio = case["sampling_ratio"]
    args = dict(spatial_scale=case["spatial_scale"], aligned=case["aligned"])
    x, boxes, theirs = _roi(case, arrays, lambda x, b, size: roi_align_reference(
        x, b, size, sampling_ratio=ratio if ratio > 0 else -1, **args))
    return (lambda: ops.roi_align(x, boxes, _pair(case["output_size"]), sampling_ratio=ratio, **args), theirs,
            lambda ours, expected: assert_close(ours, expected, x.dtype.name, 64))


def roi_pool(case, arrays, torch):
    from fastconv import ops
    from tests.reference import roi_pool_reference
    x, boxes, theirs = _roi(case, arrays, lambda x, b, size: roi_pool_reference(
        x, b, size, spatial_scale=case["spatial_scale"]))

    def check(ours, expected):
        values, argmax = expected
        # torchvision starts a non-empty bin's maximum at -FLT_MAX (whatever the dtype), so a bin of
        # only NaN and -inf keeps it; tests/reference.py gives such a bin, like an empty one, 0.
        lowest = -np.finfo(np.float32).max
        values = np.where((argmax == -1) & (ours[0] == lowest), lowest, values)
        assert_close(ours[0], values, x.dtype.name)
        np.testing.assert_array_equal(ours[1], argmax, err_msg="argmax")
    return lambda: ops.roi_pool(x, boxes, _pair(case["output_size"]), case["spatial_scale"]), theirs, check


def grid_sample(case, arrays, torch):
    from fastconv import ops
    x, grid = arrays["input"], arrays["grid"] * np.asarray(case["grid_scale"], arrays["grid"].dtype)
    args = dict(mode=case["mode"], padding_mode=case["padding_mode"], align_corners=case["align_corners"])

    def theirs():
        if x.dtype.name not in FLOATS:
            raise Refused("dtype")
        same = [torch.tensor(np.ascontiguousarray(a)) for a in (x, grid)]  # torch in the input's dtype
        return torch.nn.functional.grid_sample(*same, **args).numpy()
    return (lambda: ops.grid_sample(x, grid, **args), theirs,
            lambda ours, expected: assert_close(ours, expected, x.dtype.name, 4))


def affine_grid(case, arrays, torch):
    from fastconv import ops
    theta, size = arrays["theta"], case["size"]
    return (lambda: ops.affine_grid(theta, size, case["align_corners"]),
            lambda: torch.nn.functional.affine_grid(  # in theta's dtype: linspace rounds per dtype
                torch.tensor(np.ascontiguousarray(theta)), size, case["align_corners"]).numpy(),
            lambda ours, expected: assert_close(ours, expected, theta.dtype.name, 3))


def interpolate(case, arrays, torch):
    from fastconv import ops
    x = arrays["input"]
    args = {k: _pair(case[k]) for k in ("size", "scale_factor", "recompute_scale_factor") if k in case}
    args.update(mode=case["mode"], align_corners=case["align_corners"], antialias=case.get("antialias", False))

    def theirs():
        if x.dtype.name not in FLOATS:
            raise Refused("dtype")
        # torch in the input's dtype: nearest floors a float32 product, as fastconv does
        t = torch.tensor(np.ascontiguousarray(x))
        expected = torch.nn.functional.interpolate(t, **args)
        if args["antialias"] and expected.shape[3] == 1 and expected.shape[2] > 1:
            # torch's antialiased CPU kernels give every row of a one-column output the first
            # row's value; the transposed resize, one row wide, they compute as defined
            swapped = {k: v[::-1] if isinstance(v, tuple) else v for k, v in args.items()}
            expected = torch.nn.functional.interpolate(t.transpose(2, 3), **swapped).transpose(2, 3)
        return expected.numpy()
    # A filter weight that is 0 in exact arithmetic (a cubic's zero crossings, a window's edge)
    # rounds to 0 or to either sign, so where it meets an infinity the answer is NaN, inf or -inf
    # by rounding: with such filters only the values finite on both sides are compared.
    filtered = args["mode"] == "bicubic" or args["antialias"]
    return (lambda: ops.interpolate(x, **args), theirs,
            lambda ours, expected: assert_close(ours, expected, x.dtype.name, 4,
                                                loose_nonfinite=filtered and not np.isfinite(x).all()))


def matmul(case, arrays, torch):
    from fastconv import ops
    a, b = arrays["a"], arrays["b"]
    return (lambda: ops.matmul(a, b), lambda: torch.matmul(_tensor(torch, a), _tensor(torch, b)).numpy(),
            lambda ours, expected: assert_close(ours, expected, a.dtype.name, a.shape[1]))


FAMILIES = {f.__name__: f for f in (conv2d, conv_transpose2d, max_pool2d, avg_pool2d, adaptive_avg_pool2d,
                                     batch_norm, roi_align, roi_pool, grid_sample, affine_grid, interpolate, matmul)}


def names_an_argument(error):
    return re.search(r"\b(" + "|".join(ARGUMENTS) + r")\b", str(error)) is not None


def _empty(result):
    """An empty result, or a tuple of them. Where input or output is empty PyTorch checks its
    arguments only in part (conv2d takes dilation 0 on an empty batch, max_pool2d refuses an empty
    plane that avg_pool2d takes): there either side may refuse, and a result computed is empty."""
    arrays = result if isinstance(result, tuple) else (result,)
    return all(isinstance(a, np.ndarray) and a.size == 0 for a in arrays)


def _beyond_int32(case):
    values = [case.get(k) for k in ("kernel_size", "stride", "padding", "dilation", "output_size", "groups",
                                    "output_padding", "divisor_override", "sampling_ratio")]
    flat = [v for value in values for v in (value if isinstance(value, list) else [value]) if v is not None]
    return any(abs(v) >= 2**31 - 1 for v in flat)


def _empty_plane(case):
    return 0 in case["input"]["shape"][2:]


# Where fastconv knowingly differs from the reference: (family, the case and failure it covers,
# why). Each refuses an input that PyTorch or torchvision returns an empty or undefined result for.
KNOWN_DIFFERENCES = [
    ("conv_transpose2d", lambda case, failure: "refused" in failure and _empty_plane(case),
     "an input plane of size 0 is refused (torch returns an empty output when the batch is empty)"),
    ("adaptive_avg_pool2d", lambda case, failure: "refused" in failure and _empty_plane(case),
     "an empty plane is refused; torch's shortcut for output size 1 returns its NaN mean unchecked"),
    ("roi_align", lambda case, failure: "refused" in failure and _empty_plane(case),
     "an empty input plane is refused; torchvision does not check"),
    ("roi_pool", lambda case, failure: "refused" in failure and _empty_plane(case),
     "an empty input plane is refused; torchvision does not check"),
    ("conv2d", lambda case, failure: "naming no argument" in failure and "64-bit sizes" in failure,
     "an output (or, for an empty batch, im2col's per-image columns) past 64-bit sizes is refused naming "
     "the output rather than the padding that made it so"),
] + [(family, lambda case, failure: ("refuse" in failure or "output: shape" in failure) and _beyond_int32(case),
      "PyTorch's window arithmetic overflows (32-bit for pooling and some convolution paths, unchecked "
      "64-bit for the dilated kernel) into sizes it then computes, refuses, or gets wrong (a stride of "
      "2^32 + 1 gives it an empty output where one window fits); fastconv computes in checked 64-bit "
      "arithmetic and refuses only what overflows there") for family in FAMILIES]


def known_difference(case, failure):
    return any(family == case["family"] and covers(case, failure) for family, covers, _ in KNOWN_DIFFERENCES)


def run_case(case, torch):
    failure = _run_case(case, torch)
    return None if failure is None or known_difference(case, failure) else failure


def _run_case(case, torch):
    rng = np.random.default_rng(case["seed"])
    arrays = {k: make_array(v, rng) for k, v in case.items() if isinstance(v, dict)}
    floats = all(a.dtype.name in FLOATS for a in arrays.values())
    ours, theirs, check = FAMILIES[case["family"]](case, arrays, torch)
    try:
        expected = theirs() if floats else Refused("dtype")
    except (Refused, Unchecked, RuntimeError, ValueError, TypeError, IndexError, OverflowError) as error:
        expected = error
    try:
        result = ours()
    except REFUSALS as error:
        if not names_an_argument(error) and not isinstance(error, MemoryError):
            return f"{type(error).__name__} naming no argument: {error}"
        if isinstance(expected, BaseException) or isinstance(error, MemoryError) or _empty(expected):
            return None
        if str(error).startswith("algo"):  # the algorithm asked for cannot run this shape
            return None
        return f"fastconv refused what the reference computes: {type(error).__name__}: {error}"
    except Exception as error:  # noqa: BLE001 - any other exception is what the fuzzing looks for
        return f"unexpected {type(error).__name__}: {error}"
    if isinstance(expected, Unchecked) or (isinstance(expected, BaseException) and _empty(result)):
        return None
    if isinstance(expected, BaseException):
        return f"fastconv computed what the reference refuses ({type(expected).__name__}: {expected})"
    try:
        check(result, expected)
    except AssertionError as error:
        return f"mismatch: {error}"
    return None


def main():
    if os.environ.get("FASTCONV_FUZZ_MEMORY_LIMIT") != "none":  # scripts/sanitize.sh caps allocations itself
        resource.setrlimit(resource.RLIMIT_DATA, (MEMORY_LIMIT, MEMORY_LIMIT))
    import fastconv
    import torch
    fastconv.set_num_threads(1)
    torch.set_num_threads(1)
    np.seterr(all="ignore")
    for line in sys.stdin:
        failure = run_case(json.loads(line), torch)
        answer = {"status": "ok"} if failure is None else {"status": "fail", "detail": failure}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
