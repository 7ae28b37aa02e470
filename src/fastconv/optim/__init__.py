"""Optimisers and learning-rate schedules with torch.optim's names and update formulas."""
from fastconv.optim import lr_scheduler
from fastconv.optim.adaptive import Adagrad, Adam, RMSprop
from fastconv.optim.optimizer import Optimizer
from fastconv.optim.sgd import SGD

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "lr_scheduler"]
