"""Trains LeNet-5 on 32x32 digits (MNIST padded 28 -> 32): python python/lenet5.py [--data mnist|digits|cifar10] [--epochs N] [--plot PATH]."""
import sys

from fastconv.cli import train

if __name__ == "__main__":
    train("lenet5", sys.argv[1:])
