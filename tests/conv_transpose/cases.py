"""Arrays for the transposed-convolution cases of the tests in this folder: a case is
(N, C_in, H, W, C_out per group, R, S, stride, padding, output_padding, groups[, dilation])."""
import numpy as np


def case_arrays(rng, case, dtype=np.float64):
    """(input, weight, bias) of a case, standard normal."""
    n, c, h, w_, co, r, s, *_rest = case
    groups = case[10]
    x = rng.standard_normal((n, c, h, w_)).astype(dtype)
    w = rng.standard_normal((c, co, r, s)).astype(dtype)
    b = rng.standard_normal(co * groups).astype(dtype)
    return x, w, b
