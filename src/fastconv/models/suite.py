"""The models of the suite by name, as `fastconv train MODEL` and the python/ scripts know them.

A new model adds one entry: its run function, its options dataclass (whose defaults are the
model's) and the datasets it can train on.
"""
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Tuple

from fastconv.models import classic_runs, deep_runs
from fastconv.models.datasets import DATASETS, IMAGE_DATASETS, Split
from fastconv.models.runlog import RunResult


@dataclass(frozen=True)
class SuiteModel:
    description: str
    run: Callable[[Split, Any], RunResult]
    options: type                              # a frozen dataclass; its defaults are the model's
    datasets: Tuple[str, ...] = tuple(DATASETS)
    defaults_for_data: Dict[str, Any] = field(default_factory=dict)  # dataset -> other defaults

    def default_options(self, dataset):
        """The model's options for `dataset` before the user changes any."""
        return self.defaults_for_data.get(dataset) or self.options()


SUITE = {
    "knn": SuiteModel("k-nearest neighbours, k chosen by 5-fold cross-validation",
                      classic_runs.run_knn, classic_runs.KnnOptions),
    "linear_svm": SuiteModel("linear classifier on the multiclass hinge loss, minibatch SGD",
                             classic_runs.run_linear_svm, classic_runs.LinearOptions),
    "softmax": SuiteModel("linear classifier on the cross-entropy loss, minibatch SGD",
                          classic_runs.run_softmax, classic_runs.SoftmaxOptions),
    "perceptron": SuiteModel("Rosenblatt's perceptron, online updates until an epoch is error-free",
                             classic_runs.run_perceptron, classic_runs.PerceptronOptions),
    "mlp": SuiteModel("two-layer perceptron (one hidden layer); solves XOR",
                      deep_runs.run_mlp, deep_runs.MLPOptions, defaults_for_data={"xor": deep_runs.XOR_MLP_OPTIONS}),
    "lenet5": SuiteModel("LeNet-5 (LeCun et al. 1998) on 32x32 images",
                         deep_runs.run_lenet5, deep_runs.LeNet5Options, tuple(IMAGE_DATASETS)),
    "alexnet": SuiteModel("AlexNet's design (Krizhevsky et al. 2012) shrunk for 32x32 images",
                          deep_runs.run_alexnet, deep_runs.AlexNetOptions, tuple(IMAGE_DATASETS)),
    "vgg": SuiteModel("VGG's 3x3 conv+BN+ReLU stages (Simonyan & Zisserman 2015), small",
                      deep_runs.run_vgg, deep_runs.VGGOptions, tuple(IMAGE_DATASETS)),
    "resnet20": SuiteModel("ResNet-20 (He et al. 2016, the CIFAR-10 network)",
                           deep_runs.run_resnet20, deep_runs.ResNet20Options, tuple(IMAGE_DATASETS)),
}
