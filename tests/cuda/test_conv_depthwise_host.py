"""conv2d's "depthwise" CUDA algorithm (conv.cu's depthwise kernels, bodies in
csrc/conv/cuda/depthwise_body.h) compiled for the host and run through its wrapper
(fastconv/cuda/conv.py) over the whole grid (tests/cuda/host_kernels.py: each kernel's
grid-stride loop visits every element), in all three directions, against fastconv._C's CPU
depthwise kernel (csrc/conv/cpu/depthwise.cpp) and torch's conv2d."""
import numpy as np
import pytest

from fastconv import _C
from fastconv.cuda import conv as cuda_conv
from tests.cuda import host_kernels

# The CPU kernel's AVX2 row kernel (stride 1 along the width) adds the taps in its own order and
# with fused multiply-adds; the weight gradient's partial sums are split differently.
TOLERANCE = {np.float32: dict(rtol=2e-5, atol=2e-5), np.float64: dict(rtol=1e-13, atol=1e-13)}

# (input, weight, (stride, pad_begin, pad_end, dilation, groups)): multiplier 1 at stride 1;
# multiplier 2 at stride 2 on odd sizes; dilation with asymmetric padding and a 3x2 kernel; a
# negative end padding (a transposed convolution's output_padding), multiplier 2; a strided 5x5
# on one image; a single input channel (groups 1, three outputs); 1x1.
CASES = [
    ((2, 3, 7, 6), (3, 1, 3, 3), ((1, 1), (1, 1), (1, 1), (1, 1), 3)),
    ((2, 4, 9, 7), (8, 1, 3, 3), ((2, 2), (1, 1), (1, 1), (1, 1), 4)),
    ((2, 2, 8, 9), (4, 1, 3, 2), ((1, 2), (2, 1), (0, 2), (2, 3), 2)),
    ((1, 3, 7, 7), (6, 1, 4, 3), ((2, 2), (1, 2), (-1, 0), (1, 1), 3)),
    ((1, 5, 11, 10), (5, 1, 5, 5), ((2, 1), (2, 2), (2, 2), (1, 1), 5)),
    ((2, 1, 6, 5), (3, 1, 3, 3), ((1, 1), (1, 1), (1, 1), (1, 1), 1)),
    ((2, 4, 5, 5), (4, 1, 1, 1), ((1, 1), (0, 0), (0, 0), (1, 1), 4)),
]
DTYPES = [np.float32, np.float64]


@pytest.fixture
def host(monkeypatch):
    host_kernels.install(monkeypatch, "conv")


def arrays(rng, dtype, x_shape, w_shape, geometry):
    """Random input, weight, bias and output gradient of one case."""
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    dy = rng.standard_normal(_C.conv2d_output_shape(x_shape, w_shape, *geometry)).astype(dtype)
    return x, w, b, dy


def forward(library, x, w, b, geometry, relu, algo="depthwise"):
    out = np.full(_C.conv2d_output_shape(x.shape, w.shape, *geometry), np.nan, x.dtype)
    library.conv2d_forward(x, w, b, out, *geometry, algo, relu)
    return out


def input_gradient(library, x_shape, w, dy, geometry, algo="depthwise"):
    dx = np.full(x_shape, np.nan, w.dtype)
    library.conv2d_backward_input(dy, w, dx, *geometry, algo)
    return dx


def weight_gradient(library, x, w_shape, dy, geometry, algo="depthwise"):
    dw, db = np.full(w_shape, np.nan, x.dtype), np.full(w_shape[0], np.nan, x.dtype)
    library.conv2d_backward_weight(x, dy, dw, db, *geometry, algo)
    return dw, db


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES)
def test_forward_matches_the_cpu_kernel(host, rng, dtype, case):
    x, w, b, _ = arrays(rng, dtype, *case)
    got = forward(cuda_conv, x, w, b, case[2], relu=True)
    np.testing.assert_allclose(got, forward(_C, x, w, b, case[2], relu=True), **TOLERANCE[dtype])
    assert (got == 0).any() and (got > 0).any()  # the ReLU had something to do
    np.testing.assert_allclose(forward(cuda_conv, x, w, None, case[2], relu=False),
                               forward(_C, x, w, None, case[2], relu=False), **TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES)
def test_input_gradient_matches_the_cpu_kernel(host, rng, dtype, case):
    x, w, _, dy = arrays(rng, dtype, *case)
    np.testing.assert_allclose(input_gradient(cuda_conv, x.shape, w, dy, case[2]),
                               input_gradient(_C, x.shape, w, dy, case[2]), **TOLERANCE[dtype])


