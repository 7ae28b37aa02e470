"""A softmax classifier (multinomial logistic regression) on real handwritten digits.

The same linear scores as the SVM, s = x.W + b, read as log-probabilities: p(c | x) =
exp(s_c) / sum_j exp(s_j). Training minimises the cross-entropy, the mean of -log p(y | x),
plus reg * ||W||^2, by minibatch SGD on the hand-written gradient dL/ds = p - onehot(y)
(fastconv.models.classic.softmax_loss). With W near zero every class has probability 1/C, so
the first loss is about log(10) = 2.30 on ten classes: a check that the loss is right.

    python python/softmax_classifier.py         # 4,000 MNIST digits, 20 epochs: about 90% on the test digits
    python python/softmax_classifier.py --data digits --plot softmax.png
"""
import sys

from fastconv import cli
from fastconv.models import classic
from fastconv.models.classic_runs import SoftmaxOptions, n_features, train_linear
from fastconv.models.datasets import DATASETS

DEFAULTS = SoftmaxOptions()


def main(argv=None):
    args, options, split = cli.start_script("softmax_classifier.py", __doc__, DATASETS, DEFAULTS, argv)
    print(split.summary())

    model = classic.SoftmaxClassifier(n_features=n_features(split), n_classes=split.num_classes, seed=options.seed)
    print(f"initial loss {model.loss(split.x_train, split.y_train, options.reg):.3f} "
          f"(log of {split.num_classes} classes: the loss of a uniform guess)")
    result = train_linear("softmax", model, split, options)
    print(f"final loss {result.history['loss'][-1]:.3f}")
    cli.report(result, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
