"""Crash-safe checkpoints of model, optimizer, epoch and random state in one .npz file.

save() writes a temporary file beside the target, fsyncs it, then os.replace()s it over the
target: the rename is atomic, so a kill at any moment leaves either the previous checkpoint or
the new one, never a torn file; the next save() of that checkpoint removes the temporary file a
killed one left. Arrays are stored as npz members and everything else as one JSON string, so
loading never unpickles code. load() checks every key, shape and dtype of the model's and the
optimizer's state before it assigns anything: a checkpoint that does not fit leaves both as they
were.
"""
import glob
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


def _temporary_prefix(path):
    return os.path.basename(path) + "."


def _remove_stale_temporaries(path):
    """The temporary files of saves of `path` that were killed before their rename. (Checkpoints
    of one path are written by one process at a time: rank 0 of a distributed run.)"""
    directory = os.path.dirname(os.path.abspath(path))
    for stale in glob.glob(os.path.join(glob.escape(directory), glob.escape(_temporary_prefix(path)) + "*.tmp")):
        try:
            os.unlink(stale)
        except FileNotFoundError:
            pass


def _write_npz_atomically(path, arrays):
    directory = os.path.dirname(os.path.abspath(path))
    _remove_stale_temporaries(path)
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=_temporary_prefix(path), suffix=".tmp")
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


def _check_arrays(path, what, saved, own):
    """saved (name -> array) has exactly own's names, each with own's shape and dtype."""
    if not isinstance(saved, dict):
        raise ValueError(f"checkpoint {path}: {what} is not a mapping of names to arrays")
    missing, unexpected = sorted(set(own) - set(saved)), sorted(set(saved) - set(own))
    if missing or unexpected:
        raise ValueError(f"checkpoint {path}: {what} lacks {missing} and has unexpected {unexpected}")
    for name, expected in own.items():
        array = saved[name]
        if not hasattr(array, "shape") or array.shape != expected.shape or array.dtype != expected.dtype:
            found = f"{array.dtype} {array.shape}" if hasattr(array, "shape") else type(array).__name__
            raise ValueError(f"checkpoint {path}: {what} {name} is {found}, expected "
                             f"{expected.dtype} {expected.shape}")


def _check_optimizer_state(path, saved, optimizer):
    """saved is an optimizer.state_dict() for these parameter groups: group sizes, parameter
    indices, and every array of a parameter's state with the parameter's shape and dtype."""
    if saved is None:
        raise ValueError(f"checkpoint {path} holds no optimizer state")
    saved_sizes = [len(group["params"]) for group in saved["param_groups"]]
    own_sizes = [len(group["params"]) for group in optimizer.param_groups]
    if saved_sizes != own_sizes:
        raise ValueError(f"checkpoint {path}: the optimizer's parameter groups have sizes {saved_sizes}, "
                         f"this optimizer's {own_sizes}")
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for index, state in saved.get("state", {}).items():
        if not str(index).isdigit() or int(index) >= len(params) or not isinstance(state, dict):
            raise ValueError(f"checkpoint {path}: optimizer state for parameter {index!r}, which this optimizer "
                             f"(of {len(params)} parameters) lacks")
        arrays = {name: value for name, value in state.items() if hasattr(value, "shape")}
        param = backend.to_host(params[int(index)].data)
        _check_arrays(path, f"optimizer state of parameter {index}:", arrays, {name: param for name in arrays})


def load(path, model, optimizer=None):
    """Restores what save() wrote into model (strictly) and optimizer, and the random state;
    returns {'epoch': epoch, **extra}. Raises ValueError, changing nothing, when a key, shape or
    dtype of the checkpoint differs from the model's or the optimizer's."""
    with np.load(path, allow_pickle=False) as stored:
        arrays = {k: stored[k] for k in stored.files}
    if _META not in arrays:
        raise ValueError(f"checkpoint {path}: not written by fastconv.checkpoint.save (no {_META} member)")
    tree = _join_arrays(json.loads(str(arrays.pop(_META))), arrays)
    _check_arrays(path, "model state", tree.get("model"), model.state_dict())
    if optimizer is not None:
        _check_optimizer_state(path, tree.get("optimizer"), optimizer)
    backend.set_rng_state(tree["rng"])  # numpy checks the state before it takes any of it
    model.load_state_dict(tree["model"])
    if optimizer is not None:
        optimizer.load_state_dict(tree["optimizer"])
    return {"epoch": tree["epoch"], **tree["extra"]}
