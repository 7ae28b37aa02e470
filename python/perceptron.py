"""Trains the perceptron model on bundled real digits: python python/perceptron.py [--data digits|mnist] [--plot PATH]."""
import sys

from fastconv.cli import train

if __name__ == "__main__":
    train("perceptron", sys.argv[1:])
