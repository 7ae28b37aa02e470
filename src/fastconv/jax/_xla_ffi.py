"""XLA's foreign-function interface, spoken from Python: a handler XLA calls with the buffers of
a jitted computation, on which fastconv's kernels run in place.

XLA's FFI is a stable C ABI (xla/ffi/api/c_api.h, API major version 0). A handler is a C
function `XLA_FFI_Error* handler(XLA_FFI_CallFrame*)`; here it is a ctypes callback, so no C++
has to be compiled against jaxlib: the structs below declare the parts of the ABI a handler
reads (its argument and result buffers), answers (the metadata query made at registration) and
calls (XLA_FFI_Error_Create, to report a failure). Buffers are viewed as numpy arrays without
a copy; the callback takes the GIL, which jax releases while a computation runs.
"""
import ctypes
import itertools
import traceback

import numpy as np

_API_MAJOR, _API_MINOR = 0, 1
_EXTENSION_METADATA = 1
_STAGE_EXECUTE = 3
_ERROR_INTERNAL = 13
# XLA_FFI_DataType values of the dtypes fastconv computes in (xla_data.proto's PrimitiveType).
_DTYPES = {11: np.dtype(np.float32), 12: np.dtype(np.float64), 5: np.dtype(np.int64), 4: np.dtype(np.int32)}


class _ExtensionBase(ctypes.Structure):
    pass


_ExtensionBase._fields_ = [("struct_size", ctypes.c_size_t), ("type", ctypes.c_int),
                           ("next", ctypes.POINTER(_ExtensionBase))]


class _ApiVersion(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("extension_start", ctypes.POINTER(_ExtensionBase)),
                ("major_version", ctypes.c_int), ("minor_version", ctypes.c_int)]


class _Metadata(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("api_version", _ApiVersion),
                ("traits", ctypes.c_uint32), ("state_type_id", ctypes.c_int64)]


class _MetadataExtension(ctypes.Structure):
    _fields_ = [("extension_base", _ExtensionBase), ("metadata", ctypes.POINTER(_Metadata))]


class _Buffer(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("extension_start", ctypes.POINTER(_ExtensionBase)),
                ("dtype", ctypes.c_int), ("data", ctypes.c_void_p), ("rank", ctypes.c_int64),
                ("dims", ctypes.POINTER(ctypes.c_int64))]


class _Operands(ctypes.Structure):  # XLA_FFI_Args and XLA_FFI_Rets share this layout
    _fields_ = [("struct_size", ctypes.c_size_t), ("extension_start", ctypes.POINTER(_ExtensionBase)),
                ("size", ctypes.c_int64), ("types", ctypes.POINTER(ctypes.c_int)),
                ("pointers", ctypes.POINTER(ctypes.c_void_p))]


class _Attrs(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("extension_start", ctypes.POINTER(_ExtensionBase)),
                ("size", ctypes.c_int64), ("types", ctypes.c_void_p), ("names", ctypes.c_void_p),
                ("attrs", ctypes.c_void_p)]


class _ErrorCreateArgs(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("extension_start", ctypes.POINTER(_ExtensionBase)),
                ("message", ctypes.c_char_p), ("errc", ctypes.c_int)]


_ErrorCreate = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.POINTER(_ErrorCreateArgs))


class _Api(ctypes.Structure):  # only the fields up to XLA_FFI_Error_Create are read
    _fields_ = [("struct_size", ctypes.c_size_t), ("extension_start", ctypes.POINTER(_ExtensionBase)),
                ("api_version", _ApiVersion), ("internal_api", ctypes.c_void_p),
                ("error_create", _ErrorCreate)]


class _CallFrame(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("extension_start", ctypes.POINTER(_ExtensionBase)),
                ("api", ctypes.POINTER(_Api)), ("ctx", ctypes.c_void_p), ("stage", ctypes.c_int),
                ("args", _Operands), ("rets", _Operands), ("attrs", _Attrs), ("future", ctypes.c_void_p)]


_Handler = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.POINTER(_CallFrame))


def _as_arrays(operands):
    """numpy views of the buffers (no copy)."""
    arrays = []
    for i in range(operands.size):
        buffer = ctypes.cast(operands.pointers[i], ctypes.POINTER(_Buffer)).contents
        dtype = _DTYPES.get(buffer.dtype)
        if dtype is None:
            raise TypeError(f"fastconv.jax: XLA buffer of data type {buffer.dtype} is not float32, float64 or int")
        shape = tuple(buffer.dims[d] for d in range(buffer.rank))
        count = int(np.prod(shape, dtype=np.int64))
        if count == 0:
            arrays.append(np.empty(shape, dtype))
            continue
        raw = (ctypes.c_char * (count * dtype.itemsize)).from_address(buffer.data)
        arrays.append(np.frombuffer(raw, dtype).reshape(shape))
    return arrays


def _answer_metadata(frame):
    extension = frame.extension_start
    while extension:
        if extension.contents.type == _EXTENSION_METADATA:
            metadata = ctypes.cast(extension, ctypes.POINTER(_MetadataExtension)).contents.metadata.contents
            metadata.api_version.major_version = _API_MAJOR
            metadata.api_version.minor_version = _API_MINOR
            metadata.traits = 0
            return True
        extension = extension.contents.next
    return False


def _error(frame, message):
    args = _ErrorCreateArgs(ctypes.sizeof(_ErrorCreateArgs), None, message.encode(), _ERROR_INTERNAL)
    return frame.api.contents.error_create(ctypes.byref(args))


_handlers = {}  # name -> the ctypes callback, kept alive as long as XLA may call it
_serial = itertools.count()


def register(compute, name_hint):
    """Registers compute(inputs, outputs) (numpy arrays; it writes the outputs) as a CPU FFI
    target and returns the target's name. Each call registers a new target: a target's static
    arguments (strides, padding) live in `compute`'s closure, not in XLA attributes."""
    import jax.ffi

    def handler(frame_pointer):
        frame = frame_pointer.contents
        try:
            if _answer_metadata(frame) or frame.stage != _STAGE_EXECUTE:
                return None
            compute(_as_arrays(frame.args), _as_arrays(frame.rets))
            return None
        except Exception as exc:  # reported to XLA, which raises it in the jax caller
            return _error(frame, f"{name_hint}: {type(exc).__name__}: {exc}\n{traceback.format_exc()}")

    name = f"fastconv_{name_hint}_{next(_serial)}"
    callback = _Handler(handler)
    _handlers[name] = callback
    jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(ctypes.cast(callback, ctypes.c_void_p).value),
                                platform="cpu")
    return name
