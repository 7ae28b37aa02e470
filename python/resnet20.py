"""Trains ResNet-20 (He et al. 2016, CIFAR variant): python python/resnet20.py [--data cifar10 --data-dir PATH] [--shortcut A|B] [--checkpoint PATH --resume]."""
import sys

from fastconv.cli import train

if __name__ == "__main__":
    train("resnet20", sys.argv[1:])
