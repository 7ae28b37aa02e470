"""Crash-safe checkpoints of model, optimizer, epoch and random state in one .npz file.

save() writes a temporary file beside the target, fsyncs it, then os.replace()s it over the
target: the rename is atomic, so a kill at any moment leaves either the previous checkpoint or
the new one, never a torn file. Arrays are stored as npz members and everything else as one
JSON string, so loading never unpickles code.
"""
import json
import os
import tempfile

import numpy as np

from fastconv import backend

_META = "__meta__"


def _split_arrays(node, arrays):
    """node with every ndarray moved into `arrays` and replaced by a {'__array__': key} marker."""
    if isinstance(node, dict):
        return {str(k): _split_arrays(v, arrays) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [_split_arrays(v, arrays) for v in node]
    if backend.is_cuda_array(node):  # the file holds host arrays; load() puts them back on the model's device
        node = backend.to_host(node)
    if isinstance(node, np.ndarray):
        key = f"array{len(arrays)}"
        arrays[key] = node
        return {"__array__": key}
    return node.item() if isinstance(node, np.generic) else node


def _join_arrays(node, arrays):
    if isinstance(node, dict):
        if set(node) == {"__array__"}:
            return arrays[node["__array__"]]
        return {k: _join_arrays(v, arrays) for k, v in node.items()}
    if isinstance(node, list):
        return [_join_arrays(v, arrays) for v in node]
    return node


def _write_npz_atomically(path, arrays):
    directory = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())  # the data is on disk before the rename makes it visible
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    directory_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(directory_fd)  # the rename itself survives a power cut
    finally:
        os.close(directory_fd)


def save(path, model, optimizer=None, epoch=0, **extra):
    """Saves model.state_dict(), optimizer.state_dict(), epoch, the dropout/init random state and
    `extra` (arrays, numbers, strings, lists and dicts of them, e.g. a scheduler's state_dict)."""
    tree = {"model": model.state_dict(), "epoch": epoch, "extra": extra, "rng": backend.get_rng_state(),
            "optimizer": optimizer.state_dict() if optimizer is not None else None}
    arrays = {}
    meta = _split_arrays(tree, arrays)
    arrays[_META] = np.array(json.dumps(meta))
    _write_npz_atomically(path, arrays)


def load(path, model, optimizer=None):
    """Restores what save() wrote into model (strictly) and optimizer, and the random state;
    returns {'epoch': epoch, **extra}."""
    with np.load(path, allow_pickle=False) as stored:
        arrays = {k: stored[k] for k in stored.files}
    tree = _join_arrays(json.loads(str(arrays.pop(_META))), arrays)
    model.load_state_dict(tree["model"])
    if optimizer is not None:
        if tree["optimizer"] is None:
            raise ValueError(f"checkpoint {path} holds no optimizer state")
        optimizer.load_state_dict(tree["optimizer"])
    backend.set_rng_state(tree["rng"])
    return {"epoch": tree["epoch"], **tree["extra"]}
