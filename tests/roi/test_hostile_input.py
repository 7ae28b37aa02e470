"""Hostile boxes and parameters for roi_align and roi_pool: each is refused with a ValueError
naming the argument, before any kernel runs. Calls that once crashed run in a subprocess, so
that a regression fails its test instead of ending the run."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from fastconv import ops

ROI_OPS = {"roi_align": lambda x, b, **kw: ops.roi_align(x, b, (2, 2), **kw),
           "roi_pool": lambda x, b, **kw: ops.roi_pool(x, b, (2, 2), **kw)}


def run_isolated(code):
    """Runs `code` in a fresh interpreter; its return code and what it printed."""
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                            timeout=120, env=None)
    return result.returncode, result.stdout + result.stderr


def _input(dtype=np.float32):
    return np.random.default_rng(0).random((2, 3, 8, 8)).astype(dtype)


def _boxes(rows, dtype=np.float32):
    return np.array(rows, dtype=dtype)


@pytest.mark.parametrize("op", sorted(ROI_OPS))
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("column", [1, 2, 3, 4])
def test_non_finite_box_coordinate_is_refused(op, bad, column):
    rows = [[0, 1, 1, 5, 5]] * 4
    rows[3] = list(rows[3])
    rows[3][column] = bad
    with pytest.raises(ValueError, match=r"boxes: box 3 has a non-finite coordinate"):
        ROI_OPS[op](_input(), _boxes(rows))


@pytest.mark.parametrize("op", sorted(ROI_OPS))
@pytest.mark.parametrize("scale", [np.nan, np.inf, -np.inf])
def test_non_finite_spatial_scale_is_refused(op, scale):
    with pytest.raises(ValueError, match=r"spatial_scale: expected a finite number, got"):
        ROI_OPS[op](_input(), _boxes([[0, 1, 1, 5, 5]]), spatial_scale=scale)


def test_roi_align_backward_refuses_non_finite_boxes():
    dy = np.ones((1, 3, 2, 2), np.float64)
    with pytest.raises(ValueError, match=r"boxes: box 0 has a non-finite coordinate"):
        ops.roi_align_backward(dy, _boxes([[0, np.nan, 1, 5, 5]], np.float64), (2, 3, 8, 8))


def test_box_whose_side_overflows_float32_is_refused():
    # both corners finite, their difference is not: the side would become inf, then NaN samples
    with pytest.raises(ValueError, match=r"boxes: box 0 has a non-finite coordinate or side"):
        ops.roi_align(_input(), _boxes([[0, -3e38, 0, 3e38, 4]]), (2, 2))


def test_nan_box_does_not_crash_the_process():
    code, out = run_isolated("""
        import numpy as np
        from fastconv import ops
        x = np.ones((1, 2, 8, 8), np.float32)
        for scale in (1.0, float("nan")):
            for fn in (ops.roi_align, ops.roi_pool):
                try:
                    fn(x, np.array([[0, 1, 1, np.nan, 4]], np.float32), (2, 2), spatial_scale=scale)
                except ValueError as e:
                    print("refused:", e)
    """)
    assert code == 0, out
    assert out.count("refused:") == 4, out


@pytest.mark.parametrize("ratio", [2**31 - 1, 2**32 - 1, 2**40, 2**62])
def test_huge_sampling_ratio_is_refused(ratio):
    with pytest.raises(ValueError, match=r"sampling_ratio: expected at most 67108864 samples per bin"):
        ops.roi_align(_input(), _boxes([[0, 1, 1, 5, 5]]), (2, 2), sampling_ratio=ratio)


def test_sampling_ratio_whose_grid_is_too_large_is_refused():
    # 2^13 per axis is 2^26 per bin; four bins are too many for one box's table
    with pytest.raises(ValueError, match=r"boxes: box 0 needs 8192 x 8192 samples in each of its 4 bins"):
        ops.roi_align(_input(), _boxes([[0, 1, 1, 5, 5]]), (2, 2), sampling_ratio=2**13)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_huge_box_with_adaptive_sampling_is_refused(dtype):
    with pytest.raises(ValueError, match=r"boxes: box 1 needs .* samples in each of its 4 bins, more than the "
                                         r"67108864 samples a box may have"):
        ops.roi_align(_input(dtype), _boxes([[0, 1, 1, 5, 5], [1, 0, 0, 1e9, 1e9]], dtype), (2, 2))


def test_huge_box_does_not_crash_the_process():
    code, out = run_isolated("""
        import numpy as np
        from fastconv import ops
        x = np.ones((1, 2, 8, 8), np.float32)
        for boxes, ratio in (([[0, 0, 0, 1e30, 1e30]], -1), ([[0, 0, 0, 4, 4]], 2**32 - 1),
                             ([[0, 0, 0, 3e38, 2]], -1)):
            try:
                ops.roi_align(x, np.array(boxes, np.float32), (2, 2), sampling_ratio=ratio)
            except ValueError as e:
                print("refused:", e)
    """)
    assert code == 0, out
    assert out.count("refused:") == 3, out


def test_box_with_an_empty_side_and_a_huge_one_is_refused():
    # the empty side makes the product of the grid 0; the huge side alone would overflow
    with pytest.raises(ValueError, match=r"boxes: box 0 needs"):
        ops.roi_align(_input(), _boxes([[0, 0, 5, 1e30, 1]]), (2, 2), aligned=True)


@pytest.mark.parametrize("coordinate", [2.0**31, -(2.0**33), 1e20])
def test_roi_pool_coordinate_beyond_int32_is_refused(coordinate):
    with pytest.raises(ValueError, match=r"boxes: box 0 has a coordinate beyond \+-2\^31 pixels"):
        ops.roi_pool(_input(), _boxes([[0, 1, 1, coordinate, 5]], np.float64).astype(np.float32), (2, 2))


def test_roi_pool_scale_that_pushes_boxes_beyond_int32_is_refused():
    with pytest.raises(ValueError, match=r"boxes: box 0 has a coordinate beyond"):
        ops.roi_pool(_input(), _boxes([[0, 1, 1, 5, 5]]), (2, 2), spatial_scale=1e12)


def test_large_but_computable_boxes_still_run():
    x = _input(np.float64)
    boxes = _boxes([[0, -1e6, -1e6, 1e6, 1e6], [1, 1, 1, 5, 5]], np.float64)
    out = ops.roi_align(x, boxes, (2, 2), sampling_ratio=4)
    assert np.isfinite(out).all()
    pooled, _ = ops.roi_pool(x, _boxes([[0, -2e9, -2e9, 2e9, 2e9]], np.float64), (2, 2))
    assert np.isfinite(pooled).all()


@pytest.mark.parametrize("op", ["roi_align", "roi_pool"])
def test_no_boxes_with_a_huge_output_size_allocates_no_scratch(op):
    # (0, C, 1, 2**31 - 1) holds nothing; the kernels' per-thread bin buffers would take 64 GB.
    out = getattr(ops, op)(np.ones((1, 1, 1, 1), np.float32), np.zeros((0, 5), np.float32), (1, 2**31 - 1))
    out = out[0] if isinstance(out, tuple) else out
    assert out.shape == (0, 1, 1, 2**31 - 1)