@pytest.mark.parametrize("min_part_terms", [cuda_conv.MIN_PART_TERMS, 5])  # 5: several uneven parts per tap
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES)
def test_weight_gradient_matches_the_cpu_kernel(host, rng, monkeypatch, dtype, case, min_part_terms):
    monkeypatch.setattr(cuda_conv, "MIN_PART_TERMS", min_part_terms)
    x, w, _, dy = arrays(rng, dtype, *case)
    for got, want in zip(weight_gradient(cuda_conv, x, w.shape, dy, case[2]),
                         weight_gradient(_C, x, w.shape, dy, case[2])):
        np.testing.assert_allclose(got, want, **TOLERANCE[dtype])


def test_every_direction_matches_torch(host, rng, torch):
    """A second oracle, independent of fastconv's CPU kernels: torch's conv2d and its gradients."""
    x, w, b, dy = arrays(rng, np.float64, *CASES[2])
    stride, pad_begin, pad_end, dilation, groups = CASES[2][2]
    padded = np.pad(x, ((0, 0), (0, 0), (pad_begin[0], pad_end[0]), (pad_begin[1], pad_end[1])))
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (padded, w, b))
    ty = torch.nn.functional.conv2d(tx, tw, tb, stride=stride, dilation=dilation, groups=groups)
    ty.backward(torch.from_numpy(dy))
    crop = (slice(None), slice(None), slice(pad_begin[0], pad_begin[0] + x.shape[2]),
            slice(pad_begin[1], pad_begin[1] + x.shape[3]))
    close = dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(forward(cuda_conv, x, w, b, CASES[2][2], relu=False), ty.detach().numpy(), **close)
    np.testing.assert_allclose(input_gradient(cuda_conv, x.shape, w, dy, CASES[2][2]), tx.grad.numpy()[crop], **close)
    dw, db = weight_gradient(cuda_conv, x, w.shape, dy, CASES[2][2])
    np.testing.assert_allclose(dw, tw.grad.numpy(), **close)
    np.testing.assert_allclose(db, tb.grad.numpy(), **close)



def test_nan_passes_the_fused_relu(host):
    """As torch.relu: a NaN sum stays NaN (a `max(sum, 0)` would turn it into 0)."""
    x = np.ones((1, 2, 4, 4))
    x[0, 0, 1, 1] = np.nan
    w = -np.ones((2, 1, 3, 3))
    out = forward(cuda_conv, x, w, None, ((1, 1), (0, 0), (0, 0), (1, 1), 2), relu=True)
    assert np.isnan(out[0, 0]).all() and (out[0, 1] == 0).all()


def test_auto_runs_the_depthwise_kernels_in_every_direction(host, rng, monkeypatch):
    ran = []
    for table, direction in ((cuda_conv.FORWARD, "forward"), (cuda_conv.BACKWARD_INPUT, "input"),
                             (cuda_conv.BACKWARD_WEIGHT, "weight")):
        monkeypatch.setitem(table, "depthwise", lambda *a, d=direction: ran.append(d))
    x, w, b, dy = arrays(rng, np.float64, *CASES[1])
    forward(cuda_conv, x, w, b, CASES[1][2], relu=False, algo="auto")
    input_gradient(cuda_conv, x.shape, w, dy, CASES[1][2], algo="auto")
    weight_gradient(cuda_conv, x, w.shape, dy, CASES[1][2], algo="auto")
    assert ran == ["forward", "input", "weight"]


def test_a_layer_with_several_input_channels_per_group_is_refused(host):
    x, w = np.zeros((1, 4, 5, 5)), np.zeros((4, 2, 3, 3))
    geometry = ((1, 1), (1, 1), (1, 1), (1, 1), 2)
    dy = np.zeros(_C.conv2d_output_shape(x.shape, w.shape, *geometry))
    message = "algo: depthwise needs one input channel per group"
    with pytest.raises(ValueError, match=message):
        forward(cuda_conv, x, w, None, geometry, relu=False)
    with pytest.raises(ValueError, match=message):
        input_gradient(cuda_conv, x.shape, w, dy, geometry)
    with pytest.raises(ValueError, match=message):
        weight_gradient(cuda_conv, x, w.shape, dy, geometry)


def test_an_empty_batch_gives_a_zero_weight_gradient(host):
    x, w, dy = np.zeros((0, 2, 5, 5)), np.ones((4, 1, 3, 3)), np.zeros((0, 4, 5, 5))
    geometry = ((1, 1), (1, 1), (1, 1), (1, 1), 2)
    assert forward(cuda_conv, x, w, None, geometry, relu=False).shape == dy.shape
    assert input_gradient(cuda_conv, x.shape, w, dy, geometry).shape == x.shape
    dw, db = weight_gradient(cuda_conv, x, w.shape, dy, geometry)
    np.testing.assert_array_equal(dw, 0)
    np.testing.assert_array_equal(db, 0)


@pytest.mark.parametrize("terms, parts", [(0, 1), (63, 1), (64 * 7 + 5, 7), (10 ** 7, 256)])
def test_the_weight_gradient_split_depends_on_the_size_alone(terms, parts):
    assert cuda_conv.weight_gradient_parts(terms) == parts
