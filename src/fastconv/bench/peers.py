"""Peers the benchmark compares against, each optional: PyTorch CPU (oneDNN), torchvision and
numpy; and the small wrappers every section uses to time a torch call like ours."""
import numpy as np


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


def torch_no_grad(torch, fn, *args):
    """fn(*args) as a zero-argument runner that builds no graph: torch's inference path."""
    def call():
        with torch.no_grad():
            return fn(*args)
    return call


def torch_step(fn, x, grad):
    """A forward+backward runner of a torch function of one input (x requires grad)."""
    def step():
        fn(x).backward(grad)
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
