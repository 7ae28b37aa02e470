"""An installed fastconv compiles its CUDA kernels from the sources inside the package: setup.py's
build_py copies csrc/common and every csrc/<family>/cuda into fastconv/csrc/. Built here into a
temporary folder (build_py only: no compiler runs), the copy must hold everything each .cu
includes."""
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _includes(root, unit):
    """`unit` and every file it includes, transitively, as paths relative to `root`."""
    pending, seen = [unit], set()
    while pending:
        current = pending.pop()
        if current not in seen:
            seen.add(current)
            if (root / current).is_file():
                pending += re.findall(r'^\s*#include "([^"]+)"', (root / current).read_text(), re.MULTILINE)
    return seen


def test_the_built_package_holds_every_cuda_source_and_what_it_includes(tmp_path):
    result = subprocess.run([sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(tmp_path)], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    shipped = tmp_path / "fastconv" / "csrc"
    sources = sorted(p.relative_to(ROOT / "csrc").as_posix() for p in (ROOT / "csrc").glob("*/cuda/*.cu"))
    assert sources
    for source in sources:
        missing = [u for u in _includes(ROOT / "csrc", source) if not (shipped / u).is_file()]
        assert not missing, f"{missing} (needed by {source}) are not in the built package"
    assert not list(shipped.glob("*/cpu")), "only the CUDA sources ship, not the CPU kernels' folders"
