"""Trains the linear_svm model on bundled real digits: python python/linear_svm.py [--data digits|mnist] [--plot PATH]."""
import sys

from fastconv.cli import train

if __name__ == "__main__":
    train("linear_svm", sys.argv[1:])
