"""Trains the softmax model on bundled real digits: python python/softmax_classifier.py [--data digits|mnist] [--plot PATH]."""
import sys

from fastconv.cli import train

if __name__ == "__main__":
    train("softmax", sys.argv[1:])
