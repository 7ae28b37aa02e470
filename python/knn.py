"""Trains the knn model on bundled real digits: python python/knn.py [--data digits|mnist] [--plot PATH]."""
import sys

from fastconv.cli import train

if __name__ == "__main__":
    train("knn", sys.argv[1:])
