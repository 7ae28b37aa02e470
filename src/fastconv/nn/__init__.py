"""Neural-network layers with PyTorch's names, defaults and state_dict keys."""
from fastconv.nn import init
from fastconv.nn.activation import ELU, Dropout, Flatten, LeakyReLU, ReLU, Sigmoid, Tanh
from fastconv.nn.norm import BatchNorm1d, BatchNorm2d, BatchNormReLU2d
from fastconv.nn.container import ModuleList, Sequential
from fastconv.nn.conv import Conv2d, ConvTranspose2d
from fastconv.nn.linear import Embedding, Linear
from fastconv.nn.loss import CrossEntropyLoss, L1Loss, MSELoss, MultiMarginLoss
from fastconv.nn.module import Module, Parameter
from fastconv.nn.pool import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from fastconv.nn.rnn import LSTM, GRUCell, LSTMCell, RNNCell
from fastconv.nn.sampling import Upsample, UpsamplingBilinear2d, UpsamplingNearest2d

__all__ = ["init", "Module", "Parameter", "Sequential", "ModuleList", "Linear", "Conv2d", "ConvTranspose2d",
           "Embedding", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "ReLU", "LeakyReLU", "ELU",
           "Sigmoid", "Tanh", "Dropout", "Flatten", "BatchNorm1d", "BatchNorm2d", "BatchNormReLU2d", "LSTMCell",
           "RNNCell", "GRUCell", "LSTM", "CrossEntropyLoss", "MultiMarginLoss", "MSELoss", "L1Loss",
           "Upsample", "UpsamplingBilinear2d", "UpsamplingNearest2d"]
