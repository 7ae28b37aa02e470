"""Hostile scales and sizes for interpolate: its kernels turn output index / scale into an int64
source index, so a NaN, negative or vanishing scale given to fastconv._C is refused with a
ValueError naming it (the Python op already refuses non-positive and non-finite scale factors);
an empty batch with a huge output size computes nothing."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastconv._C as C
from fastconv import ops

@pytest.mark.parametrize("scale", [float("nan"), -1.0, 1e-320, float("inf")])
@pytest.mark.parametrize("axis", ["scale_h", "scale_w"])
def test_interpolate_refuses_a_scale_whose_source_index_cannot_exist(scale, axis):
    x = np.ones((1, 2, 4, 4), np.float32)
    out = np.empty((1, 2, 8, 8), np.float32)
    scales = {"scale_h": 0.0, "scale_w": 0.0, axis: scale}
    with pytest.raises(ValueError, match=rf"{axis}: expected 0 \(input size / output size\) or a positive finite "
                                         r"scale whose source indices fit in 64 bits"):
        C.interpolate_forward(x, out, 0, False, scales["scale_h"], scales["scale_w"])
    with pytest.raises(ValueError, match=rf"{axis}: expected 0"):
        C.interpolate_backward(out, x.copy(), 1, False, scales["scale_h"], scales["scale_w"])


def test_vanishing_scale_does_not_crash_the_process():
    code = textwrap.dedent("""
        import numpy as np
        import fastconv._C as C
        x = np.ones((1, 2, 4, 4), np.float32)
        out = np.empty((1, 2, 8, 8), np.float32)
        for mode in (0, 1):
            try:
                C.interpolate_forward(x, out, mode, False, 1e-320, 1e-320)
            except ValueError as e:
                print("refused:", e)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("refused:") == 2, result.stdout


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_interpolate_of_an_empty_batch_builds_no_tables_for_its_huge_output(mode):
    # (0, 1, 1, 6e12) holds nothing; the per-column tap table it would need holds 6e12 entries.
    out = ops.interpolate(np.zeros((0, 1, 3, 6)), scale_factor=(0.5, 1e12), mode=mode, recompute_scale_factor=False)
    assert out.shape == (0, 1, 1, 6 * 10**12)
    grad = ops.interpolate_backward(out, (0, 1, 3, 6), scale_factor=(0.5, 1e12), mode=mode,
                                    recompute_scale_factor=False)
    assert grad.shape == (0, 1, 3, 6)
