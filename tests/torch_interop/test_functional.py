"""Each fastconv.torch op against torch (or, for the roi ops, the float64 loops of
tests/reference.py), its gradient by torch.autograd.gradcheck in float64, and its registration
(schema, fake implementation, autograd) by torch.library.opcheck."""
import numpy as np
import pytest

from tests.reference import random_boxes, roi_align_reference, roi_pool_reference


def _cases(torch, fct):
    """name -> (fastconv.torch call, reference call or None, inputs builder (dtype) -> tuple)."""
    F, tf = fct.functional, torch.nn.functional
    g = torch.Generator().manual_seed(0)

    def randn(*shape, dtype, grad=True):
        return torch.randn(*shape, generator=g, dtype=dtype).requires_grad_(grad)

    def boxes(dtype):
        rows = random_boxes(np.random.default_rng(0), 2, 7, 6, 3)
        return torch.from_numpy(rows).to(dtype)

    def bn_inputs(dtype):
        return (randn(2, 3, 4, 5, dtype=dtype), randn(3, dtype=dtype), randn(3, dtype=dtype),
                randn(2, 3, 4, 5, dtype=dtype))

    grid = lambda dtype: (torch.rand(2, 3, 4, 2, generator=g, dtype=dtype) * 2.4 - 1.2).requires_grad_()
    return {
        "conv2d": (lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1),
                   lambda x, w, b: tf.conv2d(x, w, b, stride=2, padding=1),
                   lambda d: (randn(2, 3, 7, 6, dtype=d), randn(4, 3, 3, 3, dtype=d), randn(4, dtype=d))),
        "conv2d_add_relu": (lambda x, w, b, z: F.conv2d(x, w, b, padding=1, relu=True, residual=z),
                            lambda x, w, b, z: tf.relu(tf.conv2d(x, w, b, padding=1) + z),
                            lambda d: (randn(2, 3, 7, 6, dtype=d), randn(4, 3, 3, 3, dtype=d), randn(4, dtype=d),
                                       randn(2, 4, 7, 6, dtype=d))),
        "conv2d_relu_no_residual": (lambda x, w: F.conv2d(x, w, stride=2, relu=True),
                                    lambda x, w: tf.relu(tf.conv2d(x, w, stride=2)),
                                    lambda d: (randn(2, 3, 7, 6, dtype=d), randn(4, 3, 3, 3, dtype=d))),
        "conv2d_same_even_kernel": (lambda x, w: F.conv2d(x, w, padding="same", groups=2, algo="direct"),
                                    lambda x, w: tf.conv2d(x, w, padding="same", groups=2),
                                    lambda d: (randn(1, 4, 5, 6, dtype=d), randn(2, 2, 2, 4, dtype=d))),
        "conv_transpose2d": (lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
                             lambda x, w, b: tf.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
                             lambda d: (randn(2, 3, 4, 3, dtype=d), randn(3, 2, 3, 3, dtype=d), randn(2, dtype=d))),
        "batch_norm_train_relu_residual": (
            lambda x, w, b, z: F.batch_norm(x, None, None, w, b, training=True, residual=z, relu=True),
            lambda x, w, b, z: tf.relu(tf.batch_norm(x, None, None, w, b, training=True) + z),
            bn_inputs),
        "batch_norm_eval": (
            lambda x, w, b, z: F.batch_norm(x, torch.linspace(-1, 1, 3, dtype=x.dtype),
                                            torch.linspace(0.5, 2, 3, dtype=x.dtype), w, b),
            lambda x, w, b, z: tf.batch_norm(x, torch.linspace(-1, 1, 3, dtype=x.dtype),
                                             torch.linspace(0.5, 2, 3, dtype=x.dtype), w, b),
            bn_inputs),
        "max_pool2d": (lambda x: F.max_pool2d(x, 3, 2, padding=1, ceil_mode=True),
                       lambda x: tf.max_pool2d(x, 3, 2, padding=1, ceil_mode=True),
                       lambda d: (randn(2, 3, 7, 8, dtype=d),)),
        "avg_pool2d": (lambda x: F.avg_pool2d(x, 3, 2, padding=1, ceil_mode=True, count_include_pad=False),
                       lambda x: tf.avg_pool2d(x, 3, 2, padding=1, ceil_mode=True, count_include_pad=False),
                       lambda d: (randn(2, 3, 7, 8, dtype=d),)),
        "adaptive_avg_pool2d": (lambda x: F.adaptive_avg_pool2d(x, (3, None)),
                                lambda x: tf.adaptive_avg_pool2d(x, (3, None)),
                                lambda d: (randn(2, 3, 7, 5, dtype=d),)),
        "roi_align": (lambda x, b: F.roi_align(x, b, (2, 3), 0.5, 2, aligned=True),
                      lambda x, b: torch.from_numpy(roi_align_reference(x.detach().numpy(), b.numpy(), (2, 3), 0.5, 2,
                                                                        True)),
                      lambda d: (randn(2, 3, 7, 6, dtype=d), boxes(d))),
        "roi_pool": (lambda x, b: F.roi_pool(x, b, 2, 0.5),
                     lambda x, b: torch.from_numpy(roi_pool_reference(x.detach().numpy(), b.numpy(), (2, 2), 0.5)[0]),
                     lambda d: (randn(2, 3, 7, 6, dtype=d), boxes(d))),
        "grid_sample": (lambda x, grid: F.grid_sample(x, grid, padding_mode="border", align_corners=False),
                        lambda x, grid: tf.grid_sample(x, grid, padding_mode="border", align_corners=False),
                        lambda d: (randn(2, 3, 5, 6, dtype=d), grid(d))),
        "interpolate": (lambda x: F.interpolate(x, scale_factor=1.7, mode="bilinear", align_corners=False),
                        lambda x: tf.interpolate(x, scale_factor=1.7, mode="bilinear", align_corners=False),
                        lambda d: (randn(2, 3, 4, 5, dtype=d),)),
        "interpolate_bicubic_antialias": (lambda x: F.interpolate(x, size=(3, 7), mode="bicubic", antialias=True),
                                          lambda x: tf.interpolate(x, size=(3, 7), mode="bicubic", antialias=True),
                                          lambda d: (randn(2, 3, 8, 5, dtype=d),)),
    }


