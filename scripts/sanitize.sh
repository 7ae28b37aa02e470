#!/usr/bin/env bash
# Builds fastconv._C with AddressSanitizer and UndefinedBehaviorSanitizer in a copy of the
# working tree and runs the tests that drive the C++ hardest: every hostile-input test, the
# CI profile of the fuzz suite (tests/fuzz) and the whole-array copies' views of any strides
# (tests/test_elementwise.py). Any invalid memory access or undefined behaviour
# aborts the process that hit it, which fails its test (the fuzz worker's case names it).
#
#   scripts/sanitize.sh                 # build, then test
#   scripts/sanitize.sh -k roi          # extra arguments go to pytest
#   KEEP=/tmp/fastconv-asan scripts/sanitize.sh   # build there and keep it for the next run
#
# Python itself is not instrumented, so libasan is preloaded into it. Leak checking is off
# (the interpreter never frees its arenas); ASan's allocation cap stands in for the fuzz
# worker's memory limit, which ASan's shadow mappings would exceed.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="${KEEP:-$(mktemp -d /tmp/fastconv-sanitize.XXXXXX)}"
[ -n "${KEEP:-}" ] || trap 'rm -rf "$work"' EXIT
mkdir -p "$work"

# The working tree as git sees it (tracked and untracked files, ignored ones left out), with
# their times, so that a kept build recompiles only what changed.
(cd "$repo" && git ls-files -z --cached --others --exclude-standard) |
    (cd "$repo" && xargs -0 cp -p --parents -t "$work" 2>/dev/null || true)

# -O1 in place of the build's -O3 (a compiler wrapper swaps it): sanitized code runs slowly
# anyway, and it compiles several times faster.
cat > "$work/sanitize-cxx" <<'WRAPPER'
#!/usr/bin/env python3
import os, sys
os.execvp("g++", ["g++"] + ["-O1" if arg == "-O3" else arg for arg in sys.argv[1:]])
WRAPPER
chmod +x "$work/sanitize-cxx"
flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g"
(cd "$work" && CC="$work/sanitize-cxx" CXX="$work/sanitize-cxx" CFLAGS="$flags" \
    LDFLAGS="-fsanitize=address,undefined" python setup.py build_ext --inplace -q >/dev/null)

# gcc prints the bare name when it has no such library (a compiler without its sanitizer runtimes)
asan="$(gcc -print-file-name=libasan.so)" ubsan="$(gcc -print-file-name=libubsan.so)"
if [ ! -e "$asan" ] || [ ! -e "$ubsan" ]; then
    echo "sanitize.sh: gcc's libasan/libubsan are not installed (they ship with its libgcc-N-dev package)" >&2
    exit 1
fi
export LD_PRELOAD="$asan $ubsan"
export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:max_allocation_size_mb=3072:abort_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export FASTCONV_FUZZ_MEMORY_LIMIT=none
cd "$work"
started=$SECONDS
PYTHONPATH=src python -m pytest -q -p no:cacheprovider tests/*/test_hostile_input.py tests/fuzz \
  tests/test_elementwise.py "$@"
echo "sanitized tests took $((SECONDS - started)) s"
