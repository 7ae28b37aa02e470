"""Layers with a weight matrix: Linear and Embedding."""
import numpy as np
from numpy.typing import DTypeLike

from fastconv import backend
from fastconv import functional as F
from fastconv.nn import init
from fastconv.nn.module import Module, Parameter


def empty_parameter(shape, dtype):
    return Parameter(backend.empty(shape, dtype))


class Linear(Module):
    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype: DTypeLike = np.float32) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = empty_parameter((out_features, in_features), dtype)
        self.bias = empty_parameter((out_features,), dtype) if bias else None
        init.default_layer_init_(self.weight, self.bias)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"{self.in_features}, {self.out_features}, bias={self.bias is not None}"


class Embedding(Module):
    def __init__(self, num_embeddings: int, embedding_dim: int, dtype: DTypeLike = np.float32) -> None:
        super().__init__()
        self.weight = empty_parameter((num_embeddings, embedding_dim), dtype)
        init.normal_(self.weight)

    def forward(self, indices):
        return F.embedding(indices, self.weight)

    def extra_repr(self):
        return f"{self.weight.shape[0]}, {self.weight.shape[1]}"
