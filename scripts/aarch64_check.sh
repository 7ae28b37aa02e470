#!/usr/bin/env bash
# Cross-compiles every csrc/**/*.cpp for aarch64 with setup.py's flags (the bindings against this
# machine's Python and pybind11 headers), links them into one shared library as setup.py would,
# and fails if that library needs any symbol beyond Python's C API and the C, C++ and OpenMP
# runtimes: an x86 kernel whose caller was not guarded (core/arch.h) shows up here as an
# undefined symbol or as a compile error. Where qemu-aarch64 is installed, the kernels then run:
# aarch64_conv_check.cpp, linked with them, compares every conv2d algorithm with a float64 loop
# (this machine has no aarch64 Python to import the library with).
#
#   scripts/aarch64_check.sh        (needs: apt-get install g++-aarch64-linux-gnu; optional: qemu-user)
#
# -O1 in place of -O3: the same code, compiled several times faster. JOBS caps parallel compiles.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cxx=aarch64-linux-gnu-g++
command -v "$cxx" >/dev/null || { echo "aarch64_check.sh needs $cxx: apt-get install g++-aarch64-linux-gnu" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

includes=(-I"$root/csrc" -I"$(python -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
          -I"$(python -c 'import pybind11; print(pybind11.get_include())')")
flags=(-std=c++17 -O1 -fPIC -fopenmp -fno-math-errno -Wall -Wno-unknown-pragmas -Werror -fvisibility=hidden)
export cxx work
cd "$root"
find csrc -name '*.cpp' | sort |
    xargs -P "${JOBS:-$(nproc)}" -I{} sh -c '"$cxx" "$@" -c {} -o "$work/$(echo {} | tr / _).o"' _ "${flags[@]}" "${includes[@]}"
"$cxx" -shared -fopenmp -o "$work/_C.so" "$work"/*.o
echo "compiled $(ls "$work"/*.o | wc -l) sources for aarch64 and linked them: $(file -b "$work/_C.so" | cut -d, -f1-2)"

# Undefined and not the runtimes' (versioned) nor Python's: the toolchain's weak hooks only.
unexpected=$(aarch64-linux-gnu-nm -D --undefined-only "$work/_C.so" | awk '{print $2}' |
             grep -v -e '@' -e '^_\?Py' -e '^_ITM_' -e '^__gmon_start__$' || true)
if [ -n "$unexpected" ]; then
    echo "the aarch64 library needs symbols no aarch64 build defines:" >&2
    echo "$unexpected" >&2
    exit 1
fi
echo "no symbol beyond Python's and the C, C++ and OpenMP runtimes'"

if command -v qemu-aarch64 >/dev/null; then
    "$cxx" "${flags[@]}" "${includes[@]}" -static "$root/scripts/aarch64_conv_check.cpp" \
        $(ls "$work"/*.o | grep -v '/csrc_bind_') -o "$work/conv_check" 2>&1 | grep -v -e dlopen -e oacc-profiling || true
    qemu-aarch64 "$work/conv_check"
else
    echo "qemu-aarch64 not installed: the kernels were compiled and linked, not run (apt-get install qemu-user)"
fi
echo "aarch64 check passed"
