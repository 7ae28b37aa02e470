"""models/visualization.py: saliency against central differences, the style-transfer losses
against float64 references, the targeted attack's budget and success, class visualisation and
style transfer making their objectives better. Tiny float64 nets, seeded."""
import numpy as np
import pytest

import fastconv
from fastconv import nn
from fastconv.autograd import Tensor
from fastconv.models import visualization as vis
from tests.models.test_scripts import load_program
from tests.models.test_stn import needs_mnist

pytestmark = pytest.mark.usefixtures("deterministic_algorithms")


def tiny_net(in_channels=2, side=6, num_classes=3, seed=0):
    """conv 3x3 -> tanh (smooth, so central differences are exact to O(eps^2)) -> linear, float64."""
    fastconv.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(in_channels, 4, 3, padding=1, dtype=np.float64), nn.Tanh(), nn.Flatten(),
                         nn.Linear(4 * side * side, num_classes, dtype=np.float64))


def numeric_score_gradient(model, image, label, eps=1e-6):
    """d score[label] / d image by central differences, one pixel at a time, in float64."""
    grad = np.zeros_like(image)
    for index in np.ndindex(image.shape):
        shifted = []
        for sign in (1, -1):
            x = image.copy()
            x[index] += sign * eps
            with fastconv.no_grad():
                shifted.append(model(Tensor(x[None])).numpy()[0, label])
        grad[index] = (shifted[0] - shifted[1]) / (2 * eps)
    return grad


def test_saliency_is_the_largest_absolute_class_score_gradient_over_channels():
    model, rng = tiny_net(), np.random.default_rng(0)
    images, labels = rng.uniform(0, 1, (2, 2, 6, 6)), np.array([2, 0])
    maps = vis.saliency_maps(model, images, labels)
    expected = np.stack([np.abs(numeric_score_gradient(model, image, label)).max(axis=0)
                         for image, label in zip(images, labels)])
    np.testing.assert_allclose(maps, expected, rtol=1e-6, atol=1e-9)
    assert all(p.grad is None and p.requires_grad for p in model.parameters())  # the model is left as it was


def test_saliency_refuses_labels_that_are_not_classes():
    with pytest.raises(ValueError, match="labels: expected a 1-d array of classes in \\[0, 3\\)"):
        vis.saliency_maps(tiny_net(), np.zeros((1, 2, 6, 6)), [3])


