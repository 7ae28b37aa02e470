"""The table-driven checks of fastconv.functional that each family's tests share.

A family's CASES maps a name to (ours, torch's or None, input shapes): gradcheck in float64
checks every case's backward, and PyTorch, where it has the op, the forward and every gradient.
"""
import numpy as np
import pytest

from fastconv import Tensor, gradcheck
from tests.oracle import compare_with_torch


# torch is imported only when a torch case runs: without torch the `torch` fixture skips those
# and the gradchecks still run.
def torch_functional(name):
    return lambda *args, **kwargs: getattr(__import__("torch").nn.functional, name)(*args, **kwargs)


def torch_tensor(array):
    return __import__("torch").tensor(array)


def random_inputs(rng, shapes):
    return [rng.standard_normal(shape) for shape in shapes]


def gradcheck_test(cases):
    """test_gradcheck over every case, for a test module to bind at its top level."""
    @pytest.mark.parametrize("name", cases)
    @pytest.mark.usefixtures("one_thread")
    def test_gradcheck(name, rng):
        ours, _, shapes = cases[name]
        assert gradcheck(ours, [Tensor(a, requires_grad=True) for a in random_inputs(rng, shapes)])
    return test_gradcheck


def torch_test(cases):
    """test_matches_torch over the cases that name torch's op."""
    @pytest.mark.parametrize("name", [n for n, case in cases.items() if case[1] is not None])
    def test_matches_torch(name, rng, torch):
        ours, theirs, shapes = cases[name]
        compare_with_torch(torch, ours, theirs, random_inputs(rng, shapes))
    return test_matches_torch


def algorithm_choices_made_by(run):
    """The per-shape algorithm choices (fastconv.ops.conv_algo) that run() adds, run as many
    times as auto's choosing takes: none when every convolution it runs, forward and backward,
    has its algorithm pinned."""
    from fastconv.ops import conv_algo
    before = set(conv_algo.chosen())
    run_until_chosen(run)
    return set(conv_algo.chosen()) - before


def run_until_chosen(run, limit=500):
    """run() again until a call runs no algorithm on trial (algo="auto" chooses over a shape's
    first calls); the last call's result."""
    from fastconv.ops import conv_algo
    result, trial_calls = conv_algo.run_until_chosen(run, limit)
    if trial_calls == limit:
        raise AssertionError(f"auto still choosing after {limit} calls")
    return result


def pinned_algorithm_test(op, shapes):
    """test_a_pinned_algorithm_matches_auto for a convolution op(x, w, b, padding=1, algo=...):
    pinned to 'im2col' or 'winograd' it gives auto's output and every gradient."""
    def forward_and_gradients(algo):
        x, w, b = (Tensor(a, requires_grad=True) for a in random_inputs(np.random.default_rng(0), shapes))
        y = op(x, w, b, padding=1, algo=algo)
        (y * y).sum().backward()
        return [y.numpy(), x.grad.numpy(), w.grad.numpy(), b.grad.numpy()]

    @pytest.mark.parametrize("algo", ["im2col", "winograd"])
    def test_a_pinned_algorithm_matches_auto(algo):
        pinned, auto = forward_and_gradients(algo), forward_and_gradients("auto")
        for name, ours, expected in zip(["output", "input grad", "weight grad", "bias grad"], pinned, auto):
            np.testing.assert_allclose(ours, expected, rtol=1e-10, atol=1e-10, err_msg=name)
    return test_a_pinned_algorithm_matches_auto
