"""Trains the 2-layer MLP: python python/mlp.py [--data mnist|digits|cifar10|xor] [--epochs N] [--plot PATH].

On --data xor it reaches 100% where the perceptron (python/perceptron.py --data xor) cannot pass 75%."""
import sys

from fastconv.cli import train

if __name__ == "__main__":
    train("mlp", sys.argv[1:])
