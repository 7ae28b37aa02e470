"""Trains the small VGG-style net (3x3 conv+BN+ReLU stacks): python python/vgg.py [--data mnist|digits|cifar10 --data-dir PATH] [--width N]."""
import sys

from fastconv.cli import train

if __name__ == "__main__":
    train("vgg", sys.argv[1:])
