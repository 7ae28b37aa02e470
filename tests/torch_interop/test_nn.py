"""fastconv.torch's layers as drop-ins for torch's, and convert() on a torch model: same
parameters, same outputs, same gradients, same training curve."""
import copy

import numpy as np
import pytest

from tests.torch_interop.models import small_resnet


def _twin_layers(torch, make_ours, make_theirs):
    torch.manual_seed(0)
    ours = make_ours()
    torch.manual_seed(0)
    return ours, make_theirs()


@pytest.mark.parametrize("layer, args, kwargs", [
    ("Conv2d", (3, 4, 3), dict(stride=2, padding=1, padding_mode="reflect")),
    ("ConvTranspose2d", (3, 4, 3), dict(stride=2, padding=1)),
    ("BatchNorm2d", (3,), dict(momentum=None)),
])
def test_layer_is_a_drop_in(torch, fct, layer, args, kwargs):
    """Same defaults, initialisation and state_dict keys; the same outputs and gradients, and
    (BatchNorm2d) the same running statistics after two training steps."""
    ours, theirs = _twin_layers(torch, lambda: getattr(fct, layer)(*args, **kwargs),
                                lambda: getattr(torch.nn, layer)(*args, **kwargs))
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    for key, value in theirs.state_dict().items():
        torch.testing.assert_close(ours.state_dict()[key], value, rtol=0, atol=0)
    x = torch.randn(2, 3, 9, 8)
    for _ in range(2):
        ours_y, their_y = ours(x), theirs(x)
        torch.testing.assert_close(ours_y, their_y, rtol=1e-5, atol=1e-5)
        (ours_y * their_y.detach()).sum().backward()
        (their_y * their_y.detach()).sum().backward()
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-4, msg=name)
    for key, value in theirs.state_dict().items():
        torch.testing.assert_close(ours.state_dict()[key], value, rtol=1e-5, atol=1e-6)


def test_conv_transpose_output_size(torch, fct):
    ours, theirs = _twin_layers(torch, lambda: fct.ConvTranspose2d(2, 3, 3, stride=2),
                                lambda: torch.nn.ConvTranspose2d(2, 3, 3, stride=2))
    x = torch.randn(1, 2, 4, 5)
    assert ours(x, output_size=[10, 12]).shape == theirs(x, output_size=[10, 12]).shape == (1, 3, 10, 12)


def test_batch_norm_fusions(torch, fct):
    bn = fct.BatchNorm2d(3, relu=True).double()
    plain = torch.nn.BatchNorm2d(3).double()
    x, z = torch.randn(2, 3, 4, 4, dtype=torch.float64), torch.randn(2, 3, 4, 4, dtype=torch.float64)
    torch.testing.assert_close(bn(x, z), torch.relu(plain(x) + z))
    torch.testing.assert_close(bn.running_var, plain.running_var)


def test_pool_and_roi_layers(torch, fct):
    x = torch.randn(2, 3, 9, 8)
    y, indices = fct.MaxPool2d(3, 2, return_indices=True)(x)
    their_y, their_indices = torch.nn.MaxPool2d(3, 2, return_indices=True)(x)
    assert torch.equal(y, their_y) and torch.equal(indices, their_indices)
    torch.testing.assert_close(fct.AvgPool2d(3, 2, 1, divisor_override=5)(x),
                               torch.nn.AvgPool2d(3, 2, 1, divisor_override=5)(x))
    boxes = [torch.tensor([[0.5, 1.0, 6.0, 7.5]]), torch.tensor([[1.0, 0.0, 4.0, 3.0], [2.0, 2.0, 7.0, 8.0]])]
    as_rows = torch.tensor([[0, 0.5, 1.0, 6.0, 7.5], [1, 1.0, 0.0, 4.0, 3.0], [1, 2.0, 2.0, 7.0, 8.0]])
    align = fct.RoIAlign((2, 2), spatial_scale=0.5, sampling_ratio=2, aligned=True)
    torch.testing.assert_close(align(x, boxes), fct.functional.roi_align(x, as_rows, 2, 0.5, 2, True))
    assert fct.RoIPool(3, 1.0)(x, boxes).shape == (3, 3, 3, 3)


@pytest.fixture(scope="module")
def resnets(torch, fct):
    """(converted, plain): the same small ResNet twice, one converted to fastconv's layers."""
    torch.manual_seed(0)
    plain = small_resnet(torch).double()
    converted = copy.deepcopy(plain)
    parameters = list(converted.parameters())
    fct.convert(converted)
    assert all(p is q for p, q in zip(converted.parameters(), parameters))
    return converted, plain


def test_convert_swaps_every_layer(torch, fct, resnets):
    converted, plain = resnets
    replaced = (torch.nn.Conv2d, torch.nn.BatchNorm2d, torch.nn.MaxPool2d, torch.nn.AvgPool2d,
                torch.nn.AdaptiveAvgPool2d)
    for (name, ours), theirs in zip(converted.named_modules(), plain.modules()):
        if isinstance(theirs, replaced):
            assert type(ours).__module__ == "fastconv.torch.nn", name
            assert type(ours).__name__ == type(theirs).__name__
    assert converted.state_dict().keys() == plain.state_dict().keys()


def test_converted_model_matches_torch(torch, resnets):
    converted, plain = resnets
    x = torch.randn(3, 3, 12, 12, dtype=torch.float64)
    for model in (converted, plain):
        model.train()
        model.zero_grad()
        model(x).square().sum().backward()
    torch.testing.assert_close(converted(x), plain(x), rtol=1e-9, atol=1e-10)
    for (name, p), q in zip(converted.named_parameters(), plain.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-8, atol=1e-10, msg=name)
    converted.eval(), plain.eval()
    torch.testing.assert_close(converted(x), plain(x), rtol=1e-9, atol=1e-10)


def test_sgd_steps_give_the_same_loss_curve(torch, fct):
    torch.manual_seed(1)
    plain = small_resnet(torch)
    converted = fct.convert(copy.deepcopy(plain))
    x, labels = torch.randn(8, 3, 12, 12), torch.randint(0, 5, (8,))
    curves = []
    for model in (converted, plain):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        curve = []
        for _ in range(4):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), labels)
            loss.backward()
            optimizer.step()
            curve.append(loss.item())
        curves.append(curve)
    np.testing.assert_allclose(curves[0], curves[1], rtol=1e-4)
    assert curves[1][-1] < curves[1][0]  # the run trains: the comparison is not between two flat lines


def test_convert_leaves_subclasses_and_converts_a_bare_layer(torch, fct):
    class CustomConv(torch.nn.Conv2d):
        pass

    model = torch.nn.Sequential(CustomConv(1, 1, 1))
    fct.convert(model)
    assert type(model[0]) is CustomConv
    conv = torch.nn.Conv2d(1, 2, 3)
    converted = fct.convert(conv)
    assert isinstance(converted, fct.Conv2d) and converted.weight is conv.weight and converted.algo == "auto"


def test_unbatched_inputs_are_a_batch_of_one(torch, fct):
    conv, plain = _twin_layers(torch, lambda: fct.Conv2d(3, 4, 3, padding=1), lambda: torch.nn.Conv2d(3, 4, 3, padding=1))
    x = torch.randn(3, 7, 6)
    torch.testing.assert_close(conv(x), plain(x))
    ours, their = fct.MaxPool2d(2, return_indices=True)(x), torch.nn.MaxPool2d(2, return_indices=True)(x)
    assert all(torch.equal(a, b) for a, b in zip(ours, their)) and ours[0].shape == (3, 3, 3)
