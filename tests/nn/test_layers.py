"""Each layer against its torch.nn twin with the same state_dict: keys, shapes, forward and
gradients; plus behaviour torch cannot check (modes, running statistics)."""
import numpy as np
import pytest

from fastconv import Tensor, gradcheck, nn


def _copy_into_torch(torch, ours, theirs):
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()}, strict=False)


def _torch_keys(theirs):
    return {k for k in theirs.state_dict() if not k.endswith("num_batches_tracked")}


def _forward_and_backward(ours, theirs, x, torch, rtol, atol, seed=0):
    """Runs both on x and on the same output weights; compares outputs, input and parameter grads."""
    our_x, their_x = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, expected = ours(our_x), theirs(their_x)
    out, expected = (out[0], expected[0]) if isinstance(out, tuple) else (out, expected)
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=rtol, atol=atol)
    weights = np.random.default_rng(seed).standard_normal(out.shape).astype(out.dtype)
    (out * weights).sum().backward()
    (expected * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(our_x.grad.numpy(), their_x.grad.numpy(), rtol=rtol, atol=atol)
    grads = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), grads[name].grad.numpy(), rtol=rtol, atol=atol, err_msg=name)


# name: (ours, torch's (built by a function of the torch module), input shape)
LAYERS = {
    "Linear": (lambda: nn.Linear(4, 3), lambda t: t.nn.Linear(4, 3), (2, 4)),
    "Conv2d": (lambda: nn.Conv2d(2, 4, 3, stride=2, padding=1), lambda t: t.nn.Conv2d(2, 4, 3, stride=2, padding=1),
               (2, 2, 7, 7)),
    "Conv2d_groups_no_bias": (lambda: nn.Conv2d(4, 2, (3, 1), groups=2, bias=False),
                              lambda t: t.nn.Conv2d(4, 2, (3, 1), groups=2, bias=False), (1, 4, 5, 5)),
    "MaxPool2d": (lambda: nn.MaxPool2d(3, 2, 1), lambda t: t.nn.MaxPool2d(3, 2, 1), (1, 2, 6, 6)),
    "AvgPool2d": (lambda: nn.AvgPool2d(2), lambda t: t.nn.AvgPool2d(2), (1, 2, 6, 6)),
    "AdaptiveAvgPool2d": (lambda: nn.AdaptiveAvgPool2d(1), lambda t: t.nn.AdaptiveAvgPool2d(1), (2, 3, 5, 5)),
    "ReLU": (nn.ReLU, lambda t: t.nn.ReLU(), (3, 4)),
    "LeakyReLU": (lambda: nn.LeakyReLU(0.1), lambda t: t.nn.LeakyReLU(0.1), (3, 4)),
    "ELU": (nn.ELU, lambda t: t.nn.ELU(), (3, 4)),
    "Sigmoid": (nn.Sigmoid, lambda t: t.nn.Sigmoid(), (3, 4)),
    "Tanh": (nn.Tanh, lambda t: t.nn.Tanh(), (3, 4)),
    "Flatten": (nn.Flatten, lambda t: t.nn.Flatten(), (2, 3, 4)),
    "BatchNorm2d": (lambda: nn.BatchNorm2d(3), lambda t: t.nn.BatchNorm2d(3), (4, 3, 2, 2)),
    "BatchNorm1d": (lambda: nn.BatchNorm1d(3), lambda t: t.nn.BatchNorm1d(3), (5, 3)),
    "LSTMCell": (lambda: nn.LSTMCell(4, 3), lambda t: t.nn.LSTMCell(4, 3), (2, 4)),
    "GRUCell": (lambda: nn.GRUCell(4, 3), lambda t: t.nn.GRUCell(4, 3), (2, 4)),
    "LSTMCell_no_bias": (lambda: nn.LSTMCell(4, 3, bias=False), lambda t: t.nn.LSTMCell(4, 3, bias=False), (2, 4)),
    "LSTM_two_layers": (lambda: nn.LSTM(4, 3, num_layers=2), lambda t: t.nn.LSTM(4, 3, num_layers=2), (5, 2, 4)),
    "LSTM_batch_first": (lambda: nn.LSTM(4, 3, batch_first=True), lambda t: t.nn.LSTM(4, 3, batch_first=True),
                         (2, 5, 4)),
    "ConvTranspose2d": (lambda: nn.ConvTranspose2d(2, 4, 3, stride=2, padding=1, output_padding=1),
                        lambda t: t.nn.ConvTranspose2d(2, 4, 3, stride=2, padding=1, output_padding=1), (2, 2, 4, 5)),
    "ConvTranspose2d_groups_no_bias": (lambda: nn.ConvTranspose2d(4, 2, (3, 2), groups=2, bias=False, dilation=2),
                                       lambda t: t.nn.ConvTranspose2d(4, 2, (3, 2), groups=2, bias=False, dilation=2),
                                       (1, 4, 3, 3)),
    "Upsample_bilinear": (lambda: nn.Upsample(scale_factor=2, mode="bilinear"),
                          lambda t: t.nn.Upsample(scale_factor=2, mode="bilinear"), (1, 2, 3, 4)),
    "Upsample_nearest_size": (lambda: nn.Upsample(size=(5, 7)), lambda t: t.nn.Upsample(size=(5, 7)), (1, 2, 3, 4)),
    "UpsamplingBilinear2d": (lambda: nn.UpsamplingBilinear2d(scale_factor=3),
                             lambda t: t.nn.UpsamplingBilinear2d(scale_factor=3), (2, 1, 3, 3)),
    "UpsamplingNearest2d": (lambda: nn.UpsamplingNearest2d(size=4), lambda t: t.nn.UpsamplingNearest2d(size=4),
                            (1, 2, 3, 2)),
    "Sequential": (lambda: nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten()),
                   lambda t: t.nn.Sequential(t.nn.Conv2d(1, 2, 3), t.nn.BatchNorm2d(2), t.nn.ReLU(), t.nn.Flatten()),
                   (2, 1, 4, 4)),
}


