"""The one place that knows devices.

Everything above this module (ops, functional, autograd, nn, optim, models) asks it for
  - the array module of some arrays (`array_module`: numpy, or cupy for GPU arrays),
  - new arrays on a device (`empty`, `zeros`, `asarray`, `to_device`),
  - the compiled kernel library that serves a call (`kernels`): the CPU extension
    `fastconv._C` for host arrays; the CUDA kernels for device arrays once they are built,
and writes no device-specific array call of its own. The random generator used by dropout and
the initialisers lives here too, so that a checkpoint can save and restore it.

Devices are named as in PyTorch: "cpu" and "cuda".

Arrays of other frameworks (torch tensors, JAX arrays: anything with __dlpack__) cross into the
ops at one seam, `accepts_dlpack`, which fastconv.ops wraps around each op: arguments are read
through DLPack (no copy) and the results handed back as arrays of the caller's kind.
"""
import functools
import inspect
import sys

import numpy as np

from fastconv import _C

DEVICES = ("cpu", "cuda")


class DeviceError(RuntimeError):
    """A call needs a device, or a kernel on a device, that this installation does not have."""


# ---- which device -------------------------------------------------------------------------

def _cupy():
    """The cupy module when it is importable, else None (CuPy is an optional extra)."""
    try:
        import cupy
    except Exception:  # not installed, or installed without a usable CUDA runtime
        return None
    return cupy


def is_cuda_array(array):
    """Whether `array` lives on a CUDA device (a CuPy array); never imports CuPy for a host array.
    Cheap enough for every op call: one attribute read and a prefix test."""
    return type(array).__module__.startswith("cupy")


def device_of(array):
    """'cuda' for a CuPy array, 'cpu' for anything numpy can read."""
    return "cuda" if is_cuda_array(array) else "cpu"


def check_device(device, name="device"):
    """`device` as one of DEVICES ('cuda:0' is accepted as 'cuda')."""
    if not isinstance(device, str) or device.split(":")[0] not in DEVICES:
        raise ValueError(f"{name}: expected one of {DEVICES}, got {device!r}")
    return device.split(":")[0]


def array_module(*arrays):
    """numpy, or cupy when any of `arrays` is a CuPy array (None entries are skipped)."""
    if any(is_cuda_array(a) for a in arrays if a is not None):
        return _cupy()
    return np


# ---- CUDA availability ------------------------------------------------------------------------

def cuda_status():
    """(available, reason): whether CUDA arrays can be made here, and in plain words why not when
    they cannot (no CuPy, no driver, no device)."""
    cupy = _cupy()
    if cupy is None:
        return False, "CuPy is not installed (pip install fastconv[cuda])"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CuPy present, but no usable driver or no device
        return False, f"CuPy {cupy.__version__} found {_missing_piece(exc)} ({type(exc).__name__}: {exc})"
    if count == 0:
        return False, f"CuPy {cupy.__version__} sees no GPU"
    return True, f"CuPy {cupy.__version__}, {count} GPU(s)"


def _missing_piece(exc):
    """What a failed device query says is missing, in words."""
    text = str(exc)
    if "NoDevice" in text or "no CUDA-capable device" in text:
        return "no GPU"
    if "Driver" in text or "driver" in text or "libcuda" in text:
        return "no usable NVIDIA driver"
    return "no usable GPU"


def cuda_available():
    return cuda_status()[0]


def _require_cuda():
    available, reason = cuda_status()
    if not available:
        raise DeviceError(f"device 'cuda' is not available: {reason}")
    return _cupy()


# ---- allocation ---------------------------------------------------------------------------------

