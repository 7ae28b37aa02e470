"""Trains the small AlexNet-style net: python python/alexnet.py [--data mnist|digits|cifar10 --data-dir PATH] [--width N] [--plot PATH]."""
import sys

from fastconv.cli import train

if __name__ == "__main__":
    train("alexnet", sys.argv[1:])