CASES = ["conv2d", "conv2d_add_relu", "conv2d_relu_no_residual", "conv2d_same_even_kernel", "conv_transpose2d", "batch_norm_train_relu_residual",
         "batch_norm_eval", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "roi_align", "roi_pool",
         "grid_sample", "interpolate", "interpolate_bicubic_antialias"]


@pytest.fixture(scope="module")
def cases(torch, fct):
    return _cases(torch, fct)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")  # torch's, about its own copy
@pytest.mark.parametrize("name", CASES)
def test_matches_reference(torch, cases, name):
    ours, reference, make = cases[name]
    inputs = make(torch.float64)
    np.testing.assert_allclose(ours(*inputs).detach().numpy(), reference(*inputs).detach().numpy(),
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", CASES)
def test_gradcheck(torch, cases, name):
    ours, _, make = cases[name]
    assert torch.autograd.gradcheck(ours, make(torch.float64))


def _first_op_call(torch, call, inputs):
    """(op, args, kwargs) of the first fastconv custom op that `call` runs, as it ran it."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class FirstFastconvCall(TorchDispatchMode):
        seen = None

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func.namespace == "fastconv" and self.seen is None:
                self.seen = (func, args, kwargs or {})
            return func(*args, **(kwargs or {}))

    with FirstFastconvCall() as recorder:
        call(*inputs)
    return recorder.seen


@pytest.mark.parametrize("name", CASES)
def test_opcheck(torch, cases, name):
    ours, _, make = cases[name]
    inputs = make(torch.float64)
    op, args, kwargs = _first_op_call(torch, ours, inputs)
    torch.library.opcheck(op, args, kwargs)


def test_conv2d_add_relu_takes_an_unbatched_input_and_residual(torch, fct):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 6, 5, generator=g, dtype=torch.float64)
    w = torch.randn(4, 3, 3, 3, generator=g, dtype=torch.float64)
    z = torch.randn(4, 6, 5, generator=g, dtype=torch.float64)
    ours = fct.functional.conv2d(x, w, padding=1, relu=True, residual=z)
    expected = torch.relu(torch.nn.functional.conv2d(x, w, padding=1) + z)
    assert ours.shape == (4, 6, 5)
    np.testing.assert_allclose(ours.numpy(), expected.numpy(), rtol=1e-12, atol=1e-12)
