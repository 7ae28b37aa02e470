"""A linear support vector machine on real handwritten digits.

Each class c gets a score s_c = x.W_c + b_c, linear in the pixels x. The multiclass hinge loss
(Weston & Watkins 1999) asks the true class's score to beat every other by a margin of 1:
    L = mean over samples of sum over c != y of max(0, s_c - s_y + 1)  +  reg * ||W||^2
Its gradient is written by hand (fastconv.models.classic.svm_loss) and followed by minibatch
SGD. A linear model draws one template per class, so it tops out near 90% on MNIST.

    python python/linear_svm.py                 # 4,000 MNIST digits, 20 epochs: about 89% on the test digits
    python python/linear_svm.py --data digits --lr 0.05 --plot svm.png
"""
import sys

from fastconv import cli
from fastconv.models import classic
from fastconv.models.classic_runs import LinearOptions, n_features, train_linear
from fastconv.models.datasets import DATASETS

DEFAULTS = LinearOptions()


def main(argv=None):
    args, options, split = cli.start_script("linear_svm.py", __doc__, DATASETS, DEFAULTS, argv)
    print(split.summary())

    model = classic.LinearSVM(n_features=n_features(split), n_classes=split.num_classes, seed=options.seed)
    # W starts near zero, so every score is about equal and each of the C - 1 wrong classes
    # violates its margin by about 1: the first loss is close to C - 1.
    print(f"weights W {model.W.shape}, bias b {model.b.shape}; initial loss "
          f"{model.loss(split.x_train, split.y_train, options.reg):.3f} (C - 1 = {split.num_classes - 1})")
    result = train_linear("linear_svm", model, split, options)
    print(f"final loss {result.history['loss'][-1]:.3f}")
    cli.report(result, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
