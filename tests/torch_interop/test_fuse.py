"""fastconv.torch.fuse: which conv -> batch norm [-> sum] [-> ReLU] chains become one fastconv
convolution, and that the fused model computes what the model did (float64, against the model
itself in eval mode)."""
import copy
import operator

import numpy as np
import pytest


def _randomise_batch_norms(torch, model, seed=0):
    """Running statistics and affine parameters away from their defaults, so that a fold that
    dropped any of them would show."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                c = module.num_features
                if module.running_mean is not None:
                    module.running_mean.copy_(torch.rand(c, generator=g, dtype=torch.float64) - 0.5)
                    module.running_var.copy_(torch.rand(c, generator=g, dtype=torch.float64) + 0.5)
                if module.weight is not None:
                    module.weight.copy_(torch.rand(c, generator=g, dtype=torch.float64) + 0.5)
                    module.bias.copy_(torch.rand(c, generator=g, dtype=torch.float64) - 0.5)
    return model


def _block(torch, add, relu, shortcut_conv=False):
    """A ResNet basic block written with one of the ways torch code sums and applies ReLU."""
    nn, tF = torch.nn, torch.nn.functional

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(4, 4, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(4)
            self.relu1 = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
            self.bn2 = nn.BatchNorm2d(4)
            if shortcut_conv:
                self.shortcut = nn.Sequential(nn.Conv2d(4, 4, 1, bias=False), nn.BatchNorm2d(4))

        def forward(self, x):
            out = self.relu1(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            skip = self.shortcut(x) if shortcut_conv else x
            if add == "+":
                out = out + skip
            elif add == "reversed +":
                out = skip + out
            elif add == "+=":
                out += skip
            elif add == "torch.add":
                out = torch.add(out, skip)
            elif add == ".add_":
                out = out.add_(skip)
            if relu == "F.relu":
                return tF.relu(out)
            if relu == "torch.relu":
                return torch.relu(out)
            if relu == ".relu_":
                return out.relu_()
            return tF.relu(out, inplace=True)

    return Block().double()


def _fused_layers(fct, fused):
    return [m for m in fused.modules() if isinstance(m, fct.Conv2d)]


def _check_same_output(torch, model, fused, x):
    with torch.no_grad():
        expected, ours = model(x), fused(x)
    np.testing.assert_allclose(ours.numpy(), expected.numpy(), rtol=1e-10, atol=1e-10)


def _check_same_gradients(model, fused):
    """Each parameter's .grad in the fused copy against the model's (the same names)."""
    theirs = dict(model.named_parameters())
    for name, parameter in fused.named_parameters():
        np.testing.assert_allclose(parameter.grad.numpy(), theirs[name].grad.numpy(), rtol=1e-9, atol=1e-10,
                                   err_msg=name)


@pytest.mark.parametrize("add", ["+", "reversed +", "+=", "torch.add", ".add_"])
@pytest.mark.parametrize("relu", ["F.relu", "torch.relu", ".relu_", "F.relu inplace"])
def test_a_resnet_block_becomes_two_convolutions(torch, fct, add, relu):
    model = _randomise_batch_norms(torch, _block(torch, add, relu)).eval()
    fused = fct.fuse(model)
    layers = _fused_layers(fct, fused)
    assert len(layers) == 2 and all(layer.relu for layer in layers)
    assert not any(isinstance(m, (torch.nn.BatchNorm2d, torch.nn.ReLU)) for m in fused.modules())
    sums = [n for n in fused.graph.nodes if n.target in (operator.add, operator.iadd, torch.add, "add_")]
    assert not sums  # the shortcut is the second convolution's residual input
    x = torch.randn(2, 4, 6, 5, dtype=torch.float64)
    _check_same_output(torch, model, fused, x)
    # channels_last in, channels_last out, the same values
    x_cl = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        out = fused(x_cl)
    assert out.is_contiguous(memory_format=torch.channels_last)
    _check_same_output(torch, model, fused, x_cl)


def test_a_shortcut_conv_and_batch_norm_fold_into_one_layer_without_relu(torch, fct):
    model = _randomise_batch_norms(torch, _block(torch, "+", "F.relu", shortcut_conv=True)).eval()
    fused = fct.fuse(model)
    assert sorted(layer.relu for layer in _fused_layers(fct, fused)) == [False, True, True]
    _check_same_output(torch, model, fused, torch.randn(3, 4, 5, 5, dtype=torch.float64))


def test_fuse_leaves_the_model_and_what_it_cannot_fuse_alone(torch, fct):
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.two_users = nn.Conv2d(3, 4, 3, padding=1)
            self.bn_a = nn.BatchNorm2d(4)
            self.shared = nn.Conv2d(4, 4, 1)
            self.bn_b = nn.BatchNorm2d(4)
            self.conv = nn.Conv2d(4, 4, 3, padding=1)
            self.no_stats = nn.BatchNorm2d(4, track_running_stats=False)
            self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
            self.bn_c = nn.BatchNorm2d(4)

        def forward(self, x):
            y = self.two_users(x)
            a = self.bn_a(y) + y  # the conv output also reaches the sum: no fold
            b = self.bn_b(self.shared(a)) + self.shared(a)  # a conv called twice: no fold
            c = self.no_stats(self.conv(b))  # batch statistics even in eval mode: no fold
            skip = c * 1.0
            skip += self.bn_c(self.conv2(c))  # the sum writes into the other tensor: fold, sum kept
            return skip + 2.0

    model = _randomise_batch_norms(torch, Net().double()).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fused = fct.fuse(model)
    layers = _fused_layers(fct, fused)
    assert len(layers) == 1 and not layers[0].relu  # conv2 + bn_c only
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules()) == 3
    _check_same_output(torch, model, fused, torch.randn(2, 3, 6, 6, dtype=torch.float64))
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # the model is not changed


def test_a_residual_that_broadcasts_is_added_after_the_kernel(torch, fct):
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.bn = nn.BatchNorm2d(4)
            self.offset = nn.Parameter(torch.rand(1, 4, 1, 1, dtype=torch.float64) - 0.5)

        def forward(self, x):
            return torch.relu(self.bn(self.conv(x)) + self.offset)

    model = _randomise_batch_norms(torch, Net().double()).eval()
    fused = fct.fuse(model)
    assert [layer.relu for layer in _fused_layers(fct, fused)] == [True]
    _check_same_output(torch, model, fused, torch.randn(2, 3, 5, 7, dtype=torch.float64))


def test_fastconv_layers_fuse_too(torch, fct):
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
            self.bn1 = nn.BatchNorm2d(4)
            self.conv2 = nn.Conv2d(4, 4, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(4, affine=False)

        def forward(self, x):
            h = torch.relu(self.bn1(self.conv1(x)))
            return torch.relu(self.bn2(self.conv2(h)) + h)

    model = _randomise_batch_norms(torch, Net().double()).eval()
    converted = fct.convert(_randomise_batch_norms(torch, Net().double()))
    converted.load_state_dict(model.state_dict())
    converted.bn2.relu = True  # fastconv's BatchNorm2d with its own ReLU and residual input

    class Wrapped(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            h = torch.relu(self.inner.bn1(self.inner.conv1(x)))
            return self.inner.bn2(self.inner.conv2(h), h)

    fused = fct.fuse(Wrapped(converted).eval())
    assert [layer.relu for layer in _fused_layers(fct, fused)] == [True, True]
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    _check_same_output(torch, model, fused, torch.randn(2, 3, 6, 6, dtype=torch.float64))


def test_fuse_refuses_a_model_it_cannot_trace(torch, fct):
    class ValueDependent(torch.nn.Module):
        def forward(self, x):
            return x if x.sum() > 0 else -x

    with pytest.raises(ValueError, match="model: torch.fx could not trace it"):
        fct.fuse(ValueDependent().eval())


@pytest.mark.parametrize("shortcut_conv", [False, True])
def test_in_training_batch_norm_sum_and_relu_become_one_pass_that_trains_alike(torch, fct, shortcut_conv):
    model = _randomise_batch_norms(torch, _block(torch, "+", "F.relu", shortcut_conv)).train()
    fused = fct.fuse(model)
    batch_norms = [m for m in fused.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(batch_norms) == 2 + shortcut_conv
    # bn1 -> ReLU and bn2 -> + shortcut -> ReLU fused; the shortcut's own batch norm, followed by
    # neither, stays torch's
    assert [m.relu for m in batch_norms if type(m) is fct.BatchNorm2d] == [True, True]
    assert not any(isinstance(m, torch.nn.ReLU) for m in fused.modules())
    assert not [n for n in fused.graph.nodes if n.target in (operator.add, torch.nn.functional.relu)]
    x = torch.randn(3, 4, 5, 6, dtype=torch.float64)
    expected, ours = model(x), fused(x)
    np.testing.assert_allclose(ours.detach().numpy(), expected.detach().numpy(), rtol=1e-10, atol=1e-10)
    (expected * expected).sum().backward()
    (ours * ours).sum().backward()
    _check_same_gradients(model, fused)
    buffers = dict(model.named_buffers())
    for name, buffer in fused.named_buffers():  # running statistics updated alike, batch counters too
        np.testing.assert_allclose(buffer.numpy(), buffers[name].numpy(), rtol=1e-12, atol=1e-12, err_msg=name)


def test_the_fused_convolution_still_passes_gradients_to_its_input(torch, fct):
    model = _randomise_batch_norms(torch, _block(torch, "+", "F.relu")).eval()
    fused = fct.fuse(model)
    x = torch.randn(2, 4, 5, 5, dtype=torch.float64, requires_grad=True)
    fused(x).sum().backward()
    x_ref = x.detach().clone().requires_grad_()
    model(x_ref).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), x_ref.grad.numpy(), rtol=1e-9, atol=1e-10)


def test_a_torchvision_style_resnet_fuses_converted_and_compiles(torch, fct):
    from tests.torch_interop.models import small_resnet
    torch.manual_seed(0)
    model = _randomise_batch_norms(torch, small_resnet(torch).double()).eval()
    fused = fct.fuse(fct.convert(copy.deepcopy(model)))
    # stem; block 1: two; block 2: two and its 1x1 shortcut (no ReLU of its own)
    assert sorted(layer.relu for layer in _fused_layers(fct, fused)) == [False] + [True] * 5
    x = torch.randn(2, 3, 12, 12, dtype=torch.float64)
    _check_same_output(torch, model, fused, x)
    torch._dynamo.reset()
    compiled = torch.compile(fused, backend="aot_eager", fullgraph=True)  # one graph: fastconv's ops traced
    _check_same_output(torch, model, compiled, x)


@pytest.mark.parametrize("training", [False, True])
def test_a_conv_followed_by_a_sum_and_relu_fuses_in_either_mode(torch, fct, training):
    nn = torch.nn

    class Net(nn.Module):  # VGG-style convolutions with ReLUs, a residual sum, no batch norm
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect")
            self.conv3 = nn.Conv2d(4, 4, 1)

        def forward(self, x):
            h = self.relu(self.conv1(x))
            h = torch.relu(self.conv2(h) + h)
            return self.conv3(h) * 2.0  # a conv followed by neither: left alone

    torch.manual_seed(0)
    model = Net().double().train(training)
    fused = fct.fuse(model)
    assert [layer.relu for layer in _fused_layers(fct, fused)] == [True, True]
    assert type(fused.conv3) is nn.Conv2d
    x = torch.randn(2, 3, 6, 7, dtype=torch.float64)
    expected, ours = model(x), fused(x)
    np.testing.assert_allclose(ours.detach().numpy(), expected.detach().numpy(), rtol=1e-10, atol=1e-10)
    expected.sum().backward()
    ours.sum().backward()
    _check_same_gradients(model, fused)

