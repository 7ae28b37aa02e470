"""k-nearest neighbours on real handwritten digits.

A test image takes the majority label of the k training images nearest to it (squared L2
distance over the pixels, computed for all pairs at once as ||a||^2 + ||b||^2 - 2 a.b with
fastconv's GEMM). Nothing is learned; the one choice, k, is made by cross-validation: the
training set is cut into folds, each fold is classified by the others, and the k with the best
mean accuracy wins. Only then is the test set looked at, once.

    python python/knn.py                        # 4,000 MNIST digits: k=1, about 93% on the test digits
    python python/knn.py --data digits --plot knn.png
    python python/knn.py --k 1 2 3 4 5 --folds 10
"""
import sys

from fastconv import cli
from fastconv.models.classic_runs import KnnOptions, run_knn
from fastconv.models.datasets import DATASETS

DEFAULTS = KnnOptions()


def main(argv=None):
    args, options, split = cli.start_script("knn.py", __doc__, DATASETS, DEFAULTS, argv)
    print(split.summary())

    result = run_knn(split, options)
    print(f"{options.folds}-fold cross-validated accuracy on the training samples:")
    accuracies = result.history["cv accuracy by k"]
    chosen = options.candidates[accuracies.index(max(accuracies))]  # the smallest k among the best
    for k, accuracy in zip(options.candidates, accuracies):
        print(f"  k = {k:3}: {accuracy:.4f}{'  <- chosen' if k == chosen else ''}")
    cli.report(result, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