def _shape(shape):
    # map, not a generator expression: every op's output passes here (a third of a microsecond)
    return (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(map(int, shape))


def empty(shape, dtype=np.float64, device="cpu"):
    """An uninitialised C-contiguous array. On the CPU, results of 256 KiB and more come from
    the compiled core's cache of freed blocks (csrc/core/output_cache.h): a loop that asks for the
    same shapes every step stops paying page faults for fresh memory."""
    shape, dtype = _shape(shape), np.dtype(dtype)
    if device != "cpu" and check_device(device) == "cuda":  # "cpu", the common case, needs no parsing
        return _device_empty(_require_cuda(), shape, dtype)
    return _C.empty(shape, dtype)


def _device_empty(cupy, shape, dtype):
    try:
        return cupy.empty(shape, dtype)
    except cupy.cuda.memory.OutOfMemoryError as exc:
        nbytes = dtype.itemsize * int(np.prod(shape, dtype=np.float64))
        raise MemoryError(f"out of memory on cuda: an array of shape {shape} and dtype {dtype} needs {nbytes} "
                          f"bytes ({exc})") from exc


def empty_channels_last(shape, dtype=np.float64):
    """An uninitialised host array of NCHW shape (N, C, H, W) whose memory is NHWC: torch's
    channels_last, what a channels_last input's output is given."""
    n, c, h, w = _shape(shape)
    return _C.empty((n, h, w, c), np.dtype(dtype)).transpose(0, 3, 1, 2)


def layout_copy(array, channels_last):
    """A float (N, C, H, W) host array copied into the other memory layout: channels_last (NHWC
    memory) or C-contiguous NCHW. The compiled transpose (csrc/core/layout.h) is 3-4x faster
    than numpy's copy through a strided view."""
    shape = array.shape
    if array.dtype in (np.float32, np.float64) and array.ndim == 4:
        out = empty_channels_last(shape, array.dtype) if channels_last else _C.empty(shape, array.dtype)
        _C.copy_layout(array, out)
        return out
    if channels_last:
        return np.ascontiguousarray(array.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    return np.ascontiguousarray(array)


def empty_like(array):
    return empty(array.shape, array.dtype, device_of(array))


def zeros(shape, dtype=np.float64, device="cpu"):
    out = empty(shape, dtype, device)
    fill(out, 0)
    return out


def fill(array, value):
    """array[...] = value, for an array or a view of any strides."""
    if _threaded(array):
        _C.fill(array, float(value))
    else:
        array[...] = value


# Host float arrays from this size on are copied, filled and summed on the kernels' threads
# (csrc/core/elementwise.h): below it numpy's one core is as fast as a fork.
_THREADED_BYTES = 1 << 20


def _threaded(*arrays):
    """Whether the compiled whole-array operations serve `arrays`: numpy float32 or float64
    arrays of one dtype, at most 4-d, the first at least _THREADED_BYTES."""
    first = arrays[0]
    return (type(first) is np.ndarray and first.nbytes >= _THREADED_BYTES and first.ndim <= 4
            and first.dtype in (np.float32, np.float64)
            and all(type(a) is np.ndarray and a.dtype == first.dtype for a in arrays))


def copy_into(dst, src):
    """dst[...] = src for two arrays of one shape that share no memory (views of any strides:
    a subsampled x[:, :, ::2, ::2], a slice of channels)."""
    if _threaded(dst, src) and dst.shape == src.shape:
        _C.copy_view(src, dst)
    else:
        dst[...] = src


def add_into(dst, src):
    """dst += src, for two arrays of one shape, dtype and dense layout (the autograd engine's sums
    of a tensor's gradients)."""
    if _threaded(dst, src) and dst.shape == src.shape and dst.strides == src.strides and dst.flags.writeable:
        _C.add_into(dst, src)
    else:
        array_module(dst).add(dst, src, out=dst)


def unshared(array):
    """Whether writing into `array` can change nothing that anyone else sees: a writable host
    array to which its caller holds the one reference, whose memory it owns as numpy and the
    output cache allocate (empty()), or views through arrays that nothing else refers to (a
    reshape of a fresh result). CPython's reference counts decide, as torch's use_count decides
    whether a gradient can be summed in place. An array also saved elsewhere, viewed by another
    array, or over foreign memory (DLPack, a buffer) is shared."""
    if type(array) is not np.ndarray or not array.flags.writeable:
        return False
    counts, owner = _reference_counts(array)
    if counts != _UNSHARED_COUNTS[:1] + _UNSHARED_COUNTS[1:] * (len(counts) - 1):
        return False
    return owner.flags.owndata if type(owner) is np.ndarray else _C.is_output_block(owner)


def _reference_counts(array):
    """sys.getrefcount of `array` and of each object down its chain of .base (the array it views,
    that array's owner of the memory), and the last of them."""
    counts, owner = [sys.getrefcount(array)], array
    while type(owner) is np.ndarray and owner.base is not None:
        owner = owner.base
        counts.append(sys.getrefcount(owner))
    return counts, owner


def _counts_as_unshared_sees(array):  # one call deep, as unshared is
    return _reference_counts(array)[0]


def _unshared_counts():
    """What unshared counts for an array that its caller alone holds and that views an array only
    it refers to: [array's, each link's], each one reference plus the interpreter's own, which
    differ between Python versions (3.10 counts two more than 3.11), so they are measured here,
    through the calls unshared makes."""
    view = np.empty(2).reshape(2, 1)
    return _counts_as_unshared_sees(view)


_UNSHARED_COUNTS = _unshared_counts()


def asarray(data, dtype=None, device=None):
    """`data` as an array on `device` (default: where it already is; host for Python objects)."""
    if device is None:
        device = device_of(data)
    if check_device(device) == "cuda":
        return _require_cuda().asarray(data, dtype=dtype)
    if is_cuda_array(data):
        data = data.get()
    return np.asarray(data, dtype=dtype)


# DLPack device types (dlpack.h's DLDeviceType) this module can hold arrays of.
_DLPACK_CPU, _DLPACK_CUDA, _DLPACK_CUDA_HOST = 1, 2, 3


def from_dlpack(array):
    """`array` (anything with __dlpack__) as a numpy or CuPy array sharing its memory."""
    if not hasattr(array, "__dlpack__"):
        raise TypeError(f"from_dlpack: expected an array with __dlpack__ (torch, JAX, CuPy, numpy), "
                        f"got {type(array).__name__}")
    device_type = array.__dlpack_device__()[0]
    if device_type in (_DLPACK_CPU, _DLPACK_CUDA_HOST):
        return np.from_dlpack(array)
    if device_type == _DLPACK_CUDA:
        return _require_cuda().from_dlpack(array)
    raise DeviceError(f"from_dlpack: arrays on DLPack device type {device_type} are not supported "
                      f"(only CPU and CUDA)")


def _foreign_type(kind):
    """Whether arrays of type `kind` belong to another framework and are read through DLPack:
    numpy and CuPy arrays are the ops' own, and fastconv's Tensor is read as before, through
    __array__. Answered once per type (a failed hasattr costs more than the rest of a check)."""
    known = _FOREIGN_TYPES.get(kind)
    if known is None:
        known = _FOREIGN_TYPES[kind] = (hasattr(kind, "__dlpack__")
                                        and not kind.__module__.startswith(("numpy", "cupy", "fastconv")))
    return known


_FOREIGN_TYPES = {np.ndarray: False, type(None): False, int: False, float: False, bool: False, str: False}


def _is_foreign(value):
    return _foreign_type(type(value))


def _any_foreign(values):
    """Runs on every op call: a numpy array or a scalar costs one dict lookup."""
    for value in values:
        foreign = _FOREIGN_TYPES.get(type(value))
        if foreign is None:
            kind = type(value)
            if kind is list or kind is tuple:  # roi boxes: a list of arrays; window sizes: ints
                foreign = _any_foreign(value)
            else:
                foreign = _foreign_type(kind)
        if foreign:
            return True
    return False


def _first_foreign(values):
    for value in values:
        if type(value) in (list, tuple):
            value = _first_foreign(value)
        if value is not None and _is_foreign(value):
            return value
    return None


def _imported(value, name):
    """An argument with its foreign arrays as numpy (or CuPy) arrays sharing their memory."""
    if type(value) in (list, tuple):
        return type(value)(_imported(v, f"{name}[{i}]") for i, v in enumerate(value))
    if not _is_foreign(value):
        return value
    if getattr(value, "requires_grad", False):
        raise TypeError(f"{name}: got a tensor that requires grad, but fastconv.ops records no gradient; use "
                        f"fastconv.torch (differentiable torch ops and layers), or pass {name}.detach()")
    try:
        return from_dlpack(value)
    except DeviceError as error:
        raise DeviceError(f"{name}: {error}") from error
    except (BufferError, TypeError, ValueError, RuntimeError) as error:
        raise TypeError(f"{name}: a {type(value).__module__}.{type(value).__name__} could not be read through "
                        f"DLPack ({error})") from error


def _exporter(array):
    """The from_dlpack of `array`'s framework: its array-API namespace's (JAX), else its
    top-level module's (torch.from_dlpack)."""
    namespace = getattr(array, "__array_namespace__", None)
    module = namespace() if namespace is not None else sys.modules[type(array).__module__.split(".")[0]]
    if not hasattr(module, "from_dlpack"):
        raise TypeError(f"fastconv.ops cannot return arrays of {module.__name__}: it has no from_dlpack")
    return module.from_dlpack


def _exported(result, export):
    if type(result) is tuple:
        return tuple(_exported(r, export) for r in result)
    if isinstance(result, np.ndarray) or is_cuda_array(result):
        return export(result)
    return result


def accepts_dlpack(op):
    """`op`, also taking arrays of other frameworks (anything with __dlpack__, on the CPU, or on
    a CUDA device where CuPy is installed): they are read without a copy, and the op's arrays
    come back as the framework of the first such argument, through its from_dlpack (again no
    copy). A call with numpy arrays only pays for one dict lookup per argument."""
    signature = inspect.signature(op)

    @functools.wraps(op)
    def call(*args, **kwargs):
        if not _any_foreign(args) and not (kwargs and _any_foreign(kwargs.values())):
            return op(*args, **kwargs)
        bound = signature.bind(*args, **kwargs)
        caller = _first_foreign(bound.arguments.values())
        for name, value in bound.arguments.items():
            bound.arguments[name] = _imported(value, name)
        return _exported(op(*bound.args, **bound.kwargs), _exporter(caller))

    return call


def to_device(array, device):
    """`array` on `device`: the same array when it is already there, else a copy."""
    return asarray(array, device=device)


def to_host(array):
    """A numpy array with `array`'s values (itself when it already is one)."""
    return array.get() if is_cuda_array(array) else np.asarray(array)


# ---- kernels ------------------------------------------------------------------------------------

def kernels(*arrays, op="this op"):
    """The compiled kernel library that serves a call on `arrays` (None entries skipped):
    fastconv._C for host arrays, fastconv.cuda.kernels (the same functions) for CuPy arrays.

    Device arrays where the CUDA kernels cannot run, and arrays on different devices, are refused
    before any kernel runs (naming each array's device), instead of letting numpy copy a device
    array to the host."""
    for a in arrays:  # a plain loop, no list: every op call runs it
        if a is not None and is_cuda_array(a):
            break
    else:
        return _C
    cuda = [is_cuda_array(a) for a in arrays if a is not None]
    why_not_cuda = _kernel_devices()[1]
    if why_not_cuda is not None:
        raise DeviceError(f"{op}: fastconv has no CUDA kernels usable here ({why_not_cuda}); move the arrays to "
                          f"the CPU (fastconv.backend.to_host, or Tensor.cpu())")
    if not all(cuda):
        raise DeviceError(f"{op}: {_devices_of(arrays)}; move them to one device (fastconv.backend.to_device)")
    return _cuda_kernels()


def _devices_of(arrays):
    """'input is on cuda, weight on cpu': the arrays named as the op calling kernels() names them
    (its local variables), by position where it has no name for one. Only on the error path."""
    import sys
    caller_locals = sys._getframe(2).f_locals
    words = []
    for position, array in enumerate(arrays):
        if array is None:
            continue
        name = next((n for n, v in caller_locals.items() if v is array), f"argument {position + 1}")
        words.append(f"{name} {'is ' if not words else ''}on {device_of(array)}")
    return ", ".join(words)


def _cuda_kernels():
    """fastconv.cuda.kernels, or DeviceError saying why it cannot serve CuPy arrays here."""
    try:
        from fastconv.cuda import kernels as cuda_kernels
    except Exception as exc:
        raise DeviceError(f"fastconv's CUDA kernels cannot be loaded: {type(exc).__name__}: {exc}") from exc
    return cuda_kernels


def _why_cuda_kernels_fail():
    """None when the CUDA kernels compile and load on this GPU (one family is compiled to see;
    CuPy caches it on disk), else why not."""
    try:
        from fastconv.cuda import loader
        loader.function("pool", "max_pool2d_forward_f32")
    except Exception as exc:
        return f"fastconv's CUDA kernels do not load: {type(exc).__name__}: {exc}"
    return None


def kernel_devices():
    """(devices, why_not_cuda): the devices whose arrays this build's kernels serve, and why
    'cuda' is not among them (None when it is)."""
    devices, why_not_cuda = _kernel_devices()
    return list(devices), why_not_cuda


@functools.lru_cache(maxsize=None)
def _kernel_devices():
    """kernel_devices(), asked once per process: a GPU, its driver and CuPy do not come and go."""
    available, reason = cuda_status()
    if not available:
        return ("cpu",), reason
    failure = _why_cuda_kernels_fail()
    if failure is not None:
        return ("cpu",), failure
    return ("cpu", "cuda"), None


# ---- the random generator of dropout and the initialisers -----------------------------------------

_generator = np.random.default_rng()


def manual_seed(seed):
    """Seeds the generator behind dropout and the nn.init functions."""
    global _generator
    _generator = np.random.default_rng(seed)


def generator():
    return _generator


def get_rng_state():
    return _generator.bit_generator.state


def set_rng_state(state):
    _generator.bit_generator.state = state
