"""conv2d weights transformed once and reused across calls (Winograd's U = G g G^T, FFT's
filter spectra).

Winograd maps every 3x3 filter to its alpha x alpha transform before convolving (and the
rotated, channel-transposed filters for the input gradient); FFT maps it to its spectrum at the
call's tile size. For wide layers at small batch that is a large share of a call, while a
weight serves many calls between two optimiser steps: every forward of an evaluation, the
forward and the input gradient of a training step. A transform is kept per (algorithm, use,
ISA, tile size): FFT's tile size depends on the input's size too, so the first call at each
size makes its own (``prepare_conv_weight(algos=...)`` cannot make FFT's in advance).

Two ways to reuse it:

- explicit: ``pw = ops.prepare_conv_weight(w, groups=1)`` keeps a private copy of w and its
  transforms (made on first use, or now for the algorithms listed in ``algos=``); pass ``pw``
  as the weight of ``ops.conv2d``, ``conv2d_input`` or ``conv2d_backward``. Later changes to w
  do not reach it: prepare again after changing the weight.
- implicit: a call that runs Winograd on a plain array looks the array up in a process-wide
  cache keyed on (data pointer, shape, strides, dtype, groups). numpy arrays have no version
  counter, so an entry keeps a copy of the weight's bytes and is used only while the array
  still holds exactly those bytes (one memcmp per call, GIL released; an in-place optimiser
  step changes the bytes, so the next call takes the new bytes and transforms again, into the
  entry's own buffers: never stale, nothing allocated per step).
  Least recently used entries are dropped beyond ``budget_bytes()`` (default 256 MiB, or
  ``FASTCONV_CONV_WEIGHT_CACHE_MB``; 0 turns the cache off; ``set_budget``, ``clear``).

An entry may hold an array derived from the weight and the transforms of that instead
(``derived``): conv_transpose2d's pixel_shuffle convolves with filters stacked from its kernel
(ops/conv_transpose_shuffle.py), remade with the transforms whenever the weight's bytes change.
"""
import collections
import functools
import os
from typing import Callable, NamedTuple, Sequence, Tuple

from fastconv._typing import Array
from fastconv.backend import array_module, device_of, empty, kernels
from fastconv.ops._checks import check_ndim, float_array


class Derivation(NamedTuple):
    """An array made from a weight, whose transforms an entry holds in place of the weight's:
    make(weight, out) fills `out` (of `shape`, the weight's dtype); `key` names it in the cache."""
    key: Tuple
    shape: Tuple[int, ...]
    make: Callable


class PreparedWeight:
    """A frozen copy of a conv2d weight and its transforms per (algorithm, use), made on demand.

    use: "forward" (conv2d) or "input_gradient" (conv2d_input); an algorithm without a
    transform (im2col, implicit, ...) runs on the copy itself. With a Derivation, `weight` is the
    array derived from the copy (`source`), and the transforms are of it.
    """

    def __init__(self, weight, groups=1, derivation=None):
        self.source = array_module(weight).array(weight, order="C", copy=True)
        self.source.flags.writeable = False
        self.groups = int(groups)
        self._derivation = derivation
        self.weight = self.source
        if derivation is not None:  # an array of its own (not the output cache's), frozen between remakes
            self.weight = array_module(weight).empty(derivation.shape, weight.dtype)
            self._derive()
        self._transforms = {}
        self._spare = {}  # buffers of transforms of bytes the weight held before refresh()

    def _derive(self):
        self.weight.flags.writeable = True
        self._derivation.make(self.source, self.weight)
        self.weight.flags.writeable = False

    @property
    def shape(self):
        return self.weight.shape

    @property
    def dtype(self):
        return self.weight.dtype

    @property
    def nbytes(self):
        derived = self.weight.nbytes if self.weight is not self.source else 0
        return self.source.nbytes + derived + sum(u.nbytes for u in (*self._transforms.values(),
                                                                     *self._spare.values()))

    def refresh(self, weight):
        """Takes `weight`'s bytes (same shape and dtype) in place of the copy's; the transforms made
        so far are stale, and their buffers are kept for the new ones. The implicit cache's, for an
        array an optimiser changed in place: a new entry per step had allocated (and the kernel
        had page-faulted) a 7x7 layer's 10 MB of FFT spectra anew each time."""
        self.source.flags.writeable = True
        self.source[...] = weight
        self.source.flags.writeable = False
        if self._derivation is not None:
            self._derive()
        self._spare.update(self._transforms)
        self._transforms = {}

    def transformed(self, algo, use, tile=0):
        """`algo`'s transform of the weight for `use` (FFT's at `tile`, from the kernel library's
        conv2d_weight_transform_tile), or None when the algorithm has none.

        Keyed on the active ISA too: the transform is stored in its GEMM kernel's panel order."""
        lib = kernels(self.weight, op="PreparedWeight")
        key = (algo, use, lib.isa(), tile)
        if key not in self._transforms:
            size = lib.conv2d_transformed_weight_size(algo, self.weight.shape, self.groups, use, tile)
            if size == 0:
                return None
            u = self._spare.pop(key, None)
            if u is None:
                u = empty(size, self.weight.dtype, device_of(self.weight))
            lib.conv2d_transform_weight(self.weight, u, self.groups, algo, use, tile)
            self._transforms[key] = u
        return self._transforms[key]


