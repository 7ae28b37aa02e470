"""PyTorch's own op samples as conformance cases: the OpInfo database of PyTorch's test suite
(torch.testing._internal.common_methods_invocations.op_db, which needs the `expecttest` package)
gives, per op, sample inputs (shapes, arguments, edge cases PyTorch tests itself with) and error
inputs (arguments PyTorch refuses). Each sample runs through fastconv's op and through torch's;
outputs, every input's gradient and every tensor argument afterwards (batch norm's running
statistics) must agree.

torch is imported by the functions here only, which the tests call through the `torch` fixture."""
import functools
from dataclasses import dataclass

import numpy as np

from fastconv import Tensor

# Loose enough for float32's summation-order differences (Winograd/FFT convolutions over values up
# to 9 in magnitude, as OpInfo's make_tensor draws them), tight enough to catch a wrong pixel.
TOLERANCES = {"float32": dict(rtol=1e-4, atol=1e-4), "float64": dict(rtol=1e-7, atol=1e-9)}


@functools.lru_cache(maxsize=None)
def op_infos():
    """{(name, variant_test_name): OpInfo} of PyTorch's op database."""
    from torch.testing._internal.common_methods_invocations import op_db
    return {(op.name, op.variant_test_name): op for op in op_db}


@functools.lru_cache(maxsize=None)
def sample_inputs(key, dtype, source="sample"):
    """The OpInfo's sample inputs (source "sample") or its reference inputs (source "reference":
    the sample inputs and larger or harder ones, special values, non-contiguous and broadcast
    layouts) for CPU and `dtype` ("float32"/"float64"), drawn with a fixed seed; float tensors
    require gradients where the op supports autograd. Drawn once per process (max_pool2d's
    1,440 take a second); the checks never change them (convert_sample copies every float
    tensor, for both sides)."""
    import torch
    op = op_infos()[key]
    torch.manual_seed(0)
    draw = op.sample_inputs if source == "sample" else op.reference_inputs
    return list(draw("cpu", getattr(torch, dtype), requires_grad=op.supports_autograd))


def error_inputs(key):
    op = op_infos()[key]
    return [] if op.error_inputs_func is None else list(op.error_inputs("cpu"))


def describe(sample):
    """A short text of a sample for failure messages: shapes and dtypes instead of values."""
    import torch

    def short(value):
        if isinstance(value, torch.Tensor):
            return f"tensor{tuple(value.shape)}:{str(value.dtype).replace('torch.', '')}"
        if isinstance(value, (list, tuple)) and not isinstance(value, torch.Size):
            return type(value)(short(v) for v in value)
        return value
    return f"input={short(sample.input)} args={short(tuple(sample.args))} kwargs={short(sample.kwargs)}"


@dataclass
class Converted:
    """A sample's arguments twice: as fastconv takes them (ours) and as fresh torch tensors
    (theirs), and the pairs (torch tensor, our Tensor) of every float tensor among them."""
    ours: tuple  # (input, args, kwargs)
    theirs: tuple
    tensor_pairs: list


def convert_sample(sample):
    """Float tensors become, on our side, Tensors holding a copy (requiring gradients as in the
    sample) and, on torch's, fresh leaf copies: some samples are views of a leaf, through which
    torch.autograd.grad finds no gradient. Integer and boolean tensors (indices, targets) become
    numpy arrays on our side; torch.Size becomes a tuple."""
    import torch
    pairs = []

    def convert(value):
        if isinstance(value, torch.Tensor):
            if not value.dtype.is_floating_point:
                return value.numpy().copy(), value
            theirs = value.detach().clone().requires_grad_(value.requires_grad)
            ours = Tensor(value.detach().numpy().copy(), requires_grad=value.requires_grad)
            pairs.append((theirs, ours))
            return ours, theirs
        if isinstance(value, (list, tuple)) and not isinstance(value, torch.Size):
            converted = [convert(v) for v in value]
            return type(value)(o for o, _ in converted), type(value)(t for _, t in converted)
        return (tuple(value) if isinstance(value, torch.Size) else value), value

    input, args = convert(sample.input), convert(tuple(sample.args))
    kwargs = {name: convert(value) for name, value in sample.kwargs.items()}
    return Converted((input[0], args[0], {k: v[0] for k, v in kwargs.items()}),
                     (input[1], args[1], {k: v[1] for k, v in kwargs.items()}), pairs)


def call(op, arguments):
    input, args, kwargs = arguments
    return op(input, *args, **kwargs)


def as_tuple(result):
    return result if isinstance(result, tuple) else (result,)


def assert_same_outputs(ours, theirs, tolerance):
    """Outputs agree in shape, dtype and value (integer outputs such as pooling indices exactly)."""
    ours, theirs = as_tuple(ours), as_tuple(theirs)
    assert len(ours) == len(theirs), f"{len(ours)} outputs, torch gives {len(theirs)}"
    for index, (mine, expected) in enumerate(zip(ours, theirs)):
        mine = np.asarray(mine.numpy() if isinstance(mine, Tensor) else mine)
        expected = expected.detach().numpy()
        assert mine.shape == expected.shape, f"output {index}: shape {mine.shape}, torch {expected.shape}"
        assert mine.dtype == expected.dtype, f"output {index}: dtype {mine.dtype}, torch {expected.dtype}"
        exact = dict(rtol=0, atol=0)
        np.testing.assert_allclose(mine, expected, **(tolerance if expected.dtype.kind == "f" else exact),
                                   err_msg=f"output {index}")


def output_weights(theirs, seed=0):
    """Random weights for each float output: the gradients compared are those of sum(w * out)."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(t.shape).astype(t.detach().numpy().dtype) if t.dtype.is_floating_point else None
            for t in as_tuple(theirs)]


def backward_both(ours, theirs, converted, weights):
    """Runs the backward of sum(w * out) on both sides: [(our gradient or None, torch's or None)]
    for each float tensor argument that requires a gradient."""
    import torch
    pairs = [(t, mine) for t, mine in converted.tensor_pairs if t.requires_grad]
    outputs = [(mine, t, w) for mine, t, w in zip(as_tuple(ours), as_tuple(theirs), weights)
               if w is not None and t.requires_grad]
    if not pairs or not outputs:
        return []
    loss = sum((mine * w).sum() for mine, _, w in outputs)
    loss.backward()
    expected = torch.autograd.grad([t for _, t, _ in outputs], [t for t, _ in pairs],
                                   [torch.from_numpy(w) for _, _, w in outputs], allow_unused=True)
    return [(mine.grad, grad) for (_, mine), grad in zip(pairs, expected)]


def assert_same_gradients(gradients, tolerance):
    for index, (mine, expected) in enumerate(gradients):
        expected = None if expected is None else expected.numpy()
        if expected is None or mine is None:
            # no gradient on one side is zero on the other (torch's allow_unused, our leaves untouched)
            other = expected if mine is None else mine.numpy()
            assert other is None or not np.any(other), f"gradient of tensor argument {index}: one side has none"
            continue
        np.testing.assert_allclose(mine.numpy(), expected, **tolerance, err_msg=f"gradient of tensor argument {index}")


def assert_same_arguments_after(converted, tolerance):
    """Tensor arguments the ops update in place (running statistics) agree afterwards."""
    for index, (theirs, mine) in enumerate(converted.tensor_pairs):
        np.testing.assert_allclose(mine.numpy(), theirs.detach().numpy(), **tolerance,
                                   err_msg=f"tensor argument {index} after the call")
