"""Peers the benchmark compares against, each optional: PyTorch CPU (oneDNN), torchvision and
numpy; and the small wrappers every section uses to time a torch call like ours."""
import numpy as np

from fastconv.ops._checks import to_channels_last


def load_torch(threads):
    """torch with `threads` intra-op threads, or None when it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch


def load_torchvision():
    """torchvision (the peer of roi_align and roi_pool), or None when it is not installed."""
    try:
        import torchvision
    except ImportError:
        return None
    return torchvision


def load_onnxruntime():
    """(onnxruntime, onnx) when both are installed (onnx builds the one-layer models), else None."""
    try:
        import onnx
        import onnxruntime
    except ImportError:
        return None
    return onnxruntime, onnx


def onnxruntime_conv2d(peer, x, w, stride, padding, groups, threads):
    """A runner of ONNX Runtime's CPU provider on a one-Conv model of this layer: what an
    inference user deploys. Its threads do not spin between calls (they would otherwise keep
    the cores busy while the next peer is being timed)."""
    onnxruntime, onnx = peer
    helper, tensor = onnx.helper, onnx.TensorProto
    kind = tensor.FLOAT if x.dtype == np.float32 else tensor.DOUBLE
    node = helper.make_node("Conv", ["x", "w"], ["y"], strides=[stride, stride], pads=[padding] * 4,
                            group=groups, kernel_shape=list(w.shape[2:]))
    graph = helper.make_graph([node], "conv", [helper.make_tensor_value_info("x", kind, x.shape)],
                              [helper.make_tensor_value_info("y", kind, None)],
                              initializer=[onnx.numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return lambda: session.run(None, {"x": x})


def limit_numpy_threads(threads):
    """Caps numpy's BLAS pool when threadpoolctl is installed; returns what was capped."""
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:
        return "numpy BLAS threads not capped (threadpoolctl not installed)"
    threadpool_limits(threads)
    blas = [f"{i['internal_api']} {i.get('architecture', '')}".strip() for i in threadpool_info()
            if i["user_api"] == "blas"]
    return f"numpy BLAS: {', '.join(blas) or 'unknown'}, {threads} threads"


def torch_layouts(torch):
    """The two memory layouts torch is timed in: NCHW ("torch") and channels_last ("torch_cl"),
    which oneDNN often runs faster; each is its own peer."""
    return (("torch", torch.contiguous_format), ("torch_cl", torch.channels_last))


def torch_copies(torch, arrays):
    """{peer name: the numpy arrays as tensors in that peer's layout} for torch_layouts."""
    nchw = [torch.from_numpy(a) for a in arrays]
    return {name: [t.contiguous(memory_format=layout) for t in nchw] for name, layout in torch_layouts(torch)}


def our_layouts(arrays):
    """{runner name: the NCHW numpy arrays in that layout} for fastconv's rows of a layer whose
    kernels read both layouts: "fastconv" (NCHW) and "fastconv_cl" (channels_last, compared with
    "torch_cl" like with like)."""
    return {"fastconv": tuple(arrays), "fastconv_cl": tuple(to_channels_last(a) for a in arrays)}


def torch_no_grad(torch, fn, *args):
    """fn(*args) as a zero-argument runner that builds no graph: torch's inference path."""
    def call():
        with torch.no_grad():
            return fn(*args)
    return call


def backward_fresh(output, grad, *leaves):
    """output.backward(grad) into new gradients of `leaves` (the tensors that require grad): a
    leaf whose .grad is left from the previous call is added to, a pass over the gradient that
    fastconv's runners, which return fresh arrays, do not make."""
    for leaf in leaves:
        leaf.grad = None
    output.backward(grad)


def torch_step(fn, x, grad):
    """A forward+backward runner of a torch function of one input (x requires grad)."""
    def step():
        backward_fresh(fn(x), grad, x)
    return step


def numpy_conv2d(x, w, stride, padding, groups):
    """A plain numpy im2col + matmul convolution: the textbook implementation."""
    sh, sw = stride
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    n, c, _, _ = xp.shape
    k, cg, r, s = w.shape
    windows = np.lib.stride_tricks.sliding_window_view(xp, (r, s), axis=(2, 3))[:, :, ::sh, ::sw]
    p, q = windows.shape[2], windows.shape[3]
    kg = k // groups
    out = np.empty((n, k, p, q), dtype=x.dtype)
    for g in range(groups):
        cols = windows[:, g * cg:(g + 1) * cg].transpose(1, 4, 5, 0, 2, 3).reshape(cg * r * s, n * p * q)
        out[:, g * kg:(g + 1) * kg] = (w[g * kg:(g + 1) * kg].reshape(kg, -1) @ cols).reshape(kg, n, p, q).transpose(1, 0, 2, 3)
    return out