@pytest.mark.parametrize("name", LAYERS)
@pytest.mark.parametrize("training", [True, False])
def test_matches_torch(name, training, rng, torch):
    make_ours, make_theirs, shape = LAYERS[name]
    ours, theirs = make_ours().train(training), make_theirs(torch).train(training)
    assert set(ours.state_dict()) == _torch_keys(theirs)
    _copy_into_torch(torch, ours, theirs)
    _forward_and_backward(ours, theirs, rng.standard_normal(shape).astype(np.float32), torch, 1e-4, 1e-5)
    for name, value in theirs.state_dict().items():  # running statistics moved alike
        if name in ours.state_dict():
            np.testing.assert_allclose(ours.state_dict()[name], value.numpy(), rtol=1e-5, atol=1e-6)


def test_lstm_returns_final_states(torch, rng):
    ours, theirs = nn.LSTM(3, 2, num_layers=2), torch.nn.LSTM(3, 2, num_layers=2)
    _copy_into_torch(torch, ours, theirs)
    x = rng.standard_normal((4, 1, 3)).astype(np.float32)
    h0, c0 = (rng.standard_normal((2, 1, 2)).astype(np.float32) for _ in range(2))
    _, (h, c) = ours(Tensor(x), (Tensor(h0), Tensor(c0)))
    _, (th, tc) = theirs(torch.tensor(x), (torch.tensor(h0), torch.tensor(c0)))
    np.testing.assert_allclose(h.numpy(), th.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(c.numpy(), tc.detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["CrossEntropyLoss", "MultiMarginLoss"])
def test_classification_losses_match_torch(name, rng, torch):
    x, target = rng.standard_normal((4, 3)), np.array([0, 2, 1, 2])
    ours = getattr(nn, name)()(Tensor(x), target).item()
    assert ours == pytest.approx(getattr(torch.nn, name)()(torch.tensor(x), torch.tensor(target)).item())


@pytest.mark.parametrize("name", ["MSELoss", "L1Loss"])
def test_regression_losses_match_torch(name, rng, torch):
    x, y = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    ours = getattr(nn, name)(reduction="sum")(Tensor(x), y).item()
    assert ours == pytest.approx(getattr(torch.nn, name)(reduction="sum")(torch.tensor(x), torch.tensor(y)).item())


def test_dropout_follows_the_mode():
    layer, x = nn.Dropout(0.5), Tensor(np.ones((10, 10), np.float32))
    assert (layer(x).numpy() == 0).any()
    assert layer.eval()(x) is x


def test_batch_norm_eval_uses_running_stats():
    layer = nn.BatchNorm1d(2).eval()
    layer.running_mean.data[:] = [1.0, 2.0]
    out = layer(Tensor(np.array([[1.0, 2.0]], np.float32)))
    np.testing.assert_allclose(out.numpy(), [[0.0, 0.0]])


def test_batch_norm_rejects_wrong_shapes():
    with pytest.raises(ValueError, match=r"BatchNorm2d\(3\).*got shape \(2, 4, 5, 5\)"):
        nn.BatchNorm2d(3)(Tensor(np.zeros((2, 4, 5, 5), np.float32)))


def test_embedding_looks_up_rows():
    layer = nn.Embedding(5, 2)
    np.testing.assert_array_equal(layer(np.array([[4, 0]])).numpy(), layer.weight.numpy()[[[4, 0]]])


def test_conv2d_checks_groups():
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)


