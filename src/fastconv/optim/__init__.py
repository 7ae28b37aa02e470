"""Optimisers and learning-rate schedules with torch.optim's names and update formulas, and
gradient clipping (torch.nn.utils.clip_grad_norm_)."""
from fastconv.optim import lr_scheduler
from fastconv.optim.adaptive import Adagrad, Adam, RMSprop
from fastconv.optim.clip_grad import clip_grad_norm_
from fastconv.optim.optimizer import Optimizer
from fastconv.optim.sgd import SGD

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "lr_scheduler", "clip_grad_norm_"]
