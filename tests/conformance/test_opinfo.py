"""PyTorch's OpInfo samples through fastconv.functional (see tests/conformance/opinfo.py).

For every OpInfo fastconv has a counterpart for (OPS), every sample input in float32 and float64
either matches torch (outputs, the gradient of every float tensor argument through
fastconv.autograd, tensor arguments updated in place) or is refused by fastconv with the
exception and message its entry in REFUSALS states, with the reason. A refusal entry that stops
refusing fails too: drop the entry when the feature lands. Every error input of those OpInfos must
be refused by fastconv as well, with the exception type and message ERRORS states.

`python -m tests.conformance.test_opinfo` prints, per op, how many samples pass and how many are
refused."""
import operator
import re
from dataclasses import dataclass
from typing import Callable, Tuple, Type

import numpy as np
import pytest

import fastconv
import fastconv.functional as F
from fastconv.ops import conv_algo
from tests.conformance.opinfo import (TOLERANCES, assert_same_arguments_after, assert_same_gradients,
                                      assert_same_outputs, backward_both, call, convert_sample, describe,
                                      error_inputs, op_infos, output_weights, sample_inputs)

pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"),  # torch's deprecation notes on upsample_*
              pytest.mark.filterwarnings("ignore::RuntimeWarning"),  # numpy on the NaN of reference inputs
              pytest.mark.usefixtures("op_database", "one_thread", "torch_one_thread", "fixed_conv_algorithms")]

INTERPOLATE_MODES = ("nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear", "area")
INTERPOLATE = tuple(("nn.functional.interpolate", mode) for mode in INTERPOLATE_MODES)
ANTIALIAS = ("_upsample_bilinear2d_aa", "")


def _antialiased_bilinear(input, output_size, align_corners, scale_factors=None, **per_axis_scales):
    """aten._upsample_bilinear2d_aa as torch.nn.functional.interpolate(antialias=True) states it;
    aten's per-axis scales (scales_h, scales_w) beside an output size are passed on as they are."""
    return F.interpolate(input, size=None if scale_factors else output_size, scale_factor=scale_factors,
                         mode="bilinear", align_corners=align_corners, **per_axis_scales, antialias=True)


def numpy_dtype(torch_dtype):
    """torch.float64 -> numpy.float64: fastconv's dtypes are numpy's."""
    return np.dtype(str(torch_dtype).removeprefix("torch."))


# (OpInfo name, variant): fastconv's op, called with the sample's input, args and kwargs.
OPS = {
    ("nn.functional.conv2d", ""): F.conv2d,
    ("nn.functional.conv_transpose2d", ""): F.conv_transpose2d,
    ("nn.functional.batch_norm", ""): F.batch_norm,
    ("nn.functional.batch_norm", "without_cudnn"): F.batch_norm,
    ("nn.functional.max_pool2d", ""): F.max_pool2d,
    ("nn.functional.avg_pool2d", ""): F.avg_pool2d,
    ("nn.functional.adaptive_avg_pool2d", ""): F.adaptive_avg_pool2d,
    **{key: F.interpolate for key in INTERPOLATE},
    ("nn.functional.upsample_nearest", ""): F.upsample_nearest,
    ("nn.functional.upsample_bilinear", ""): F.upsample_bilinear,
    ANTIALIAS: _antialiased_bilinear,
    ("nn.functional.grid_sample", ""): F.grid_sample,
    ("nn.functional.relu", ""): F.relu,
    ("nn.functional.leaky_relu", ""): F.leaky_relu,
    ("nn.functional.elu", ""): F.elu,
    ("sigmoid", ""): F.sigmoid,
    ("tanh", ""): F.tanh,
    ("softmax", ""): F.softmax,
    ("softmax", "with_dtype"): lambda input, dim, dtype: F.softmax(input, dim, dtype=numpy_dtype(dtype)),
    ("log_softmax", ""): F.log_softmax,
    ("log_softmax", "with_dtype"): lambda input, dim, dtype: F.log_softmax(input, dim, dtype=numpy_dtype(dtype)),
    ("nn.functional.linear", ""): F.linear,
    ("nn.functional.dropout", ""): F.dropout,
    ("nn.functional.cross_entropy", ""): F.cross_entropy,
    ("nn.functional.multi_margin_loss", ""): F.multi_margin_loss,
    ("nn.functional.mse_loss", ""): F.mse_loss,
    ("nn.functional.l1_loss", ""): F.l1_loss,
    ("nn.functional.smooth_l1_loss", ""): F.smooth_l1_loss,
    ("nn.functional.binary_cross_entropy_with_logits", ""): F.binary_cross_entropy_with_logits,
    ("matmul", ""): operator.matmul,  # Tensor @ Tensor (fastconv.autograd), 2-d float products on ops.matmul
    # the OpInfo's op takes the weight first: lambda weight, indices: F.embedding(indices, weight)
    ("nn.functional.embedding", ""): lambda weight, indices, **options: F.embedding(indices, weight, **options),
}
# Not in PyTorch's OpInfo database: affine_grid, adaptive_avg_pool2d's gradient-only variants,
# lstm_cell (a module test there) and roi_align/roi_pool (torchvision; see test_roi_cases.py).


