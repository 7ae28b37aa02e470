"""Batch normalisation (Ioffe & Szegedy 2015) with PyTorch's defaults and running statistics."""
import collections

import numpy as np
from numpy.typing import DTypeLike

from fastconv import backend, ops
from fastconv import functional as F
from fastconv.autograd import Tensor, is_grad_enabled
from fastconv.nn import init
from fastconv.nn.linear import empty_parameter
from fastconv.nn.module import Module


class _BatchNorm(Module):
    input_ndims = ()  # the input ranks a subclass accepts

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True,
                 track_running_stats: bool = True, dtype: DTypeLike = np.float32) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = empty_parameter((num_features,), dtype) if affine else None
        self.bias = empty_parameter((num_features,), dtype) if affine else None
        if affine:
            init.ones_(self.weight)
            init.zeros_(self.bias)
        running_mean = running_var = None
        if track_running_stats:
            running_mean = init.zeros_(Tensor(backend.empty(num_features, dtype)))
            running_var = init.ones_(Tensor(backend.empty(num_features, dtype)))
        self.register_buffer("running_mean", running_mean)
        self.register_buffer("running_var", running_var)

    def forward(self, x):
        return self._normalise(x)

    def _normalise(self, x, **fusions):
        if x.ndim not in self.input_ndims or x.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}({self.num_features}): expected input with "
                             f"{self.num_features} channels and {self.input_ndims} dims, got shape {x.shape}")
        use_batch_stats = self.training or self.running_mean is None
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            use_batch_stats, self.momentum, self.eps, **fusions)

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class BatchNorm1d(_BatchNorm):
    """Over (N, C) or (N, C, L)."""
    input_ndims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Over (N, C, H, W)."""
    input_ndims = (4,)


class BatchNormReLU2d(BatchNorm2d):
    """relu(BatchNorm2d(x) + residual) in one fused pass; residual is optional. Not a torch.nn
    class: its state_dict is BatchNorm2d's (same keys), so weights move between a torch
    BatchNorm2d followed by ReLU and this layer unchanged. forward(x, residual=None) is the tail
    of a ResNet basic block: out = bn_relu(conv(h), residual=x)."""

    def forward(self, x, residual=None):
        return self._normalise(x, residual=residual, relu=True)

    def after_conv(self, conv, x, residual=None):
        """self(conv(x), residual), for `conv` an nn.Conv2d. In eval mode without gradients, the
        running statistics make this layer a per-channel scale and shift, folded into the
        convolution's weights and bias (ops.fold_bn_into_conv; torch.fx's fuse_conv_bn_eval does
        the same), so the convolution's epilogue applies it, adds the residual and applies the
        ReLU (ops.conv2d's residual=): no pass over the output of its own."""
        if self.training or is_grad_enabled() or self.running_mean is None or x.ndim != 4:
            self.__dict__.pop("_folded", None)  # training again: the folded copies would only hold memory
            return self(conv(x), residual)
        weight, bias = self._folded_into(conv)
        return Tensor(ops.conv2d(x.data, weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups,
                                 algo=conv.algo, relu=True, residual=None if residual is None else residual.data))

    def _folded_into(self, conv):
        """conv's (weight, bias) with this layer folded in, kept from the previous call while the
        arrays they were folded from hold the same bytes (compared, as conv_weight_cache compares
        a weight: numpy arrays have no version counter). An evaluation then folds once, and its
        folded weight, the same array at every call, keeps its Winograd and FFT transforms in the
        weight cache: folding and transforming anew at every call had cost ResNet-20 inference
        (batch 256) about 4 ms of 90."""
        data = lambda p: None if p is None else p.data
        sources = (conv.weight.data, data(conv.bias), self.running_mean.data, self.running_var.data,
                   data(self.weight), data(self.bias))
        kept = self.__dict__.get("_folded")
        if kept is not None and kept.conv is conv and kept.eps == self.eps and _same_arrays(kept.sources, sources):
            return kept.weight_and_bias
        weight_and_bias = ops.fold_bn_into_conv(*sources, self.eps)
        copies = tuple(None if a is None else backend.array_module(a).array(a, order="C", copy=True) for a in sources)
        self.__dict__["_folded"] = _Fold(conv, self.eps, copies, weight_and_bias)
        return weight_and_bias


# BatchNormReLU2d's fold into `conv`: the arrays it came from (copies), and the result.
_Fold = collections.namedtuple("_Fold", "conv eps sources weight_and_bias")


def _same_arrays(copies, arrays):
    """Whether each of `arrays` holds the bytes of its copy in `copies` (None matching None only)."""
    for copy, a in zip(copies, arrays):
        if copy is None or a is None:
            if copy is not a:
                return False
        elif (a.shape != copy.shape or a.dtype != copy.dtype or not a.flags.c_contiguous
              or not backend.kernels(a, copy).same_bytes(copy, a)):
            return False
    return True
