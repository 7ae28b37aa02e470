import gc
import os
import subprocess
import sys

import numpy as np
import pytest

import fastconv


def test_show_config_reports_the_essentials(capsys):
    fastconv.show_config()
    out = capsys.readouterr().out
    for word in ("fastconv 0.1.0", "isa:", "threads:", "openmp:", "cuda:"):
        assert word in out


def test_set_num_threads_round_trips():
    before = fastconv.get_num_threads()
    try:
        fastconv.set_num_threads(1)
        assert fastconv.get_num_threads() == 1
    finally:
        fastconv.set_num_threads(before)
    with pytest.raises(ValueError, match="n must be >= 1"):
        fastconv.set_num_threads(0)
    with pytest.raises(TypeError):
        fastconv.set_num_threads(1.5)


def test_set_isa_rejects_unknown_names():
    with pytest.raises(ValueError, match="expected one of 'generic', 'avx2', 'avx512'"):
        fastconv.set_isa("sse9")


def _run(env_overrides, code, timeout=None):
    env = dict(os.environ, **env_overrides)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=timeout)


def test_environment_forces_isa_and_threads():
    result = _run({"FASTCONV_ISA": "generic", "FASTCONV_NUM_THREADS": "1"},
                  "import fastconv; print(fastconv._runtime.get_isa(), fastconv.get_num_threads())")
    assert result.stdout.split() == ["generic", "1"], result.stderr
    bad = _run({"FASTCONV_ISA": "nonsense"}, "import fastconv")
    assert "FASTCONV_ISA='nonsense'" in bad.stderr


