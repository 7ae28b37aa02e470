"""Hostile geometry for conv2d: strides, paddings and dilations near 2^63, sizes whose products
overflow int64, and allocations that cannot succeed. Each is computed as PyTorch computes it, or
refused with an exception naming the argument; never a crash. Calls that once crashed run in a
subprocess, so that a regression fails its test instead of ending the run."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastconv._C as C
from fastconv import ops

try:
    import torch
except ImportError:  # the comparisons below need it; the refusals do not
    torch = None


def run_isolated(code):
    """Runs `code` in a fresh interpreter; its return code and what it printed."""
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300)
    return result.returncode, result.stdout + result.stderr


def _args(stride=(1, 1), pad_begin=(0, 0), pad_end=(0, 0), dilation=(1, 1), groups=1):
    return stride, pad_begin, pad_end, dilation, groups


def _arrays(dtype=np.float32):
    rng = np.random.default_rng(0)
    return rng.standard_normal((2, 2, 8, 8)).astype(dtype), rng.standard_normal((3, 2, 3, 3)).astype(dtype)


@pytest.mark.parametrize("stride", [2**31, 2**32 + 1, 2**62, 2**63 - 1])
@pytest.mark.parametrize("algo", ["auto", "im2col"])
def test_huge_stride_computes_one_pixel_as_torch(stride, algo):
    x, w = _arrays(np.float64)
    y = ops.conv2d(x, w, stride=stride, algo=algo)
    assert y.shape == (2, 3, 1, 1)
    expected = np.einsum("nchw,kchw->nk", x[:, :, :3, :3], w)[:, :, None, None]
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.skipif(torch is None, reason="needs torch")
def test_huge_stride_and_padding_match_torch():
    x, w = _arrays(np.float64)
    kw = dict(stride=2**41, padding=2**40)
    y = ops.conv2d(x, w[:, :, :1, :1], **kw)
    expected = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w[:, :, :1, :1]), **kw).numpy()
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


def test_implicit_gemm_refuses_a_stride_whose_phases_do_not_fit():
    x, w = _arrays()
    assert C.conv2d_unsupported_reason("implicit", x.shape, w.shape, *_args(stride=(2**31, 2**31))) is not None
    with pytest.raises(ValueError, match=r"algo='implicit' cannot run this convolution: implicit GEMM copies the "
                                         r"input into stride_h x stride_w phase planes"):
        ops.conv2d(x, w, stride=2**31, algo="implicit")


def test_huge_stride_under_auto_does_not_crash_the_process():
    code, out = run_isolated("""
        import numpy as np
        from fastconv import ops
        x = np.ones((2, 2, 8, 8), np.float32)
        w = np.ones((3, 2, 3, 3), np.float32)
        for stride in (2**31, 2**32, (2**31, 1), (1, 2**40), 2**62):
            print(ops.conv2d(x, w, stride=stride, algo="auto").shape)
    """)
    assert code == 0, out


@pytest.mark.parametrize("case, message", [
    (dict(pad_begin=(2**62, 0), pad_end=(2**62, 0)), r"padding: the padded input height overflows 64-bit sizes"),
    (dict(pad_begin=(0, 2**63 - 1), pad_end=(0, 1)), r"padding: the padded input width overflows 64-bit sizes"),
    (dict(dilation=(2**62, 1)), r"dilation: the dilated kernel height overflows 64-bit sizes"),
    (dict(dilation=(1, 2**63 - 1)), r"dilation: the dilated kernel width overflows 64-bit sizes"),
    (dict(pad_begin=(2**40, 2**40), pad_end=(2**40, 2**40)),
     r"output: an array of shape \(1, 3, 2199023255558, 2199023255558\) has more bytes than 64-bit sizes hold"),
])
def test_output_shape_overflow_is_refused(case, message):
    with pytest.raises(ValueError, match=message):
        C.conv2d_output_shape((1, 2, 8, 8), (3, 2, 3, 3), *_args(**case))


def test_input_and_weight_whose_element_count_overflows_are_refused():
    with pytest.raises(ValueError, match=r"input: an array of shape \(1099511627776, 1099511627776, 8, 8\) has more "
                                         r"bytes than 64-bit sizes hold"):
        C.conv2d_output_shape((2**40, 2**40, 8, 8), (3, 2**40, 3, 3), *_args())
    with pytest.raises(ValueError, match=r"output: the im2col matrix"):
        C.conv2d_output_shape((1, 2**20, 2**11, 2**11), (1, 2**20, 2**10, 2**10), *_args())


def test_output_size_overflow_does_not_crash_the_process():
    code, out = run_isolated("""
        import fastconv._C as C
        from fastconv import ops
        import numpy as np
        cases = [((1, 1), (2**62, 2**62), (2**62, 2**62), (1, 1)), ((2**62, 2**62), (0, 0), (0, 0), (2**62, 2**62)),
                 ((1, 1), (2**63 - 1, 0), (1, 0), (1, 1))]
        for st, pb, pe, dl in cases:
            for algo in C.conv2d_algorithms():
                try:
                    C.conv2d_unsupported_reason(algo, (1, 2, 8, 8), (3, 2, 3, 3), st, pb, pe, dl, 1)
                except ValueError as e:
                    print("refused:", e)
        try:
            ops.conv2d(np.ones((1, 2, 8, 8), np.float32), np.ones((3, 2, 3, 3), np.float32), padding=2**62)
        except ValueError as e:
            print("refused:", e)
    """)
    assert code == 0, out
    assert out.count("refused:") == 3 * len(C.conv2d_algorithms()) + 1, out


def test_failed_allocation_is_a_memory_error_with_its_size():
    with pytest.raises(MemoryError, match=r"empty: cannot allocate \d+ bytes"):
        C.empty([2**40], np.dtype(np.float64))  # 8 TiB: more than any machine's memory and swap
    with pytest.raises(ValueError, match=r"empty: array is too big"):
        C.empty([2**40, 2**40], np.dtype(np.float64))


def test_failed_allocation_inside_a_parallel_region_is_a_memory_error():
    # Implicit GEMM allocates each thread's phase planes inside its parallel region: 2^30 values
    # for this stride, more than the address space the subprocess allows itself, so the
    # allocation fails on the worker threads without touching the machine's memory. Before, the
    # std::bad_alloc left the OpenMP region and the runtime aborted the process.
    code, out = run_isolated("""
        import resource
        import numpy as np
        import fastconv
        import fastconv._C as C
        from fastconv import ops
        fastconv.set_num_threads(2)
        x = np.ones((2, 1, 8, 8), np.float32)
        w = np.ones((1, 1, 1, 1), np.float32)
        args = ((2**15, 2**14), (0, 0), (0, 0), (1, 1), 1)
        assert C.conv2d_unsupported_reason("implicit", x.shape, w.shape, *args) is None
        with open("/proc/self/status") as f:
            vm = next(int(line.split()[1]) for line in f if line.startswith("VmSize:")) * 1024
        resource.setrlimit(resource.RLIMIT_AS, (vm + (1 << 30), resource.RLIM_INFINITY))
        try:
            ops.conv2d(x, w, stride=(2**15, 2**14), algo="implicit")
        except MemoryError as e:
            print("MemoryError:", e)
    """)
    assert code == 0, out
    assert "MemoryError: scratch: cannot allocate" in out, out
