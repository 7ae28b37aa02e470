"""The on-disk memory of algo="auto": the algorithm each conv layer shape chose, kept across
processes, so that only the first run on a machine pays for timing (like cuDNN's find results,
which PyTorch keeps per process only).

One JSON file, `$FASTCONV_CACHE_DIR/conv_algo.json` (default `~/.cache/fastconv`). A choice is
valid only where it was timed: its key holds the CPU model, the micro-kernel ISA, the thread
count and fastconv's version beside the shapes, so another machine, `set_isa`, another thread
count or an upgrade times afresh. A CUDA layer's key holds the GPU's name and compute
capability, the GEMM switches and fastconv's version instead (fastconv.cuda.conv.device_key).
Writes go through a temporary file and os.replace, and merge with what other processes wrote
meanwhile; an unreadable file is ignored (and rewritten).

    fastconv.conv_cache.path()     # where the file is
    fastconv.conv_cache.clear()    # forget every choice, on disk and in this process
"""
import json
import os
import pathlib
import tempfile

from fastconv._runtime import cpu_model
from fastconv._version import __version__
from fastconv.backend import kernels

_FILE_NAME = "conv_algo.json"
_entries = None  # the file's content once read: {key: algorithm}


def path():
    """The cache file: $FASTCONV_CACHE_DIR/conv_algo.json, else ~/.cache/fastconv/conv_algo.json."""
    folder = os.environ.get("FASTCONV_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "fastconv")
    return pathlib.Path(folder) / _FILE_NAME


def machine_key():
    """What a timing depends on besides the layer: CPU, ISA, threads and fastconv's version."""
    lib = kernels()
    return f"{cpu_model()}|{lib.isa()}|{lib.num_threads()}t|{__version__}"


def _read():
    try:
        with open(path()) as f:
            content = json.load(f)
        return content if isinstance(content, dict) else {}
    except (OSError, ValueError):  # none yet, or damaged: timing again is always safe
        return {}


def lookup(key, machine=None):
    """The cached algorithm for `key` (a string from the caller's layer key) on `machine` (what
    the timing depended on: machine_key() for the CPU, a device library's own key), or None."""
    global _entries
    if _entries is None:
        _entries = _read()
    return _entries.get(f"{machine or machine_key()}|{key}")


def store(key, algorithm, machine=None):
    """Remembers a choice; a cache that cannot be written (read-only home) is skipped silently:
    the choice still holds for this process."""
    global _entries
    entries = _read()
    entries[f"{machine or machine_key()}|{key}"] = algorithm
    _entries = entries
    target = path()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".conv_algo.", suffix=".tmp")
    except OSError:
        return
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(entries, f, indent=0, sort_keys=True)
        os.replace(temporary, target)
    except OSError:
        pathlib.Path(temporary).unlink(missing_ok=True)


def entries():
    """{key: algorithm} of every choice in the file, of every machine and version."""
    return dict(_read())


def clear():
    """Forgets every choice: deletes the file and this process's choices."""
    global _entries
    from fastconv.ops import conv_algo
    _entries = {}
    conv_algo.forget_choices()
    try:
        path().unlink()
    except FileNotFoundError:
        pass
