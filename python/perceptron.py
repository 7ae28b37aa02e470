"""Rosenblatt's perceptron (1958) on real handwritten digits, and on XOR, which it cannot learn.

One weight vector per class; a sample goes to the class of the highest score x.W_c. Training is
online: on each mistake the true class's weights move towards the sample and the predicted
class's away from it (fastconv.models.classic.Perceptron). When the classes can be separated
by hyperplanes the rule stops making mistakes in a finite number of epochs (Novikoff 1962);
on XOR no line separates the classes, and the mistakes never stop.

    python python/perceptron.py                 # 4,000 MNIST digits: about 85% on the test digits
    python python/perceptron.py --data xor      # stuck near 50%: XOR is not linearly separable
"""
import sys

from fastconv import cli
from fastconv.models import classic
from fastconv.models.classic_runs import PerceptronOptions, n_features, train_perceptron
from fastconv.models.datasets import DATASETS

DEFAULTS = PerceptronOptions()


def main(argv=None):
    args, options, split = cli.start_script("perceptron.py", __doc__, DATASETS, DEFAULTS, argv)
    print(split.summary())

    model = classic.Perceptron(n_features=n_features(split), n_classes=split.num_classes, seed=options.seed)
    result = train_perceptron(model, split, options)
    mistakes = result.history["mistakes per epoch"]
    print(f"mistakes per epoch: {mistakes[0]} in the first, {mistakes[-1]} in the last "
          f"({'separated' if mistakes[-1] == 0 else 'not separated'} after {len(mistakes)} epochs)")
    cli.report(result, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
