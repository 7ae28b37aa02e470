"""End to end: a small conv net's loss falls on a fixed synthetic batch."""
import numpy as np

import fastconv
from fastconv import Tensor, nn, optim


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