@pytest.fixture
def op_database(torch):
    """Skips without torch, or without expecttest, which importing torch's OpInfo database needs
    (both are in the test extra)."""
    pytest.importorskip("expecttest")


@pytest.fixture
def torch_one_thread(torch):
    """Thousands of tiny ops: a thread team per op costs far more than the op when test workers
    already fill the cores (as the `one_thread` fixture does for fastconv)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def fixed_conv_algorithms():
    """conv2d's algo="auto" by its fixed rule instead of timing candidates per shape: the same
    algorithms on every run, and no timing runs (tests/conv checks every algorithm)."""
    previous = conv_algo.get_mode()
    conv_algo.set_mode("deterministic")
    yield
    conv_algo.set_mode(previous)


def _ndim(sample):
    return sample.input.ndim


def _given(*names):
    return lambda sample: any(name in sample.kwargs for name in names)


def _mode(mode):
    """Given by keyword, or as a positional string (grid_sample's reference inputs)."""
    return lambda sample: mode in (sample.kwargs.get("mode"), *(a for a in sample.args if isinstance(a, str)))


@dataclass
class Refusal:
    ops: Tuple[Tuple[str, str], ...]
    when: Callable  # sample -> bool
    raises: Type[Exception]
    match: str  # regex fastconv's message must match
    reason: str


def _unexpected(*names):
    return rf"got an unexpected keyword argument '({'|'.join(names)})'"


# The one table of the samples fastconv refuses. The first entry whose ops and `when` match a
# sample is the refusal it must get. An argument fastconv's function does not take is Python's
# TypeError naming it.
REFUSALS = [
    Refusal(INTERPOLATE + (("nn.functional.upsample_nearest", ""), ("nn.functional.upsample_bilinear", "")),
            lambda s: _ndim(s) != 4, ValueError, r"^input: expected a 4-d array \(N, C, H, W\)",
            "1-d and 3-d resampling (3-d and 5-d inputs, modes linear and trilinear): the kernels are 2-d"),
    Refusal((ANTIALIAS,), _given("scales_h"), TypeError, _unexpected("scales_h"),
            "aten's per-axis scales beside an output size: torch.nn.functional.interpolate has no such "
            "argument either"),
    Refusal((("nn.functional.grid_sample", ""),), lambda s: _ndim(s) == 5, ValueError,
            r"^input: expected a 4-d array \(N, C, H, W\)", "3-d (volumetric) sampling: the kernels are 2-d"),
    Refusal((("nn.functional.grid_sample", ""),), _mode("bicubic"), ValueError,
            r"^mode: expected 'bilinear' or 'nearest', got 'bicubic'", "bicubic grid sampling is not implemented"),
    Refusal((("nn.functional.batch_norm", ""), ("nn.functional.batch_norm", "without_cudnn")),
            lambda s: _ndim(s) == 1, ValueError, r"^input: expected 2D or more input \(got 1D input\)",
            "a 1-d input (PyTorch reads it as having no channels, so only an empty one runs): fastconv asks "
            "for (N, C, ...), as nn.BatchNorm1d does"),
]


def expected_refusal(key, sample):
    return next((r for r in REFUSALS if key in r.ops and r.when(sample)), None)


def _is_random_dropout(key, sample):
    p, training = sample.kwargs.get("p", 0.5), sample.kwargs.get("training", True)
    return key == ("nn.functional.dropout", "") and training and 0 < p < 1


def check_inverted_dropout(ours, converted, p):
    """Dropout's mask is random on both sides (different generators), so a random sample is checked
    against the definition instead: each output is 0 or input / (1 - p), and the gradient follows."""
    x, out = converted.ours[0].numpy(), ours.numpy()
    kept = out != 0
    np.testing.assert_allclose(out[kept], x[kept] / (1 - p), rtol=1e-6)
    weights = np.random.default_rng(0).standard_normal(out.shape).astype(out.dtype)
    (ours * weights).sum().backward()
    np.testing.assert_allclose(converted.ours[0].grad.numpy(), weights * kept / (1 - p), rtol=1e-6)


# Where float32 cannot tell the two apart at the usual tolerance: (op, dtype) -> tolerance, why.
LOOSER_TOLERANCES = {
    (("nn.functional.grid_sample", ""), "float32"): (
        dict(rtol=1e-3, atol=1e-2),
        "reference inputs of 345 x 456 planes with values near 40: torch and fastconv are both 9e-3 from "
        "the float64 result at their worst (float32 coordinates and weights), and differ by rounding"),
}


# Where torch's gradient at a NaN input depends on the tensor's size: there fastconv's must be NaN.
NAN_INPUT_GRADIENTS = {
    ("nn.functional.elu", ""): "torch's vectorised elu_backward gives NaN at a NaN input, its scalar loop "
                               "(tensors under 16 elements, vector tails) 1; fastconv gives NaN",
}


def nan_where_the_input_is_nan(gradients, x):
    """The input's gradient pair with torch's set to NaN where x is NaN, after asserting that
    ours is NaN there."""
    (mine, theirs), *others = gradients
    at_nan = np.array(np.isnan(x))  # an array for a 0-d x too
    assert np.isnan(mine.numpy()[at_nan]).all(), "the gradient at a NaN input is not NaN"
    theirs = theirs.clone()
    theirs.numpy()[at_nan] = np.nan  # a plain tensor (a gradient): its array is its memory
    return [(mine, theirs)] + others


def check_sample(key, sample, dtype):
    """Asserts that fastconv refuses `sample` as REFUSALS states, or matches torch on it."""
    refusal = expected_refusal(key, sample)
    converted = convert_sample(sample)
    if refusal is not None:
        try:
            call(OPS[key], converted.ours)
        except refusal.raises as error:
            assert re.search(refusal.match, str(error)), f"refused with {error!r}, expected /{refusal.match}/"
            return "refused"
        raise AssertionError(f"fastconv runs a sample REFUSALS lists ({refusal.reason}): drop the entry")
    fastconv.manual_seed(0)
    ours = call(OPS[key], converted.ours)
    if _is_random_dropout(key, sample):
        check_inverted_dropout(ours, converted, sample.kwargs.get("p", 0.5))
        return "passed"
    theirs = call(op_infos()[key].op, converted.theirs)
    tolerance = LOOSER_TOLERANCES.get((key, dtype), (TOLERANCES[dtype],))[0]
    assert_same_outputs(ours, theirs, tolerance)
    gradients = backward_both(ours, theirs, converted, output_weights(theirs))
    if key in NAN_INPUT_GRADIENTS:
        gradients = nan_where_the_input_is_nan(gradients, converted.ours[0].numpy())
    assert_same_gradients(gradients, tolerance)
    assert_same_arguments_after(converted, tolerance)
    return "passed"


# The OpInfos with reference inputs (larger ones, special values, non-contiguous and broadcast
# layouts; for most, the sample inputs too): those run as well.
REFERENCE_INPUTS = {("nn.functional.relu", ""), ("nn.functional.elu", ""), ("sigmoid", ""), ("tanh", ""),
                    ("nn.functional.multi_margin_loss", ""), ("nn.functional.upsample_bilinear", ""),
                    ("nn.functional.interpolate", "bilinear"), ("nn.functional.interpolate", "bicubic"),
                    ("nn.functional.grid_sample", "")}
# max_pool2d has 1,440 samples a dtype: split over a few tests so that pytest-xdist spreads them.
SHARDS = {("nn.functional.max_pool2d", ""): 4}
CASES = ([(key, "sample", shard) for key in OPS for shard in range(SHARDS.get(key, 1))]
         + [(key, "reference", 0) for key in OPS if key in REFERENCE_INPUTS])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("key, source, shard", CASES, ids=[f"{k[0]}[{k[1]}]-{source}-{s}" for k, source, s in CASES])
def test_opinfo_samples_match_torch_or_are_refused(key, source, shard, dtype):
    failures = []
    samples = sample_inputs(key, dtype, source)
    for index in range(shard, len(samples), SHARDS.get(key, 1)):
        try:
            check_sample(key, samples[index], dtype)
        except AssertionError as error:  # reported together: every failing sample of this op and dtype
            failures.append(f"sample {index}: {describe(samples[index])}\n  {error}")
    assert not failures, f"{len(failures)} samples differ:\n" + "\n".join(failures)


def test_every_refusal_entry_refuses_some_sample():
    """A table entry no sample reaches is stale (or its `when` is wrong)."""
    refusing = [(key, source) for key, source, _ in CASES if any(key in refusal.ops for refusal in REFUSALS)]
    used = {id(expected_refusal(key, sample)) for key, source in refusing for dtype in ("float32", "float64")
            for sample in sample_inputs(key, dtype, source)}
    assert [r.reason for r in REFUSALS if id(r) not in used] == []


def test_reference_inputs_are_run_wherever_an_opinfo_has_them():
    assert {key for key in OPS if op_infos()[key].reference_inputs_func is not None} == REFERENCE_INPUTS


# The error inputs: (OpInfo, torch's error regex) -> (fastconv's exception, a regex naming the
# argument). Type mapping: torch's RuntimeError (the one type of its C++ argument checks) is our
# ValueError for a wrong value or shape and TypeError for a wrong dtype or kind; torch's ValueError
# stays ValueError; an argument fastconv does not take is Python's TypeError naming it.
ERRORS = {
    ("nn.functional.conv2d", "should be the same"): (TypeError, r"^(input|bias): expected a float32 or float64"),
    ("nn.functional.conv2d", "non-positive stride is not supported"): (ValueError, r"^stride: must be >= 1"),
    ("nn.functional.conv2d", "negative padding is not supported"): (ValueError, r"^padding: must be >= 0"),
    ("nn.functional.conv2d", "dilation should be greater than zero"): (ValueError, r"^dilation: must be >= 1"),
    ("nn.functional.conv2d", "Expected 3-dimensional input for 3-dimensional weight"):
        (ValueError, r"^weight: expected a 4-d array"),
    ("nn.functional.conv2d", "expected weight to be at least 3 at dimension 0"):
        (ValueError, r"^input: 2 channels are not divisible by groups=3"),
    ("nn.functional.conv2d", "non-positive groups is not supported"): (ValueError, r"^groups: must be >= 1"),
    ("nn.functional.max_pool2d", "pad must be non-negative"): (ValueError, r"^padding: must be >= 0"),
    ("nn.functional.max_pool2d", "pad should be at most half of effective kernel size"):
        (ValueError, r"^padding: .* at most half the kernel size"),
    ("nn.functional.max_pool2d", r"Expected 3D or 4D \(batch mode\) tensor with optional 0 dim batch size for input"):
        (ValueError, r"^input: output (height|width) 0 is too small \(input (height|width) 0"),
    ("nn.functional.max_pool2d", "Output size is too small"): (ValueError, r"^input: output height 0 is too small"),
    ("nn.functional.avg_pool2d", "pad must be non-negative"): (ValueError, r"^padding: must be >= 0"),
    ("nn.functional.avg_pool2d", "pad should be at most half of effective kernel size"):
        (ValueError, r"^padding: .* at most half the kernel size"),
    ("nn.functional.avg_pool2d", "divisor must be not zero"): (ValueError, r"^divisor_override: must be non-zero"),
    ("nn.functional.adaptive_avg_pool2d", "Input dimension should be at least 3"):
        (ValueError, r"^input: expected a 4-d array"),
    ("nn.functional.adaptive_avg_pool2d", "output_size must be 2"):
        (TypeError, r"^output_size: expected an int or a pair of ints"),
    ("nn.functional.adaptive_avg_pool2d", "elements of output_size must be greater than or equal to 0"):
        (ValueError, r"^output_size: must be >= 1"),
    ("nn.functional.multi_margin_loss", "abc is not a valid value for reduction"):
        (ValueError, r"^reduction: expected 'mean', 'sum' or 'none', got 'abc'"),
    ("nn.functional.multi_margin_loss", r"Expected non-empty vector or matrix with optional 0-dim batch size, but "
                                        r"got: \[5, 0\]"): (ValueError, r"input of shape \(5, 0\) has no classes"),
    ("nn.functional.multi_margin_loss", r"Expected non-empty vector or matrix with optional 0-dim batch size, but "
                                        r"got: \[0\]"):
        (ValueError, r"input of shape \(0,\) and target of shape \(5,\) do not match"),
    ("nn.functional.multi_margin_loss", r"target tensor should be 1-D with size equal to.*Expected target size "
                                        r"\[5\].*but got \[5, 4\]"):
        (ValueError, r"input of shape \(5, 4\) and target of shape \(5, 4\) do not match"),
    ("nn.functional.multi_margin_loss", "expected scalar type Long but found Float"):
        (TypeError, r"target must hold class indices, got dtype float32"),
    ("nn.functional.multi_margin_loss", "weight must be one-dimensional"):
        (ValueError, r"weight must be one-dimensional, got shape \((5, 4)?\)"),
    ("nn.functional.multi_margin_loss", r"inconsistent weight size, expected 4 but got \[5\]"):
        (ValueError, r"weight of shape \(5,\) does not match the input's 4 classes"),
    ("nn.functional.multi_margin_loss", "only p == 1 and p == 2 supported"): (ValueError, r"p must be 1 or 2, got 3"),
    ("nn.functional.l1_loss", "abc is not a valid value for reduction"): (ValueError, r"^reduction: expected"),
    ("nn.functional.l1_loss", r"(Attempting to broadcast a dimension of length|The size of tensor a \(4\) must match "
                              r"the size of tensor b \(5\) at non-singleton dimension 1)"):
        (ValueError, r"input of shape \(5, 4\) and target of shape \(5,\) differ"),
    ("nn.functional.embedding", "'weight' must be 2-D"): (ValueError, r"weight must be 2-d"),
}


ERROR_OPS = sorted({key for key in OPS if key[0] in {op for op, _ in ERRORS}})


@pytest.mark.parametrize("key", ERROR_OPS, ids=[name for name, _ in ERROR_OPS])
def test_opinfo_error_inputs_are_refused_naming_the_argument(key):
    cases = error_inputs(key)
    assert cases, "the OpInfo has no error inputs"
    for case in cases:
        sample = case.sample_input
        our_type, naming = ERRORS[key[0], case.error_regex]
        converted = convert_sample(sample)
        with pytest.raises(case.error_type, match=case.error_regex):  # the case still says what torch says
            call(op_infos()[key].op, converted.theirs)
        with pytest.raises(our_type, match=naming):
            call(OPS[key], converted.ours)


def tally():
    """{(name, variant, source): (passed, refused)} over both dtypes."""
    counts = {}
    for key, source in dict.fromkeys((key, source) for key, source, _ in CASES):
        outcomes = [check_sample(key, sample, dtype) for dtype in ("float32", "float64")
                    for sample in sample_inputs(key, dtype, source)]
        counts[key + (source,)] = (outcomes.count("passed"), outcomes.count("refused"))
    return counts


if __name__ == "__main__":
    import warnings

    import torch
    warnings.simplefilter("ignore")
    fastconv.set_num_threads(1)
    torch.set_num_threads(1)
    conv_algo.set_mode("deterministic")
    totals = [0, 0]
    for (name, variant, source), (passed, refused) in tally().items():
        label = f"{name}{f' [{variant}]' if variant else ''} ({source})"
        print(f"{label:60s} {passed:5d} passed {refused:4d} refused")
        totals[0], totals[1] = totals[0] + passed, totals[1] + refused
    print(f"{'all':60s} {totals[0]:5d} passed {totals[1]:4d} refused")
