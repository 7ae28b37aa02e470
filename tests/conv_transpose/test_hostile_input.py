"""Hostile geometry for conv_transpose2d: a padding or stride near 2^63 wrapped the output size
into a plausible one (heap corruption, or silent zeros). The output size is now computed term by
term in checked int64 and refused with a ValueError naming the argument, as PyTorch refuses it."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastconv._C as C
from fastconv import ops


def _arrays():
    rng = np.random.default_rng(0)
    return rng.standard_normal((1, 2, 8, 8)).astype(np.float32), rng.standard_normal((2, 3, 3, 3)).astype(np.float32)


def _output_shape(stride=1, padding=0, output_padding=0, dilation=1):
    pair = lambda v: (v, v)
    return C.conv_transpose2d_output_shape((1, 2, 8, 8), (2, 3, 3, 3), pair(stride), pair(padding),
                                           pair(output_padding), pair(dilation), 1)


@pytest.mark.parametrize("case, message", [
    (dict(padding=2**62), r"padding: 2 \* padding overflows 64-bit sizes"),
    (dict(padding=2**63 - 1), r"padding: 2 \* padding overflows 64-bit sizes"),
    (dict(stride=2**62), r"stride: \(input height - 1\) \* stride overflows 64-bit sizes"),
    (dict(dilation=2**62), r"dilation: dilation \* \(kernel height - 1\) overflows 64-bit sizes"),
    (dict(stride=2**60, dilation=2**62 - 1), r"input: the output size .* overflows 64-bit sizes"),
])
def test_output_size_overflow_is_refused(case, message):
    with pytest.raises(ValueError, match=message):
        _output_shape(**case)
    x, w = _arrays()
    with pytest.raises(ValueError, match=message):
        ops.conv_transpose2d(x, w, **case)


def test_padding_larger_than_the_output_is_refused_not_wrapped():
    with pytest.raises(ValueError, match=r"input: output size height -4611686018427387894 is not positive"):
        _output_shape(padding=2**61)


def test_huge_padding_does_not_crash_the_process():
    code = textwrap.dedent("""
        import numpy as np
        from fastconv import ops
        x = np.ones((1, 2, 8, 8), np.float32)
        w = np.ones((2, 3, 3, 3), np.float32)
        for kw in (dict(padding=2**62), dict(padding=2**63 - 1), dict(padding=2**61), dict(stride=2**62),
                   dict(padding=(2**62 - 2, 0), stride=(2**61, 1))):
            try:
                ops.conv_transpose2d(x, w, **kw)
            except ValueError as e:
                print("refused:", e)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("refused:") == 5, result.stdout + result.stderr
