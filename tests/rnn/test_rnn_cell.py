"""nn.RNNCell (the Elman cell, tanh) against torch.nn.RNNCell: output and every gradient."""
import numpy as np
import pytest

from fastconv import Tensor, nn


@pytest.mark.parametrize("bias", [True, False])
def test_matches_torch_rnn_cell(torch, rng, bias):
    ours, theirs = nn.RNNCell(5, 3, bias=bias, dtype=np.float64), torch.nn.RNNCell(5, 3, bias=bias,
                                                                                  dtype=torch.float64)
    with torch.no_grad():
        for name, p in ours.named_parameters():
            getattr(theirs, name).copy_(torch.tensor(p.data))
    x, h = rng.standard_normal((4, 5)), rng.standard_normal((4, 3))
    our_x, our_h = Tensor(x, requires_grad=True), Tensor(h, requires_grad=True)
    their_x, their_h = torch.tensor(x, requires_grad=True), torch.tensor(h, requires_grad=True)
    out, expected = ours(our_x, our_h), theirs(their_x, their_h)
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-12, atol=1e-12)
    weights = rng.standard_normal(out.shape)
    (out * weights).sum().backward()
    (expected * torch.tensor(weights)).sum().backward()
    pairs = [(our_x, their_x), (our_h, their_h)] + [(p, getattr(theirs, n)) for n, p in ours.named_parameters()]
    for a, b in pairs:
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_zero_state_by_default(rng):
    cell = nn.RNNCell(2, 3, dtype=np.float64)
    x = Tensor(rng.standard_normal((2, 2)))
    np.testing.assert_allclose(cell(x).numpy(), cell(x, Tensor(np.zeros((2, 3)))).numpy())
