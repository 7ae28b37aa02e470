"""The gemm section: square float32 products, ours (ops.matmul) against numpy's BLAS and torch.mm."""
import numpy as np

from fastconv import ops
from fastconv.bench.harness import Case

SIZES = (1024, 2048)


def layers(layer_set):
    """The layer set's "gemm" entries (square products of size N), else one per size in SIZES."""
    return layer_set.get("gemm") or [{"name": f"sgemm_{n}", "N": n} for n in SIZES]


def cases(layer, torch, seed=0):
    n = layer["N"]
    rng = np.random.default_rng(seed)
    a, b = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(2))
    out = np.empty((n, n), np.float32)
    runners = {"fastconv": lambda: ops.matmul(a, b, out=out), "numpy": lambda: np.matmul(a, b, out=out)}
    if torch is not None:
        ta, tb, tout = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(out)
        runners["torch"] = lambda: torch.mm(ta, tb, out=tout)
    return [Case(layer["name"], "fwd", runners, ["fastconv"], flops=2.0 * n**3)]
