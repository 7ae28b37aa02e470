"""End to end: a small conv net's loss falls on a fixed synthetic batch; a ResNet's training
steps give the bits of the plain engine and the textbook SGD."""
import numpy as np
import pytest

import fastconv
from fastconv import Tensor, backend, nn, optim
from fastconv import functional as F
from fastconv.models.deep import ResNet20
from fastconv.ops import conv_algo
from tests.optim.test_optimizers import textbook_sgd_step


def test_small_conv_net_learns_a_fixed_batch():
    fastconv.manual_seed(0)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 16)
    images = rng.standard_normal((16, 1, 8, 8)).astype(np.float32)
    images[labels == 1, :, 2:6, 2:6] += 1.5  # class 1 has a bright square
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(4, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _ in range(15):
        loss = nn.CrossEntropyLoss()(model(Tensor(images)), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


@pytest.mark.parametrize("hyper", [dict(lr=0.05, momentum=0.9, weight_decay=1e-3),
                                   dict(lr=0.05, momentum=0.9, weight_decay=1e-3, nesterov=True)])
def test_resnet_training_steps_give_the_bits_of_the_plain_engine_and_textbook_sgd(hyper, monkeypatch):
    """The step's shortcuts (gradients summed in place, SGD without temporaries) change no bit:
    the reference sums every gradient into a new array and updates by the formulas as written."""
    monkeypatch.setattr(conv_algo, "_mode", "deterministic")  # the same kernels in both runs
    rng = np.random.default_rng(0)
    images = rng.standard_normal((8, 3, 8, 8)).astype(np.float32)
    labels = rng.integers(0, 10, 8)

    def train(step):
        fastconv.manual_seed(0)
        model = ResNet20(3, 10, width=4)
        update = step(list(model.parameters()))
        for _ in range(3):
            loss = F.cross_entropy(model(Tensor(images)), labels)
            model.zero_grad()
            loss.backward()
            update()
        return model.state_dict()

    def fastconv_sgd(params):
        return optim.SGD(params, **hyper).step

    def textbook(params):
        buffers = [None] * len(params)
        return lambda: textbook_sgd_step(params, buffers, **hyper)

    ours = train(fastconv_sgd)
    monkeypatch.setattr(backend, "unshared", lambda array: False)
    reference = train(textbook)
    assert ours.keys() == reference.keys()
    for name in ours:
        np.testing.assert_array_equal(ours[name], reference[name], err_msg=name)
