"""LR schedules against torch.optim.lr_scheduler over a few epochs."""
import numpy as np
import pytest

from fastconv import nn, optim
from fastconv.optim import lr_scheduler

SCHEDULES = {
    "StepLR": dict(step_size=3, gamma=0.5),
    "MultiStepLR": dict(milestones=[3, 7], gamma=0.5),
    "ExponentialLR": dict(gamma=0.9),
    "CosineAnnealingLR": dict(T_max=5, eta_min=0.01),
}


def _lrs(optimizer, scheduler, epochs):
    lrs = []
    for _ in range(epochs):
        optimizer.step()
        scheduler.step()
        lrs.append(scheduler.get_last_lr()[0])
    return lrs


@pytest.mark.parametrize("name", SCHEDULES)
def test_matches_torch(name, torch):
    ours = optim.SGD([nn.Parameter(np.ones(1))], lr=0.2)
    theirs = torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.2)
    expected = _lrs(theirs, getattr(torch.optim.lr_scheduler, name)(theirs, **SCHEDULES[name]), 12)
    assert _lrs(ours, getattr(lr_scheduler, name)(ours, **SCHEDULES[name]), 12) == pytest.approx(expected)


def test_resume_from_state_dict():
    def make():
        optimizer = optim.SGD([nn.Parameter(np.ones(1))], lr=0.2)
        return optimizer, lr_scheduler.StepLR(optimizer, step_size=2)
    optimizer, scheduler = make()
    _lrs(optimizer, scheduler, 3)
    resumed_optimizer, resumed = make()
    resumed_optimizer.load_state_dict(optimizer.state_dict())
    resumed.load_state_dict(scheduler.state_dict())
    assert _lrs(resumed_optimizer, resumed, 3) == _lrs(optimizer, scheduler, 3)
