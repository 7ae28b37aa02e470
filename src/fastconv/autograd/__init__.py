"""The define-by-run engine: Tensor, Function, the backward walk, no_grad and gradcheck."""
from fastconv.autograd.function import Function
from fastconv.autograd.grad_mode import is_grad_enabled, no_grad
from fastconv.autograd.gradcheck import GradcheckError, gradcheck
from fastconv.autograd.shape import cat, split, stack, unbind
from fastconv.autograd.tensor import Tensor, from_dlpack, tensor
from fastconv.backend import manual_seed

__all__ = ["Tensor", "tensor", "from_dlpack", "Function", "no_grad", "is_grad_enabled", "gradcheck",
           "GradcheckError", "cat", "stack", "split", "unbind", "manual_seed"]