def prepare_conv_weight(weight: Array, groups: int = 1, algos: Sequence[str] = ()) -> "PreparedWeight":
    """A PreparedWeight of `weight` (K, C/groups, R, S); transforms for `algos` are made now
    (FFT's, which depend on the input size, at the first call of each size)."""
    kernels(weight, op="prepare_conv_weight")  # refuses a device array before anything reads it
    weight = float_array(weight, "weight")
    check_ndim(weight, 4, "weight", "(K, C/groups, R, S)")
    prepared = PreparedWeight(weight, groups)
    for algo in algos:
        if algo == "fft":
            continue
        for use in ("forward", "input_gradient"):
            prepared.transformed(algo, use)
    return prepared


_budget = int(float(os.environ.get("FASTCONV_CONV_WEIGHT_CACHE_MB", "256")) * (1 << 20))
_entries = collections.OrderedDict()  # key -> PreparedWeight, least recently used first
# The entries' bytes, kept up to date as they change: summed anew at every call (an entry per
# weight, each refreshed at every step), they cost a ResNet-20 training step about 1.5 ms.
_held = 0


def set_budget(nbytes):
    """Bytes the implicit cache may hold (weight copies and transforms); 0 turns it off."""
    global _budget
    if nbytes < 0:
        raise ValueError(f"nbytes: must be >= 0, got {nbytes}")
    _budget = int(nbytes)
    _evict()


def budget_bytes():
    return _budget


def clear():
    global _held
    _entries.clear()
    _held = 0


def cached_bytes():
    return _held


@functools.lru_cache(maxsize=4096)
def _transform_size(lib, algo, weight_shape, groups, use, tile):
    """Values in `algo`'s transform of a weight of this shape (0: it has none): per shape, not per call."""
    return lib.conv2d_transformed_weight_size(algo, weight_shape, groups, use, tile)


def transformed(lib, weight, groups, algo, use, tile=0):
    """`algo`'s transform of the C-contiguous array `weight` for `use` (at `tile`, see
    PreparedWeight.transformed), from the cache when the array still holds the bytes it was
    transformed from; None when `algo` has no transform. lib: the kernel library of the call."""
    if _budget == 0 or _transform_size(lib, algo, weight.shape, groups, use, tile) == 0:
        return None  # the kernel transforms the weight itself
    return _transform(_entry(lib, weight, groups), algo, use, tile)


def derived(lib, weight, groups, derivation, algo, use, tile=None):
    """(the array `derivation` makes from `weight`, `algo`'s transform of that for `use` at `tile`
    or None), kept as `transformed` keeps a weight's transforms. tile None: no transform is
    asked for (the algorithm has none, or the kernel refuses the shape). With the cache off the
    array is made anew and the kernel transforms it itself."""
    if _budget == 0:
        return PreparedWeight(weight, groups, derivation).weight, None
    entry = _entry(lib, weight, groups, derivation)
    if tile is None or _transform_size(lib, algo, derivation.shape, groups, use, tile) == 0:
        _evict()
        return entry.weight, None
    return entry.weight, _transform(entry, algo, use, tile)


def _entry(lib, weight, groups, derivation=None):
    """The cache's entry for `weight` (and `derivation`), the most recently used now: made, or
    refreshed if the array's bytes changed since (one memcmp, the GIL released). Not evicted
    here: the caller evicts once its transform is counted (_transform)."""
    global _held
    key = (weight.__array_interface__["data"][0], weight.shape, weight.strides, weight.dtype.str, groups,
           None if derivation is None else derivation.key)
    prepared = _entries.get(key)
    if prepared is None:
        prepared = _entries[key] = PreparedWeight(weight, groups, derivation)
        _held += prepared.nbytes
    elif not lib.same_bytes(prepared.source, weight):
        prepared.refresh(weight)
    _entries.move_to_end(key)
    return prepared


def _transform(entry, algo, use, tile):
    global _held
    before = entry.nbytes
    u = entry.transformed(algo, use, tile)
    _held += entry.nbytes - before
    _evict()
    return u


def _evict():
    global _held
    while _entries and _held > _budget:
        _, dropped = _entries.popitem(last=False)
        _held -= dropped.nbytes