@pytest.mark.usefixtures("one_thread")
def test_lstm_gradcheck(rng):
    layer = nn.LSTM(2, 2, num_layers=2, dtype=np.float64)
    x = Tensor(rng.standard_normal((2, 1, 2)), requires_grad=True)
    assert gradcheck(lambda x, *params: layer(x)[0], [x, *layer.parameters()])


@pytest.mark.usefixtures("one_thread")
def test_gru_cell_gradcheck(rng):
    layer = nn.GRUCell(2, 3, dtype=np.float64)
    x, h = (Tensor(rng.standard_normal((2, n)), requires_grad=True) for n in (2, 3))
    assert gradcheck(lambda x, h, *params: layer(x, h), [x, h, *layer.parameters()])


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_relu_is_batch_norm_add_relu(training, rng, torch):
    # torch has no fused layer: its twin is BatchNorm2d, loaded from our state_dict, then + and ReLU
    ours, theirs = nn.BatchNormReLU2d(3).train(training), torch.nn.BatchNorm2d(3).train(training)
    ours.weight.data[:] = rng.uniform(0.5, 1.5, 3)
    ours.running_var.data[:] = rng.uniform(0.5, 1.5, 3)
    assert set(ours.state_dict()) == _torch_keys(theirs)
    _copy_into_torch(torch, ours, theirs)
    x, z, dy = (rng.standard_normal((4, 3, 3, 2)).astype(np.float32) for _ in range(3))
    our_in = [Tensor(a, requires_grad=True) for a in (x, z)]
    their_in = [torch.tensor(a, requires_grad=True) for a in (x, z)]
    out, expected = ours(*our_in), torch.relu(theirs(their_in[0]) + their_in[1])
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-4, atol=1e-5)
    (out * dy).sum().backward()
    (expected * torch.tensor(dy)).sum().backward()
    pairs = list(zip(our_in, their_in)) + [(ours.weight, theirs.weight), (ours.bias, theirs.bias)]
    for a, b in pairs:
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-4, atol=1e-5)
    for name, value in theirs.state_dict().items():
        if name in ours.state_dict():
            np.testing.assert_allclose(ours.state_dict()[name], value.numpy(), rtol=1e-5, atol=1e-6)
    without_residual = ours(Tensor(x)).numpy()
    assert (without_residual >= 0).all() and (without_residual == 0).any()


def _conv_and_bn(rng, dtype, stride, bias):
    conv = nn.Conv2d(3, 5, 3, stride=stride, padding=1, bias=bias, dtype=dtype)
    bn = nn.BatchNormReLU2d(5, dtype=dtype)
    for values, low, high in ((bn.weight, 0.5, 1.5), (bn.bias, -0.5, 0.5), (bn.running_mean, -0.5, 0.5),
                              (bn.running_var, 0.5, 2.0)):
        values.data[:] = rng.uniform(low, high, 5)
    return conv, bn


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("with_residual", [False, True])
@pytest.mark.parametrize("stride,bias", [(1, False), (2, True)])
def test_batch_norm_relu_after_conv_folds_only_in_eval_without_gradients(rng, dtype, with_residual, stride, bias,
                                                                         monkeypatch):
    from fastconv import no_grad
    from fastconv.ops import conv_algo
    # Compared bit for bit below: the same kernels in every call (auto, while choosing, may not).
    monkeypatch.setattr(conv_algo, "_mode", "deterministic")
    conv, bn = _conv_and_bn(rng, dtype, stride, bias)
    x = Tensor(rng.standard_normal((2, 3, 9, 9)).astype(dtype))
    residual = Tensor(rng.standard_normal(conv(x).shape).astype(dtype)) if with_residual else None
    x.data[0, 0, 0, 0] = np.nan  # a NaN reaching the ReLU passes it, folded or not
    bn.eval()
    unfolded = bn(conv(x), residual).numpy()
    assert np.isnan(unfolded).any()
    with no_grad():
        folded = bn.after_conv(conv, x, residual).numpy()
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(folded, unfolded, rtol=tol, atol=tol)  # NaN where NaN
    assert folded.dtype == dtype
    # With gradients, or in training, exactly the unfused pair.
    np.testing.assert_array_equal(bn.after_conv(conv, x, residual).numpy(), unfolded)
    bn.train()
    with no_grad():
        trained = bn.after_conv(conv, x, residual).numpy()
    np.testing.assert_array_equal(trained, bn(conv(x), residual).numpy())


