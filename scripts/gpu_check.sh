#!/usr/bin/env bash
# The GPU check: fastconv's CUDA kernels tested and timed on a machine with a GPU, offline.
#
#   scripts/gpu_check.sh OUTDIR [--no-install]
#
# Expects CUDA 13, CuPy 14, PyTorch (CUDA build), pybind11 and pytest already installed; installs
# fastconv from this checkout with `pip install --no-build-isolation --no-deps .` (no network),
# unless --no-install: then the checkout's src/ is used as it is (its fastconv._C built in place).
# Then runs, each under its own time limit (6 minutes in all: install 150 s, environment 30 s,
# tests 120 s, benchmark 60 s):
#   1. the CUDA tests (tests/cuda: NVRTC compiles, host runs of the kernel bodies, GPU tests against
#      the CPU kernels and PyTorch CUDA; the nvcc compiles are left to CI) and the CUDA cases of
#      the norm, pool and gemm tests;
#   2. the GPU benchmark against PyTorch CUDA (python -m fastconv.bench.cuda);
#   3. the conv2d benchmark, each CUDA algorithm against cuDNN, and the tiled GEMM against cuBLAS
#      (python -m fastconv.bench.cuda_conv), in what remains of the 6 minutes (OUTDIR/conv_bench.json).
# Writes OUTDIR/gpu_check.log (everything printed), OUTDIR/pytest.xml, OUTDIR/bench.json and
# OUTDIR/gpu_check.json (each step's status, seconds and, for a skip, the reason). On a machine
# without a GPU every step still runs and the GPU parts report why they were skipped.
set -uo pipefail

OUT=${1:?usage: scripts/gpu_check.sh OUTDIR [--no-install]}
INSTALL=1
[[ "${2:-}" == "--no-install" ]] && INSTALL=0
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cd "$(dirname "$0")/.."
LOG="$OUT/gpu_check.log"
: > "$LOG"
STEPS=()

log() { echo "$*" | tee -a "$LOG"; }

# run NAME LIMIT_SECONDS COMMAND...: runs a step under `timeout`, its output into the log.
run() {
  local name=$1 limit=$2; shift 2
  log "=== $name (limit ${limit}s): $*"
  local start=$SECONDS
  timeout "$limit" "$@" >> "$LOG" 2>&1
  local code=$?
  log "=== $name: exit $code after $((SECONDS - start))s"
  STEPS+=("$name|$code|$((SECONDS - start))")
  return $code
}

if [[ $INSTALL == 1 ]]; then
  run install 150 python -m pip install --no-build-isolation --no-deps . || { log "install failed"; }
  PY_PATH=""
else
  PY_PATH="$PWD/src"
fi

run environment 30 env PYTHONPATH="$PY_PATH" python - <<'PY'
import platform, shutil, subprocess
import fastconv
from fastconv import backend
print("python", platform.python_version(), "| fastconv from", fastconv.__file__)
fastconv.show_config()
for tool in ("nvidia-smi", "nvcc"):
    if shutil.which(tool):
        args = [tool, "--query-gpu=name,driver_version,memory.total", "--format=csv"] if tool == "nvidia-smi" else [tool, "--version"]
        print(subprocess.run(args, capture_output=True, text=True).stdout.strip())
    else:
        print(f"{tool}: not on PATH")
try:
    import torch
    print("torch", torch.__version__, "cuda available:", torch.cuda.is_available())
except ImportError:
    print("torch: not installed")
print("kernel devices:", backend.kernel_devices())
PY

run tests 120 env PYTHONPATH="$PY_PATH" python -m pytest tests/cuda tests/norm/test_batch_norm.py tests/pool/test_pool.py \
  tests/gemm/test_matmul.py -k "cuda and not nvcc" -q -rs -p no:cacheprovider --junitxml="$OUT/pytest.xml"

run bench 60 env PYTHONPATH="$PY_PATH" python -m fastconv.bench.cuda "$OUT/bench.json" --repeats 15

# The conv step takes what the steps above left of the 6 minutes (10 s kept for the summary).
CONV_BENCH_LIMIT=$((350 - SECONDS))
if (( CONV_BENCH_LIMIT >= 20 )); then
  run conv_bench "$CONV_BENCH_LIMIT" env PYTHONPATH="$PY_PATH" python -m fastconv.bench.cuda_conv "$OUT/conv_bench.json" \
    --repeats 10
else
  log "=== conv_bench: not run, only ${CONV_BENCH_LIMIT}s left of the 6 minutes"
fi

env PYTHONPATH="$PY_PATH" python - "$OUT" "${STEPS[@]}" <<'PY' | tee -a "$LOG"
"""gpu_check.json: each step's exit status and seconds, the test counts, the benchmark's figures
or the reason the GPU parts were skipped."""
import json, sys, pathlib
import xml.etree.ElementTree as ET
from fastconv import backend
out = pathlib.Path(sys.argv[1])
steps = [dict(zip(("step", "exit", "seconds"), s.split("|"))) for s in sys.argv[2:]]
report = {"steps": [{**s, "exit": int(s["exit"]), "seconds": int(s["seconds"])} for s in steps],
          "cuda": {"devices": backend.kernel_devices()[0], "why_not": backend.kernel_devices()[1]}}
if (out / "pytest.xml").exists():
    suite = ET.parse(out / "pytest.xml").getroot().find("testsuite")
    report["tests"] = {k: int(suite.get(k)) for k in ("tests", "failures", "errors", "skipped")}
if (out / "bench.json").exists():
    report["bench"] = json.loads((out / "bench.json").read_text())
if (out / "conv_bench.json").exists():
    report["conv_bench"] = json.loads((out / "conv_bench.json").read_text())
(out / "gpu_check.json").write_text(json.dumps(report, indent=2))
failed = [s["step"] for s in report["steps"] if s["exit"] != 0]
print("gpu_check:", "all steps passed" if not failed else f"failed steps: {failed}",
      "| cuda:", "available" if report["cuda"]["why_not"] is None else f"skipped ({report['cuda']['why_not']})")
sys.exit(1 if failed else 0)
PY
