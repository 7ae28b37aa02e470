"""The model suite, plain classes and functions with typed options:

classic.py        kNN, linear SVM, softmax classifier, perceptron (numpy, hand-written gradients)
deep.py           MLP, LeNet-5, AlexNet- and VGG-style nets, ResNet-20 (fastconv.nn modules)
segmentation.py   FCN, attention to scale, HRNet, mean IoU (per-pixel classes of digit scenes)
datasets.py       the data a model trains on, as a seeded train/test Split
trainer.py        the training loop every network shares (optimiser, schedule, checkpoints)
classic_runs.py   one run per classic model: options dataclass in, RunResult out
deep_runs.py      one run per network, and the steps it is made of
segmentation_runs.py   the segmentation networks' training on digit scenes, options, pictures
runlog.py         RunResult (summary line, plot), the progress bar
suite.py          the models by name, for `fastconv train` and python/
stn.py            spatial transformer networks and the distorted MNIST they are shown on
visualization.py  saliency maps, class visualisation, fooling images, neural style transfer
"""
