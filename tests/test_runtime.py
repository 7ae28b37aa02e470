import os
import subprocess
import sys

import pytest

import fastconv


def test_show_config_reports_the_essentials(capsys):
    fastconv.show_config()
    out = capsys.readouterr().out
    for word in ("fastconv 0.1.0", "isa:", "threads:", "openmp:", "gpu:"):
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


def _run(env_overrides, code):
    env = dict(os.environ, **env_overrides)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)


def test_environment_forces_isa_and_threads():
    result = _run({"FASTCONV_ISA": "generic", "FASTCONV_NUM_THREADS": "1"},
                  "import fastconv; print(fastconv._runtime.get_isa(), fastconv.get_num_threads())")
    assert result.stdout.split() == ["generic", "1"], result.stderr
    bad = _run({"FASTCONV_ISA": "nonsense"}, "import fastconv")
    assert "FASTCONV_ISA='nonsense'" in bad.stderr
