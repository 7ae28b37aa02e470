"""Module bookkeeping: registration, traversal, modes, state_dict and its errors."""
import numpy as np
import pytest

from fastconv import Tensor, nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3)
        self.norm = nn.BatchNorm2d(3)
        self.scale = nn.Parameter(np.ones(1, np.float32))
        self.not_a_parameter = np.zeros(2)


def make_model():
    return nn.Sequential(Block(), nn.Flatten(), nn.Dropout(0.5), nn.Linear(12, 2))


def test_parameters_are_found_by_assignment():
    names = [name for name, _ in make_model().named_parameters()]
    assert names == ["0.scale", "0.conv.weight", "0.conv.bias", "0.norm.weight", "0.norm.bias",
                     "3.weight", "3.bias"]
    assert len(list(make_model().parameters())) == 7


def test_children_and_modules():
    model = make_model()
    assert [type(m).__name__ for m in model.children()] == ["Block", "Flatten", "Dropout", "Linear"]
    assert len(list(model.modules())) == 7
    assert isinstance(model[0], Block) and len(model) == 4


def test_train_and_eval_reach_every_module():
    model = make_model().eval()
    assert not any(m.training for m in model.modules())
    assert all(m.training for m in model.train().modules())


def test_state_dict_holds_parameters_and_buffers():
    state = make_model().state_dict()
    assert {"0.norm.running_mean", "0.norm.running_var", "0.conv.weight", "3.bias"} <= set(state)
    assert all(isinstance(v, np.ndarray) for v in state.values())


def test_state_dict_round_trip_copies_in_place():
    source, target = make_model(), make_model()
    weight_before = target[3].weight
    target.load_state_dict(source.state_dict())
    assert target[3].weight is weight_before  # optimizers keep their references
    for (name, a), b in zip(source.state_dict().items(), target.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_state_dict_is_a_copy():
    model = make_model()
    state = model.state_dict()
    state["3.bias"][:] = 99
    assert not (model[3].bias.numpy() == 99).any()


def test_missing_and_unexpected_keys_raise():
    model = make_model()
    state = model.state_dict()
    del state["3.weight"]
    state["3.extra"] = np.zeros(1)
    with pytest.raises(RuntimeError, match=r"missing keys \['3.weight'\], unexpected keys \['3.extra'\]"):
        model.load_state_dict(state)
    assert model.load_state_dict(state, strict=False) == (["3.weight"], ["3.extra"])


def test_shape_mismatch_raises_even_when_not_strict():
    model = make_model()
    state = model.state_dict()
    state["3.bias"] = np.zeros(5)
    with pytest.raises(ValueError, match=r"3.bias has shape \(5,\) in the state dict but \(2,\) in the model"):
        model.load_state_dict(state, strict=False)


def test_zero_grad_clears_every_parameter():
    model = nn.Linear(3, 2)
    model(Tensor(np.ones((1, 3), np.float32))).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_module_list_registers_its_modules():
    layers = nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 3)])
    assert len(list(layers.parameters())) == 4 and layers[1].out_features == 3


def test_missing_super_init_is_explained():
    class Broken(nn.Module):
        def __init__(self):
            self.layer = nn.Linear(1, 1)

    with pytest.raises(AttributeError, match="Module.__init__"):
        Broken()


def test_repr_shows_structure():
    assert "(3): Linear(12, 2, bias=True)" in repr(make_model())


def test_reassignment_moves_an_attribute_between_kinds():
    layer = nn.Linear(2, 2, bias=False)
    assert layer.bias is None
    layer.bias = nn.Parameter(np.zeros(2, np.float32))
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"] and layer.bias.shape == (2,)
    layer.bias = None
    assert layer.bias is None and len(list(layer.parameters())) == 1


def test_tied_parameters_are_listed_once():
    encoder, decoder = nn.Linear(3, 3), nn.Linear(3, 3)
    decoder.weight = encoder.weight
    assert len(list(nn.Sequential(encoder, decoder).parameters())) == 3
