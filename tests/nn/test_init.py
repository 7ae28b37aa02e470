"""Initialisers: PyTorch's gains, bounds and standard deviations, and the layers' defaults."""
import math

import numpy as np
import pytest

import fastconv
from fastconv import Tensor, nn
from fastconv.nn import init


def big(shape=(256, 128, 3, 3)):
    return Tensor(np.zeros(shape, np.float32))


@pytest.mark.parametrize("nonlinearity,param", [("linear", None), ("tanh", None), ("relu", None),
                                                ("leaky_relu", 0.2), ("conv2d", None)])
def test_gain_matches_torch(nonlinearity, param, torch):
    assert init.calculate_gain(nonlinearity, param) == pytest.approx(
        torch.nn.init.calculate_gain(nonlinearity, param))


def test_xavier_and_kaiming_scales():
    fan_in, fan_out = 128 * 9, 256 * 9
    assert init.xavier_uniform_(big()).numpy().std() == pytest.approx(math.sqrt(2 / (fan_in + fan_out)), rel=0.02)
    assert init.xavier_normal_(big(), gain=2).numpy().std() == pytest.approx(2 * math.sqrt(2 / (fan_in + fan_out)), rel=0.02)
    he = math.sqrt(2 / fan_in)
    assert init.kaiming_normal_(big(), nonlinearity="relu").numpy().std() == pytest.approx(he, rel=0.02)
    assert np.abs(init.kaiming_uniform_(big(), nonlinearity="relu").numpy()).max() <= math.sqrt(3) * he
    assert init.kaiming_normal_(big(), mode="fan_out", nonlinearity="relu").numpy().std() == pytest.approx(
        math.sqrt(2 / fan_out), rel=0.02)


def test_constant_initialisers():
    assert (init.zeros_(big((3, 3))).numpy() == 0).all()
    assert (init.ones_(big((3, 3))).numpy() == 1).all()


def test_fan_needs_two_dims():
    with pytest.raises(ValueError, match=r"at least 2 dims, got shape \(3,\)"):
        init.xavier_uniform_(Tensor(np.zeros(3)))


def test_layer_defaults_match_torch_bounds():
    layer = nn.Conv2d(8, 16, 3)
    bound = 1 / math.sqrt(8 * 9)
    for p in (layer.weight, layer.bias):
        assert np.abs(p.numpy()).max() <= bound and np.abs(p.numpy()).max() > 0.8 * bound
    assert nn.Linear(5, 3).weight.dtype == np.float32


def test_manual_seed_makes_init_repeatable():
    fastconv.manual_seed(3)
    first = nn.Linear(4, 4).weight.numpy()
    fastconv.manual_seed(3)
    np.testing.assert_array_equal(first, nn.Linear(4, 4).weight.numpy())