def test_gram_matrix_matches_a_float64_reference():
    features = np.random.default_rng(1).standard_normal((2, 3, 4, 5)).astype(np.float32)
    flat = features.astype(np.float64).reshape(2, 3, 20)
    expected = np.einsum("ncp,ndp->ncd", flat, flat)
    np.testing.assert_allclose(vis.gram_matrix(Tensor(features), normalize=False).numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(vis.gram_matrix(Tensor(features)).numpy(), expected / 60, rtol=1e-5)


def test_total_variation_matches_a_float64_reference_and_its_gradient_the_numerical_one():
    images = np.random.default_rng(2).standard_normal((2, 3, 5, 4))
    expected = sum(((images[:, :, i + 1] - images[:, :, i]) ** 2).sum() for i in range(4)) + \
        sum(((images[:, :, :, j + 1] - images[:, :, :, j]) ** 2).sum() for j in range(3))
    assert vis.total_variation_loss(Tensor(images)).item() == pytest.approx(expected, rel=1e-12)
    assert fastconv.gradcheck(vis.total_variation_loss, [Tensor(images, requires_grad=True)])


def test_style_loss_matches_a_float64_reference_and_its_gradient_the_numerical_one():
    rng = np.random.default_rng(3)
    features = [rng.standard_normal((1, 2, 3, 3)), rng.standard_normal((1, 4, 2, 2))]
    targets = [rng.standard_normal((1, 2, 2)), rng.standard_normal((1, 4, 4))]
    weights = (0.5, 2.0)
    expected = sum(w * ((np.einsum("ncp,ndp->ncd", *[f.reshape(1, f.shape[1], -1)] * 2) / f[0].size - t) ** 2).sum()
                   for f, t, w in zip(features, targets, weights))
    loss = vis.style_loss([Tensor(f) for f in features], [Tensor(t) for t in targets], weights)
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    assert fastconv.gradcheck(lambda a, b: vis.style_loss([a, b], [Tensor(t) for t in targets], weights),
                              [Tensor(f, requires_grad=True) for f in features])


def test_targeted_attack_stays_within_its_budget_and_flips_a_tiny_model():
    model, rng = tiny_net(in_channels=1, num_classes=3, seed=4), np.random.default_rng(4)
    images = rng.uniform(0.3, 0.7, (8, 1, 6, 6))
    with fastconv.no_grad():
        clean = model(Tensor(images)).numpy().argmax(axis=1)
    targets = (clean + 1) % 3
    options = vis.AttackOptions(epsilon=0.25, step_size=0.02, steps=100)
    result = vis.targeted_attack(model, images, targets, options)
    with fastconv.no_grad():
        fooled = model(Tensor(result.adversarial)).numpy().argmax(axis=1)
    assert result.success.all() and (fooled == targets).all()
    assert np.abs(result.adversarial - images).max() <= options.epsilon + 1e-12
    assert result.adversarial.min() >= 0 and result.adversarial.max() <= 1
    np.testing.assert_allclose(result.linf, np.abs(result.adversarial - images).reshape(8, -1).max(axis=1))
    np.testing.assert_allclose(result.l2, np.linalg.norm((result.adversarial - images).reshape(8, -1), axis=1))


def test_targeted_attack_reports_failure_when_the_budget_is_too_small():
    model, rng = tiny_net(in_channels=1, num_classes=3, seed=4), np.random.default_rng(4)
    images = rng.uniform(0.3, 0.7, (8, 1, 6, 6))
    with fastconv.no_grad():
        targets = (model(Tensor(images)).numpy().argmax(axis=1) + 1) % 3
    result = vis.targeted_attack(model, images, targets, vis.AttackOptions(epsilon=1e-4, step_size=1e-4, steps=3))
    assert not result.success.any() and result.linf.max() <= 1e-4 + 1e-12


def test_attack_options_refuse_a_non_positive_budget():
    with pytest.raises(ValueError, match="epsilon, step_size, steps: expected positive values"):
        vis.AttackOptions(epsilon=0)


def test_class_visualization_raises_each_target_score_and_is_seeded():
    model = tiny_net(in_channels=1, num_classes=3, seed=5)
    for p in model.parameters():
        p.data *= 4  # logits of a few units, not hundredths: room for the ascent to show
    options = vis.ClassVisualizationOptions(steps=30, seed=1)
    start = 0.5 + 0.05 * np.random.default_rng(1).standard_normal((1, 1, 6, 6))  # where the ascent begins
    for target in range(3):
        image = vis.class_visualization(model, target, (1, 6, 6), options)
        with fastconv.no_grad():
            before, after = (model(Tensor(x)).numpy()[0, target] for x in (start, image[None]))
        assert after > before + 0.5, target
        assert image.min() >= 0 and image.max() <= 1
    np.testing.assert_array_equal(image, vis.class_visualization(model, 2, (1, 6, 6), options))


def test_blur_keeps_a_constant_image_constant_away_from_the_edges():
    image = np.full((1, 2, 9, 9), 0.7, dtype=np.float32)
    assert vis.gaussian_kernel(1.0).sum() == pytest.approx(1)
    np.testing.assert_allclose(vis.blur(image, 1.0)[:, :, 2:-2, 2:-2], 0.7, rtol=1e-6)


def test_style_transfer_lowers_its_loss_on_small_synthetic_images():
    rng = np.random.default_rng(6)
    content = np.zeros((3, 16, 16), dtype=np.float32)
    content[:, 4:12, 4:12] = 1  # a white square
    stripes = np.tile((np.arange(16) // 2 % 2).astype(np.float32), (16, 1))
    style = np.stack([stripes, stripes.T, rng.uniform(0, 1, (16, 16)).astype(np.float32)])
    net = vis.RandomFeatureNet(widths=(8, 8, 8), seed=0)
    options = vis.StyleTransferOptions(steps=15, lr=0.05, content_layer=1, style_layers=(0, 1, 2),
                                       style_weights=(1e3, 1e3, 1e3))
    image, history = vis.style_transfer(net, content, style, options, show_progress=False)
    assert image.shape == content.shape and 0 <= image.min() and image.max() <= 1
    assert history[-1] < 0.5 * history[0]
    assert all(p.requires_grad for p in net.parameters())


@needs_mnist
def test_the_visualization_program_writes_its_three_figures(tmp_path, capsys):
    argv = ["--limit", "200", "--epochs", "1", "--width", "4", "--attack-images", "8", "--ascent-steps", "3",
            "--out-dir", str(tmp_path)]
    assert load_program("network_visualization.py").main(argv) == 0
    assert "images fooled into their target class within L-inf 0.3" in capsys.readouterr().out
    for name in ("saliency", "class_visualization", "fooling"):
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_style_transfer_program_writes_its_figure(tmp_path, capsys):
    pytest.importorskip("skimage", reason="the photos ship with scikit-image")
    out = tmp_path / "style.png"
    assert load_program("style_transfer.py").main(["--size", "16", "--steps", "3", "--out", str(out)]) == 0
    assert "no ImageNet weights" in capsys.readouterr().out
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
