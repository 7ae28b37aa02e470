"""The pre-deep-learning classifiers of the course, vectorised numpy with hand-written gradients.

Images are flattened to rows; the large products go through fastconv's own GEMM (ops.matmul).
"""
import numpy as np

from fastconv import ops
from fastconv.data import ArrayDataset, DataLoader


def flatten(x):
    """(N, ...) images -> (N, D) float64 rows."""
    return np.asarray(x, dtype=np.float64).reshape(len(x), -1)


def pairwise_sq_distances(a, b):
    """Squared L2 distances (M, N) between rows of a (M, D) and b (N, D) with no Python loop.

    Uses ||a||^2 + ||b||^2 - 2 a b^T; cancellation can leave tiny negatives, clamped to 0.
    """
    cross = ops.matmul(a, b.T)
    d = (a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2 * cross
    return np.maximum(d, 0, out=d)


def majority_vote(neighbour_labels, n_classes):
    """Most frequent label per row of (M, k); ties go to the smallest label (argmax takes the first)."""
    rows = np.repeat(np.arange(len(neighbour_labels)), neighbour_labels.shape[1])
    counts = np.zeros((len(neighbour_labels), n_classes), dtype=np.int64)
    np.add.at(counts, (rows, neighbour_labels.ravel()), 1)
    return counts.argmax(axis=1)


class KNearestNeighbors:
    def __init__(self, k=1):
        self.k = k

    def fit(self, x, y):
        self.x_train, self.y_train = flatten(x), np.asarray(y, dtype=np.int64)
        self.n_classes = int(self.y_train.max()) + 1
        return self

    def neighbour_labels(self, x, k_max):
        """Labels of the k_max nearest training rows, nearest first; a stable sort breaks distance ties by index."""
        order = np.argsort(pairwise_sq_distances(flatten(x), self.x_train), axis=1, kind="stable")
        return self.y_train[order[:, :k_max]]

    def predict(self, x):
        return majority_vote(self.neighbour_labels(x, self.k), self.n_classes)


def cross_validate_k(x, y, ks, folds=5, seed=0, progress=None):
    """Mean accuracy of each k over `folds` seeded folds, and the best k (the smallest among equals).

    Each fold sorts its distances once and scores every k from that ordering.
    progress(): called once per fold, e.g. a progress bar's update.
    """
    x, y = flatten(x), np.asarray(y, dtype=np.int64)
    fold_of_sample = np.random.default_rng(seed).permutation(len(x)) % folds
    accuracy = np.zeros((folds, len(ks)))
    for fold in range(folds):
        held_out = fold_of_sample == fold
        model = KNearestNeighbors().fit(x[~held_out], y[~held_out])
        neighbours = model.neighbour_labels(x[held_out], max(ks))
        for j, k in enumerate(ks):
            accuracy[fold, j] = np.mean(majority_vote(neighbours[:, :k], model.n_classes) == y[held_out])
        if progress is not None:
            progress()
    mean_accuracy = accuracy.mean(axis=0)
    return dict(zip(ks, mean_accuracy)), ks[int(np.argmax(mean_accuracy))]


def svm_loss(W, b, x, y, reg):
    """Multiclass hinge loss (Weston-Watkins, margin 1) + reg * ||W||^2, and its gradient.

    x (N, D), y (N,), W (D, C), b (C,). Returns loss, dW, db.
    """
    n = len(x)
    scores = ops.matmul(x, W) + b
    correct = scores[np.arange(n), y][:, None]
    margins = np.maximum(0, scores - correct + 1)
    margins[np.arange(n), y] = 0
    loss = margins.sum() / n + reg * np.sum(W * W)
    # Each violated margin pushes its class score up and the correct class score down.
    dscores = (margins > 0).astype(x.dtype)
    dscores[np.arange(n), y] = -dscores.sum(axis=1)
    dscores /= n
    return loss, ops.matmul(x.T, dscores) + 2 * reg * W, dscores.sum(axis=0)


def softmax_loss(W, b, x, y, reg):
    """Mean cross-entropy of softmax(x W + b) + reg * ||W||^2, and its gradient (loss, dW, db)."""
    n = len(x)
    scores = ops.matmul(x, W) + b
    shifted = scores - scores.max(axis=1, keepdims=True)  # exp cannot overflow after the shift
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_probs[np.arange(n), y].mean() + reg * np.sum(W * W)
    dscores = np.exp(log_probs)
    dscores[np.arange(n), y] -= 1
    dscores /= n
    return loss, ops.matmul(x.T, dscores) + 2 * reg * W, dscores.sum(axis=0)


class LinearClassifier:
    """Scores x W + b trained by minibatch SGD; subclasses name the loss:
    a static `loss_fn(W, b, x, y, reg) -> (loss, dW, db)`."""

    def __init__(self, n_features, n_classes, seed=0):
        self.rng = np.random.default_rng(seed)
        self.W = 1e-3 * self.rng.standard_normal((n_features, n_classes))
        self.b = np.zeros(n_classes)

    def loss(self, x, y, reg):
        return self.loss_fn(self.W, self.b, flatten(x), y, reg)[0]

    def train_epoch(self, loader, lr, reg):
        """One pass of SGD over loader's batches; returns the mean minibatch loss."""
        losses = []
        for x, y in loader:
            loss, dW, db = self.loss_fn(self.W, self.b, flatten(x), y, reg)
            self.W -= lr * dW
            self.b -= lr * db
            losses.append(loss)
        return float(np.mean(losses))

    def loader(self, x, y, batch_size):
        return DataLoader(ArrayDataset(x, y), batch_size, shuffle=True, seed=self.rng.integers(2**32))

    def predict(self, x):
        return np.argmax(ops.matmul(flatten(x), self.W) + self.b, axis=1)


class LinearSVM(LinearClassifier):
    loss_fn = staticmethod(svm_loss)


class SoftmaxClassifier(LinearClassifier):
    loss_fn = staticmethod(softmax_loss)


class Perceptron:
    """Rosenblatt's rule, multiclass: on a mistake, add x to the true class's weights and subtract
    it from the predicted one's (with two classes this is the binary rule w += y x).

    Updates are online, one sample at a time, as the rule is defined; an epoch without a mistake
    means the training set is separated and the weights stop changing.
    """

    def __init__(self, n_features, n_classes, seed=0):
        self.rng = np.random.default_rng(seed)
        self.W = np.zeros((n_features + 1, n_classes))  # last row: bias, fed by a constant 1 input

    @staticmethod
    def _with_bias(x):
        x = flatten(x)
        return np.hstack([x, np.ones((len(x), 1))])

    def train_epoch(self, x, y):
        """One shuffled pass; returns the number of mistakes made during it."""
        x, mistakes = self._with_bias(x), 0
        for i in self.rng.permutation(len(x)):
            predicted = np.argmax(x[i] @ self.W)
            if predicted != y[i]:
                self.W[:, y[i]] += x[i]
                self.W[:, predicted] -= x[i]
                mistakes += 1
        return mistakes

    def predict(self, x):
        return np.argmax(ops.matmul(self._with_bias(x), self.W), axis=1)


def accuracy(model, x, y):
    return float(np.mean(model.predict(x) == y))
