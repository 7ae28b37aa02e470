"""Fuzz cases, one generator per op family: plain dicts (JSON, so that a worker process can run
them and a failure prints them whole) of shapes, dtypes, memory layouts, value classes and
arguments. Mostly arguments PyTorch accepts and sizes that are empty or small; now and then an
integer at the edge of int32/int64, a wrong dtype, NaN and infinities.

Hypothesis draws one string of bytes per case and a family's generator reads its choices from
it (Choices): one draw costs a twentieth of the forty separate draws a case needs, which is what
lets CI run a thousand cases per family in seconds. Hypothesis still derandomizes, replays and
shrinks: shrinking the bytes towards zero moves every choice towards its first, simplest option.
"""
from hypothesis import strategies as st

# Integers at the edges that the C++ geometry must refuse or compute without overflow.
EDGE_INTS = [0, -1, -2**31, 2**31 - 1, 2**31, 2**32 + 1, 2**62, 2**63 - 1, -2**63]
DTYPES = ["float32", "float64"]
WRONG_DTYPES = ["float16", "int64", "bool"]  # refused with a TypeError naming the array
# contiguous; every other element of a wider array; the transpose of a reversed-shape array;
# a broadcast (overlapping, read-only) view of one image.
LAYOUTS = ["contiguous", "strided", "transposed", "broadcast"]
VALUES = ["normal", "normal", "nonfinite"]  # nonfinite: a few elements NaN, +inf, -inf
CASE_BYTES = 64


class Choices:
    """Reads a case's choices from hypothesis' bytes, one byte each (zero past the end)."""

    def __init__(self, data):
        self.data, self.at = data, 0

    def byte(self):
        value = self.data[self.at] if self.at < len(self.data) else 0
        self.at += 1
        return value

    def integer(self, lo, hi):
        return lo + self.byte() % (hi - lo + 1)

    def pick(self, options):
        return options[self.byte() % len(options)]

    def flag(self):
        return self.byte() % 2 == 1

    def rarely(self, eighths=1):
        """True for `eighths` of every eight cases."""
        return self.byte() % 8 >= 8 - eighths

    def maybe_edge(self, lo, hi):
        """An integer in [lo, hi], or one of EDGE_INTS one time in eight."""
        return self.pick(EDGE_INTS) if self.rarely() else self.integer(lo, hi)

    def pair(self, lo, hi):
        """An int or a pair of ints, as PyTorch's window arguments take them."""
        if self.flag():
            return [self.maybe_edge(lo, hi), self.maybe_edge(lo, hi)]
        return self.maybe_edge(lo, hi)

    def dtype(self):
        return self.pick(WRONG_DTYPES) if self.byte() % 16 == 15 else self.pick(DTYPES)

    def array(self, shape, dtype):
        """An array's description; the worker draws its values from the case's seed."""
        return {"shape": list(shape), "dtype": dtype, "layout": self.pick(LAYOUTS), "values": self.pick(VALUES)}

    def image(self, dtype, channels_hi=4, size_hi=9):
        return self.array([self.integer(0, 3), self.integer(1, channels_hi), self.integer(0, size_hi),
                           self.integer(0, size_hi)], dtype)


def conv2d(c):
    dtype, groups = c.dtype(), c.pick([1, 1, 2, 3, 0, -1, 2**31]) if c.rarely(2) else 1
    g = groups if 0 < groups < 2**31 else 1
    c_per, k_per = c.integer(1, 3), c.integer(1, 3)
    kernel = [c.integer(0, 4) if c.rarely() else c.integer(1, 4), c.integer(1, 4)]
    return {"input": c.array([c.integer(0, 3), c_per * g, c.integer(0, 9), c.integer(0, 9)], dtype),
            "weight": c.array([k_per * g, c_per] + kernel, dtype),
            "bias": c.array([k_per * g], dtype) if c.flag() else None,
            "stride": c.pair(1, 3), "padding": c.pair(0, 2), "dilation": c.pair(1, 2), "groups": groups,
            "algo": c.pick(["auto", "auto", "im2col", "implicit_gemm", "direct", "winograd", "fft", "depthwise"]),
            "relu": c.flag()}