def test_batch_norm_relu_after_conv_keeps_its_fold_while_the_parameters_hold_their_values(rng, monkeypatch):
    from fastconv import no_grad
    from fastconv.ops import conv_algo
    monkeypatch.setattr(conv_algo, "_mode", "deterministic")
    conv, bn = _conv_and_bn(rng, np.float64, 1, True)
    bn.eval()
    x = Tensor(rng.standard_normal((2, 3, 9, 9)))

    def folded_and_expected():
        with no_grad():
            folded = bn.after_conv(conv, x).numpy()
        return folded, bn(conv(x)).numpy()

    first, expected = folded_and_expected()
    np.testing.assert_allclose(first, expected, rtol=1e-12, atol=1e-12)
    kept = bn._folded.weight_and_bias
    again, _ = folded_and_expected()
    assert bn._folded.weight_and_bias is kept  # the same folded arrays: their transforms stay cached
    np.testing.assert_array_equal(again, first)
    # Each source changed in place (as an optimiser or a loaded state_dict does) is folded anew.
    for source in (conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.weight, bn.bias):
        source.data[1] += 0.25
        changed, expected = folded_and_expected()
        assert bn._folded.weight_and_bias is not kept
        kept = bn._folded.weight_and_bias
        np.testing.assert_allclose(changed, expected, rtol=1e-12, atol=1e-12)
    bn.eps = 1e-3  # a hyper-parameter too
    changed, expected = folded_and_expected()
    np.testing.assert_allclose(changed, expected, rtol=1e-12, atol=1e-12)
    other = nn.Conv2d(3, 5, 3, padding=1, dtype=np.float64)  # another conv before the same layer
    with no_grad():
        np.testing.assert_allclose(bn.after_conv(other, x).numpy(), bn(other(x)).numpy(), rtol=1e-12, atol=1e-12)
    bn.train()  # training drops the fold
    with no_grad():
        bn.after_conv(conv, x)
    assert "_folded" not in bn.__dict__
    assert set(bn.state_dict()) == {"weight", "bias", "running_mean", "running_var"}


def test_conv_transpose2d_checks_groups():
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.ConvTranspose2d(3, 4, 3, groups=2)


@pytest.mark.parametrize("layer", [nn.Conv2d, nn.ConvTranspose2d])
def test_a_layer_pinned_to_an_algorithm_matches_auto(layer, rng):
    layers = {algo: layer(4, 6, 3, padding=1, dtype=np.float64, algo=algo) for algo in ("auto", "im2col", "winograd")}
    for pinned in layers.values():
        pinned.load_state_dict(layers["auto"].state_dict())
    x = rng.standard_normal((2, 4, 8, 8))
    results = {}
    for algo, pinned in layers.items():
        our_x = Tensor(x, requires_grad=True)
        out = pinned(our_x)
        (out * out).sum().backward()
        results[algo] = [out.numpy(), our_x.grad.numpy(), pinned.weight.grad.numpy(), pinned.bias.grad.numpy()]
    for algo in ("im2col", "winograd"):
        for name, ours, expected in zip(["output", "input grad", "weight grad", "bias grad"], results[algo],
                                        results["auto"]):
            np.testing.assert_allclose(ours, expected, rtol=1e-10, atol=1e-10, err_msg=f"{algo}: {name}")
    assert "algo='winograd'" in repr(layers["winograd"]) and "algo" not in repr(layers["auto"])