# A child forked after the parent's OpenMP threads started: GNU OpenMP cannot start them again
# there, and a parallel region waited forever. The child computes (the same result) on one thread,
# and refuses more; one forked before any threaded work keeps its threads.
_FORKED_CHILD = """
import os, numpy as np, fastconv
from fastconv import ops
fastconv.set_num_threads(2)
x = np.random.default_rng(0).standard_normal((8, 16, 32, 32)).astype(np.float32)
w = np.random.default_rng(1).standard_normal((16, 16, 3, 3)).astype(np.float32)
if {compute_first}:
    y = ops.conv2d(x, w, padding=1, algo="im2col")
pid = os.fork()
if pid == 0:
    threads = fastconv.get_num_threads()
    result = ops.conv2d(x, w, padding=1, algo="im2col")
    refused = False
    try:
        fastconv.set_num_threads(2)
    except ValueError as exc:
        refused = "forked from one whose threads had started" in str(exc)
    print(threads, refused, {compute_first} and bool(np.array_equal(result, y)), flush=True)
    os._exit(0)
os.waitpid(pid, 0)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
@pytest.mark.parametrize("compute_first, expected", [(True, ["1", "True", "True"]), (False, ["2", "False", "False"])])
def test_a_forked_child_computes_on_one_thread_once_the_parent_has_started_its_threads(compute_first, expected):
    result = _run({}, _FORKED_CHILD.format(compute_first=compute_first), timeout=120)
    assert result.stdout.split() == expected, result.stderr


def test_environment_sets_the_output_cache_limit():
    result = _run({"FASTCONV_OUTPUT_CACHE_MB": "3"}, "import fastconv; print(fastconv.output_cache_stats()['limit'])")
    assert result.stdout.split() == [str(3 << 20)], result.stderr
    bad = _run({"FASTCONV_OUTPUT_CACHE_MB": "-1"}, "import fastconv")
    assert "FASTCONV_OUTPUT_CACHE_MB must be an integer" in bad.stderr


def test_environment_sets_the_workspace_limit():
    result = _run({"FASTCONV_WORKSPACE_MB": "5"}, "import fastconv; print(fastconv.get_workspace_limit())")
    assert result.stdout.split() == [str(5 << 20)], result.stderr
    bad = _run({"FASTCONV_WORKSPACE_MB": "lots"}, "import fastconv")
    assert "FASTCONV_WORKSPACE_MB must be an integer" in bad.stderr


@pytest.mark.parametrize("bad", [-1, 1.5, True, "1"])
def test_set_workspace_limit_refuses_what_is_not_a_byte_count(bad):
    with pytest.raises(ValueError, match="set_workspace_limit: nbytes must be an int >= 0"):
        fastconv.set_workspace_limit(bad)


@pytest.fixture
def output_cache():
    # No other test's arrays may come back into the cache meanwhile: collect them now, and no
    # cycle collection until the test is done.
    before = fastconv.output_cache_stats()["limit"]
    gc.collect()
    gc.disable()
    fastconv.release_output_cache()
    yield
    gc.enable()
    fastconv.set_output_cache_limit(before)


def test_a_freed_result_block_is_reused_for_the_next_result_of_its_size(output_cache, rng):
    x = rng.standard_normal((4, 16, 32, 32)).astype(np.float32)  # 256 KiB: cached
    y = fastconv.ops.max_pool2d(x, 1)
    address = y.__array_interface__["data"][0]
    del y
    stats = fastconv.output_cache_stats()
    assert stats["idle_blocks"] == 1 and stats["idle_bytes"] == x.nbytes
    y = fastconv.ops.max_pool2d(x, 1)  # 1x1 pooling: a copy, written over the stale block
    assert y.__array_interface__["data"][0] == address
    assert fastconv.output_cache_stats()["hits"] == stats["hits"] + 1
    np.testing.assert_array_equal(y, x)


def test_a_freed_block_serves_a_smaller_result_down_to_half_its_size(output_cache, rng):
    x = rng.standard_normal((4, 32, 32, 32)).astype(np.float32)  # 512 KiB
    y = fastconv.ops.max_pool2d(x, 1)
    block = y.__array_interface__["data"][0]
    del y
    smaller = fastconv.ops.max_pool2d(x[:, :18], 1)  # 288 KiB: the 512 KiB block, its pages already there
    assert smaller.__array_interface__["data"][0] == block
    np.testing.assert_array_equal(smaller, x[:, :18])
    del smaller
    big = rng.standard_normal((4, 32, 64, 64)).astype(np.float32)  # 2 MiB
    y = fastconv.ops.max_pool2d(big, 1)
    big_block = y.__array_interface__["data"][0]
    del y
    idle = fastconv.output_cache_stats()["idle_bytes"]
    assert idle == x.nbytes + big.nbytes
    under_half = fastconv.ops.max_pool2d(big[:, :14], 1)  # 896 KiB: under half of 2 MiB, a block of its own
    assert under_half.__array_interface__["data"][0] not in (block, big_block)
    assert fastconv.output_cache_stats()["idle_bytes"] == idle
    same = fastconv.ops.max_pool2d(x, 1)  # the smallest block that fits: its own size's
    assert same.__array_interface__["data"][0] == block
    np.testing.assert_array_equal(under_half, big[:, :14])


def test_a_view_keeps_its_block_out_of_the_cache(output_cache, rng):
    x = rng.standard_normal((4, 16, 32, 32)).astype(np.float32)
    view = fastconv.ops.max_pool2d(x, 1)[1:3]
    assert fastconv.output_cache_stats()["idle_blocks"] == 0
    other = fastconv.ops.max_pool2d(-x, 1)
    assert not np.shares_memory(view, other)
    np.testing.assert_array_equal(view, x[1:3])


def test_the_limit_caps_idle_blocks_and_zero_turns_the_cache_off(output_cache, rng):
    x = rng.standard_normal((4, 16, 32, 32)).astype(np.float32)
    fastconv.set_output_cache_limit(x.nbytes)
    a, b = fastconv.ops.max_pool2d(x, 1), fastconv.ops.max_pool2d(x, 1)
    del a, b
    assert fastconv.output_cache_stats()["idle_bytes"] == x.nbytes  # the second did not fit
    fastconv.set_output_cache_limit(0)
    assert fastconv.output_cache_stats()["idle_blocks"] == 0
    del x
    with pytest.raises(ValueError, match="nbytes must be an int >= 0"):
        fastconv.set_output_cache_limit(-1)


def test_small_results_are_plain_numpy_arrays():
    y = fastconv.ops.max_pool2d(np.ones((1, 1, 4, 4)), 2)
    assert y.base is None and y.flags["C_CONTIGUOUS"] and y.flags["OWNDATA"]