def conv_transpose2d(c):
    case = conv2d(c)
    c_in, k_out = case["input"]["shape"][1], case["weight"]["shape"][0]
    g = case["groups"] if 0 < case["groups"] < 2**31 else 1
    k_per = max(k_out // g, 1)  # weight (C_in, C_out / groups, R, S): the conv weight's roles swapped
    case["weight"]["shape"] = [c_in, k_per] + case["weight"]["shape"][2:]
    if case["bias"] is not None:
        case["bias"]["shape"] = [k_per * g]
    case["output_padding"] = c.pair(0, 1)
    del case["algo"], case["relu"]
    return case


def max_pool2d(c):
    return {"input": c.image(c.dtype()), "kernel_size": c.pair(1, 4),
            "stride": c.pair(1, 3) if c.flag() else None, "padding": c.pair(0, 2), "dilation": c.pair(1, 2),
            "ceil_mode": c.flag(), "return_indices": c.flag()}


def avg_pool2d(c):
    return {"input": c.image(c.dtype()), "kernel_size": c.pair(1, 4),
            "stride": c.pair(1, 3) if c.flag() else None, "padding": c.pair(0, 2), "ceil_mode": c.flag(),
            "count_include_pad": c.flag(), "divisor_override": c.maybe_edge(1, 5) if c.rarely(2) else None}


def adaptive_avg_pool2d(c):
    return {"input": c.image(c.dtype()), "output_size": c.pair(1, 7)}


def batch_norm(c):
    dtype = c.dtype()
    shape = [c.integer(0, 4), c.integer(1, 4)] + [c.integer(0, 4) for _ in range(c.integer(0, 2))]
    return {"input": c.array(shape, dtype), "channels": shape[1], "training": c.flag(), "affine": c.flag(),
            "momentum": c.pick([0.1, 0.0, 1.0, 0.5]), "eps": c.pick([1e-5, 1e-3, 0.0, 1.0]), "relu": c.flag(),
            "residual": c.flag()}


def _coordinate(c):
    if c.byte() % 16 == 15:
        return c.pick([float("nan"), float("inf"), -1e30, 1e30])
    return (c.byte() * 256 + c.byte()) / 65536 * 18 - 4  # [-4, 14) on planes of up to 9 pixels


def _boxes(c, images):
    rows = []
    for _ in range(c.integer(0, 5)):
        index = c.pick([-1, images, 2**40]) if c.byte() % 16 == 15 else c.integer(0, max(images - 1, 0))
        rows.append([index] + [_coordinate(c) for _ in range(4)])
    return rows


def roi_align(c):
    x = c.image(c.dtype())
    return {"input": x, "boxes": _boxes(c, x["shape"][0]), "output_size": c.pair(1, 4),
            "spatial_scale": c.pick([1.0, 0.5, 0.25, 2.0]), "sampling_ratio": c.maybe_edge(-1, 3),
            "aligned": c.flag()}


def roi_pool(c):
    x = c.image(c.dtype())
    return {"input": x, "boxes": _boxes(c, x["shape"][0]), "output_size": c.pair(1, 4),
            "spatial_scale": c.pick([1.0, 0.5, 0.25, 2.0])}


def grid_sample(c):
    dtype, n = c.dtype(), c.integer(0, 3)
    return {"input": c.array([n, c.integer(1, 3), c.integer(1, 7), c.integer(1, 7)], dtype),
            "grid": c.array([n, c.integer(0, 5), c.integer(0, 5), 2], dtype), "grid_scale": c.pick([1.0, 1.5, 3.0]),
            "mode": c.pick(["bilinear", "nearest"]), "padding_mode": c.pick(["zeros", "border", "reflection"]),
            "align_corners": c.flag()}


def affine_grid(c):
    n = c.integer(0, 3)
    return {"theta": c.array([n, 2, 3], c.dtype()),
            "size": [n, c.integer(1, 3), c.maybe_edge(1, 8), c.integer(1, 8)], "align_corners": c.flag()}


def interpolate(c):
    mode = c.pick(["nearest", "bilinear", "bicubic", "area"])
    case = {"input": c.image(c.dtype()), "mode": mode, "align_corners": c.flag() if mode != "nearest" else None,
            "antialias": c.flag() if mode != "nearest" else c.rarely()}
    if c.flag():
        case["size"] = c.pair(1, 9)
    else:
        scales = [0.5, 1.0, 1.5, 2.0, 3.0, 0.3, 1e-3, 1e12]
        case["scale_factor"] = [c.pick(scales), c.pick(scales)] if c.flag() else c.pick(scales)
        case["recompute_scale_factor"] = c.pick([None, True, False])
    return case


def matmul(c):
    dtype, m, k, n = c.dtype(), c.integer(0, 17), c.integer(0, 17), c.integer(0, 17)
    return {"a": c.array([m, k], dtype), "b": c.array([c.integer(0, 17) if c.rarely() else k, n], dtype)}


def _strategy(family, generate):
    def case(data):
        c = Choices(data)
        return {"family": family, "seed": c.integer(0, 255) * 256 + c.byte(), **generate(c)}
    return st.binary(min_size=CASE_BYTES, max_size=CASE_BYTES).map(case)


FAMILIES = {f.__name__: _strategy(f.__name__, f) for f in (
    conv2d, conv_transpose2d, max_pool2d, avg_pool2d, adaptive_avg_pool2d, batch_norm, roi_align, roi_pool,
    grid_sample, affine_grid, interpolate, matmul)}
