"""Classic models: kNN distances and votes, SVM/softmax gradients, and brief training on real digits."""
import importlib.util

import numpy as np
import pytest

from fastconv.data import load_digits, train_test_split
from fastconv.models.classic import (KNearestNeighbors, LinearSVM, Perceptron, SoftmaxClassifier, accuracy,
                                     cross_validate_k, majority_vote, pairwise_sq_distances, softmax_loss,
                                     svm_loss)

needs_digits = pytest.mark.skipif(importlib.util.find_spec("sklearn") is None, reason="scikit-learn not installed")


@pytest.fixture(scope="module")
def digits():
    x, y, _ = load_digits()
    return train_test_split(x, y, test_fraction=0.25, seed=0)


def test_distances_match_a_naive_loop(rng):
    a, b = rng.standard_normal((7, 5)), rng.standard_normal((4, 5))
    naive = np.array([[np.sum((p - q) ** 2) for q in b] for p in a])
    np.testing.assert_allclose(pairwise_sq_distances(a, b), naive, rtol=1e-10, atol=1e-12)


def test_distance_to_itself_is_clamped_at_zero(rng):
    a = 1e3 + rng.standard_normal((6, 20))  # large norms make ||a||^2 + ||a||^2 - 2 a.a cancel badly
    d = pairwise_sq_distances(a, a)
    assert d.min() >= 0
    np.testing.assert_allclose(np.diag(d), 0, atol=1e-6)


def test_vote_ties_go_to_the_smallest_label():
    votes = majority_vote(np.array([[3, 1, 3, 1], [2, 2, 0, 5], [4, 4, 4, 0]]), n_classes=6)
    np.testing.assert_array_equal(votes, [1, 2, 4])


def test_knn_k1_recalls_its_training_set_and_cv_prefers_small_k_on_clean_clusters(rng):
    centres = 10 * rng.standard_normal((3, 4))
    y = np.repeat(np.arange(3), 20)
    x = centres[y] + 0.1 * rng.standard_normal((60, 4))
    assert accuracy(KNearestNeighbors(1).fit(x, y), x, y) == 1.0
    scores, best_k = cross_validate_k(x, y, ks=(1, 3, 5), folds=4)
    assert best_k == 1 and all(score == 1.0 for score in scores.values())


def numeric_gradient(f, array, h=1e-6):
    """Central differences of the scalar f() with respect to each entry of array (changed in place)."""
    grad = np.zeros_like(array)
    for index in np.ndindex(array.shape):
        saved = array[index]
        array[index] = saved + h
        plus = f()
        array[index] = saved - h
        minus = f()
        array[index] = saved
        grad[index] = (plus - minus) / (2 * h)
    return grad


@pytest.mark.parametrize("loss_fn", [svm_loss, softmax_loss])
def test_loss_gradients_match_numeric(loss_fn, rng):
    x, y = rng.standard_normal((9, 6)), rng.integers(0, 4, size=9)
    W, b = rng.standard_normal((6, 4)), rng.standard_normal(4)
    _, dW, db = loss_fn(W, b, x, y, reg=0.1)
    np.testing.assert_allclose(dW, numeric_gradient(lambda: loss_fn(W, b, x, y, 0.1)[0], W), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(db, numeric_gradient(lambda: loss_fn(W, b, x, y, 0.1)[0], b), rtol=1e-5, atol=1e-7)


def test_softmax_loss_is_stable_for_huge_scores_and_log_c_at_zero_weights(rng):
    x, y = rng.standard_normal((5, 3)), rng.integers(0, 10, size=5)
    assert np.isclose(softmax_loss(np.zeros((3, 10)), np.zeros(10), x, y, 0.0)[0], np.log(10))
    loss, dW, _ = softmax_loss(1e5 * rng.standard_normal((3, 10)), np.zeros(10), x, y, 0.0)
    assert np.isfinite(loss) and np.all(np.isfinite(dW))


def test_svm_loss_is_c_minus_one_at_zero_weights(rng):
    x, y = rng.standard_normal((5, 3)), rng.integers(0, 7, size=5)
    assert np.isclose(svm_loss(np.zeros((3, 7)), np.zeros(7), x, y, 0.0)[0], 6.0)


@needs_digits
def test_knn_on_digits_beats_85_percent(digits):
    x_train, x_test, y_train, y_test = digits
    _, k = cross_validate_k(x_train, y_train, ks=(1, 3, 5), folds=3)
    assert accuracy(KNearestNeighbors(k).fit(x_train, y_train), x_test, y_test) > 0.85


@needs_digits
@pytest.mark.parametrize("model_class, lr", [(SoftmaxClassifier, 0.5), (LinearSVM, 0.05)])
def test_linear_classifiers_on_digits_lower_the_loss_and_beat_85_percent(digits, model_class, lr):
    x_train, x_test, y_train, y_test = digits
    model = model_class(n_features=64, n_classes=10, seed=0)
    loader = model.loader(x_train, y_train, batch_size=200)
    initial = model.loss(x_train, y_train, reg=1e-4)
    for _ in range(8):
        model.train_epoch(loader, lr=lr, reg=1e-4)
    assert model.loss(x_train, y_train, reg=1e-4) < 0.5 * initial
    assert accuracy(model, x_test, y_test) > 0.85


XOR_X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])


def test_perceptron_separates_and_but_never_xor():
    and_model = Perceptron(n_features=2, n_classes=2)
    and_y = np.array([0, 0, 0, 1])
    mistakes = [and_model.train_epoch(XOR_X, and_y) for _ in range(50)]
    assert mistakes[-1] == 0 and accuracy(and_model, XOR_X, and_y) == 1.0

    xor_model = Perceptron(n_features=2, n_classes=2)
    xor_y = np.array([0, 1, 1, 0])
    mistakes = [xor_model.train_epoch(XOR_X, xor_y) for _ in range(200)]
    # No line separates XOR: every epoch errs, and no weights reached fit all four points.
    assert min(mistakes) > 0 and accuracy(xor_model, XOR_X, xor_y) < 1.0


@needs_digits
def test_perceptron_on_digits_beats_85_percent(digits):
    x_train, x_test, y_train, y_test = digits
    model = Perceptron(n_features=64, n_classes=10)
    for _ in range(5):
        model.train_epoch(x_train, y_train)
    assert accuracy(model, x_test, y_test) > 0.85
