"""Data: in-memory datasets and a batch loader, batch augmentations, dataset readers, generated scenes."""
from fastconv.data.bundled import BUNDLED_DATASETS, load_digits, load_mnist_sample, train_test_split
from fastconv.data.dataset import ArrayDataset, DataLoader, Dataset
from fastconv.data.formats import load_cifar10, load_mnist
from fastconv.data.scenes import SCENE_CLASSES, DigitScenes, digit_scenes
from fastconv.data.shapes import SHAPE_CLASSES, make_shapes_scene
from fastconv.data.transforms import (ColorJitter, Compose, Normalize, PCAColorJitter, RandomCrop,
                                      RandomHorizontalFlip, RandomResizedCrop)

__all__ = [
    "Dataset", "ArrayDataset", "DataLoader",
    "Compose", "Normalize", "RandomHorizontalFlip", "RandomCrop", "RandomResizedCrop", "ColorJitter",
    "PCAColorJitter",
    "load_cifar10", "load_mnist", "load_digits", "load_mnist_sample", "BUNDLED_DATASETS",
    "train_test_split",
    "make_shapes_scene", "SHAPE_CLASSES",
    "digit_scenes", "DigitScenes", "SCENE_CLASSES",
]
