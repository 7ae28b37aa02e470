"""channels_last tensors through fastconv.torch: read in place (no copy), results in the layout
the kernels write them (channels_last where torch keeps it; the roi ops' pooled boxes NCHW, as
torchvision's), the NCHW call's values and gradients, fake implementations with the real ops'
strides, and a converted channels_last model that runs end to end without a layout conversion."""
import copy

import numpy as np
import pytest

from fastconv.ops import is_channels_last as array_is_channels_last
from tests.reference import random_boxes
from tests.torch_interop.models import small_resnet


def _channels_last(torch, t):
    return t.detach().contiguous(memory_format=torch.channels_last).requires_grad_(t.requires_grad)


def _is_channels_last(torch, t):
    """fastconv's rule: NHWC memory that is not also NCHW."""
    return not t.is_contiguous() and t.is_contiguous(memory_format=torch.channels_last)


# ---- crossing ---------------------------------------------------------------------------------------

def test_a_channels_last_tensor_is_read_in_place_and_the_result_is_channels_last(torch):
    from fastconv.torch._arrays import as_array, as_tensor
    x = torch.randn(2, 3, 5, 4).contiguous(memory_format=torch.channels_last)
    array = as_array(x, "input")
    assert array.ctypes.data == x.data_ptr() and array_is_channels_last(array)
    assert array.strides == tuple(s * 4 for s in x.stride())
    nhwc_array = np.ascontiguousarray(array.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    y = as_tensor(nhwc_array)
    assert _is_channels_last(torch, y) and y.data_ptr() == nhwc_array.ctypes.data


def test_other_strides_are_copied_once_to_contiguous(torch):
    from fastconv.torch._arrays import as_array
    x = torch.randn(2, 3, 5, 4)
    for view in (x.transpose(2, 3), x[:, :, ::2], x.permute(0, 2, 3, 1)[..., None]):
        array = as_array(view, "input")
        assert array.flags.c_contiguous and not np.shares_memory(array, x.numpy())


@pytest.mark.parametrize("shape", [(2, 1, 5, 4), (2, 3, 1, 1)])
def test_a_tensor_that_is_both_layouts_counts_as_nchw(torch, fct, shape):
    """One channel or 1x1 planes: the same memory in both layouts, read as NCHW (fastconv.ops' rule)."""
    from fastconv.torch._arrays import as_array
    x = torch.randn(shape).contiguous(memory_format=torch.channels_last)
    array = as_array(x, "input")
    assert array.ctypes.data == x.data_ptr() and not array_is_channels_last(array)
    y = fct.functional.avg_pool2d(x, 1)
    assert y.is_contiguous()
    torch.testing.assert_close(y, x)


# ---- each op: values, layouts, gradients ----------------------------------------------------------------

def _cases(torch, fct):
    """name -> (call, inputs builder (dtype) -> tuple of NCHW tensors, the positions of the image
    inputs put in channels_last, whether the output keeps the input's layout)."""
    F = fct.functional
    g = torch.Generator().manual_seed(0)

    def randn(*shape, dtype):
        return torch.randn(*shape, generator=g, dtype=dtype).requires_grad_()

    def grid(dtype):
        return (torch.rand(2, 3, 4, 2, generator=g, dtype=dtype) * 2.4 - 1.2).requires_grad_()

    def boxes(dtype):
        return torch.from_numpy(random_boxes(np.random.default_rng(0), 2, 7, 6, 3)).to(dtype)

    image = lambda d: (randn(2, 8, 7, 6, dtype=d),)
    return {
        "conv2d": (lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1),
                   lambda d: (randn(2, 8, 7, 6, dtype=d), randn(9, 8, 3, 3, dtype=d), randn(9, dtype=d)), (0,), True),
        "conv2d_depthwise": (lambda x, w: F.conv2d(x, w, padding=1, groups=8),
                             lambda d: (randn(2, 8, 7, 6, dtype=d), randn(8, 1, 3, 3, dtype=d)), (0,), True),
        "conv_transpose2d": (lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
                             lambda d: (randn(2, 8, 4, 3, dtype=d), randn(8, 3, 3, 3, dtype=d), randn(3, dtype=d)),
                             (0,), True),
        "batch_norm_train_relu_residual": (
            lambda x, w, b, z: F.batch_norm(x, None, None, w, b, training=True, residual=z, relu=True),
            lambda d: (randn(2, 8, 7, 6, dtype=d), randn(8, dtype=d), randn(8, dtype=d), randn(2, 8, 7, 6, dtype=d)),
            (0, 3), True),
        "batch_norm_eval": (lambda x: F.batch_norm(x, torch.linspace(-1, 1, 8, dtype=x.dtype),
                                                   torch.linspace(0.5, 2, 8, dtype=x.dtype)), image, (0,), True),
        "max_pool2d": (lambda x: F.max_pool2d(x, 3, 2, padding=1, ceil_mode=True), image, (0,), True),
        "avg_pool2d": (lambda x: F.avg_pool2d(x, 3, 2, padding=1, count_include_pad=False), image, (0,), True),
        "adaptive_avg_pool2d": (lambda x: F.adaptive_avg_pool2d(x, (3, 2)), image, (0,), True),
        "adaptive_avg_pool2d_to_1x1": (lambda x: F.adaptive_avg_pool2d(x, 1), image, (0,), True),
        "grid_sample": (lambda x, grid: F.grid_sample(x, grid, align_corners=False),
                        lambda d: (randn(2, 8, 5, 6, dtype=d), grid(d)), (0,), True),
        "interpolate": (lambda x: F.interpolate(x, scale_factor=1.7, mode="bilinear", align_corners=False),
                        image, (0,), True),
        "interpolate_area": (lambda x: F.interpolate(x, size=(3, 4), mode="area"), image, (0,), True),
        "roi_align": (lambda x, b: F.roi_align(x, b, (2, 3), 0.5, 2, aligned=True),
                      lambda d: (randn(2, 8, 7, 6, dtype=d), boxes(d)), (0,), False),
        "roi_pool": (lambda x, b: F.roi_pool(x, b, 2, 0.5), lambda d: (randn(2, 8, 7, 6, dtype=d), boxes(d)),
                     (0,), False),
    }


CASES = ["conv2d", "conv2d_depthwise", "conv_transpose2d", "batch_norm_train_relu_residual", "batch_norm_eval",
         "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "adaptive_avg_pool2d_to_1x1", "grid_sample",
         "interpolate", "interpolate_area", "roi_align", "roi_pool"]


@pytest.fixture(scope="module")
def cases(torch, fct):
    return _cases(torch, fct)


def _in_channels_last(torch, inputs, positions):
    return tuple(_channels_last(torch, t) if i in positions else t for i, t in enumerate(inputs))


def _output_and_grads(torch, call, inputs):
    """The call's output and its inputs' gradients for a fixed random output gradient, given in the
    output's own layout (as the next layer's backward gives it)."""
    y = call(*inputs)
    grad = torch.randn(y.shape, generator=torch.Generator().manual_seed(1), dtype=y.dtype)
    grads = torch.autograd.grad(y, [t for t in inputs if t.requires_grad], torch.empty_like(y).copy_(grad))
    return y, grads


@pytest.mark.parametrize("name", CASES)
def test_channels_last_in_gives_the_nchw_values_in_the_layout_torch_keeps(torch, cases, name):
    call, make, positions, keeps_layout = cases[name]
    inputs = make(torch.float64)
    expected_y, expected_grads = _output_and_grads(torch, call, inputs)
    cl_inputs = _in_channels_last(torch, inputs, positions)
    y, grads = _output_and_grads(torch, call, cl_inputs)
    channels_last_out = y.shape[1] > 1 and y.shape[2] * y.shape[3] > 1 and keeps_layout
    assert _is_channels_last(torch, y) == channels_last_out
    assert y.is_contiguous(memory_format=torch.channels_last if keeps_layout else torch.contiguous_format)
    torch.testing.assert_close(y, expected_y, rtol=1e-12, atol=1e-12)
    for grad, expected in zip(grads, expected_grads):
        torch.testing.assert_close(grad, expected, rtol=1e-12, atol=1e-12)
    if keeps_layout:  # the image input's gradient, as its backward kernel wrote it
        assert _is_channels_last(torch, grads[0])


def _recorded_fastconv_calls(torch, run):
    """[(op, args, kwargs)] of every fastconv operator `run` calls, forward and backward."""
    from torch.utils._python_dispatch import TorchDispatchMode
    calls = []

    class Recorder(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func.namespace == "fastconv":
                calls.append((func, args, kwargs or {}))
            return func(*args, **(kwargs or {}))

    with Recorder():
        run()
    return calls


@pytest.mark.parametrize("layout", ["contiguous_format", "channels_last"])
@pytest.mark.parametrize("name", CASES)
def test_fake_implementations_describe_the_real_strides(torch, cases, name, layout):
    """Every op a forward and backward runs, forward and backward ops alike: its fake (what
    torch.compile traces with) has the real outputs' shapes, dtypes and strides, as
    torch.library.opcheck's fake tensor test compares them."""
    call, make, positions, _ = cases[name]
    inputs = make(torch.float64)
    if layout == "channels_last":
        inputs = _in_channels_last(torch, inputs, positions)
    calls = _recorded_fastconv_calls(torch, lambda: _output_and_grads(torch, call, inputs))
    assert len({str(op) for op, *_ in calls}) >= 2, calls  # the op and its backward op(s)
    for op, args, kwargs in calls:
        torch.library.opcheck(op, args, kwargs, test_utils="test_faketensor")


@pytest.mark.parametrize("name", ["conv2d", "batch_norm_train_relu_residual", "max_pool2d", "interpolate"])
def test_gradcheck_on_channels_last_inputs(torch, cases, name):
    call, make, positions, _ = cases[name]
    inputs = _in_channels_last(torch, make(torch.float64), positions)
    layouts = []

    def checked(*args):
        layouts.append(_is_channels_last(torch, args[0]))
        return call(*args)

    assert torch.autograd.gradcheck(checked, inputs, fast_mode=True)
    assert all(layouts)  # gradcheck nudged the channels_last inputs in place, never a copy


# ---- a converted channels_last model -------------------------------------------------------------------

@pytest.fixture
def layout_copies(torch, monkeypatch):
    """Records the layout conversions inside fastconv, as (what, shape): fastconv.ops' compiled
    layout copies, and the copies fastconv.torch makes of tensors it cannot read in place
    (Tensor.contiguous returning a new tensor)."""
    from fastconv.ops import _checks
    copies = []
    layout_copy, contiguous = _checks.layout_copy, torch.Tensor.contiguous

    def counted_layout_copy(x, channels_last):
        copies.append(("layout_copy", tuple(x.shape)))
        return layout_copy(x, channels_last)

    def counted_contiguous(self, *args, **kwargs):
        out = contiguous(self, *args, **kwargs)
        if out.data_ptr() != self.data_ptr():
            copies.append(("Tensor.contiguous", tuple(self.shape)))
        return out

    monkeypatch.setattr(_checks, "layout_copy", counted_layout_copy)
    monkeypatch.setattr(torch.Tensor, "contiguous", counted_contiguous)
    return copies


@pytest.mark.parametrize("model_to_channels_last", [False, True])
def test_converted_model_on_channels_last_inputs_trains_without_layout_conversions(torch, fct, layout_copies,
                                                                                   model_to_channels_last):
    """small_resnet (convs, batch norms, max, average and adaptive pools, shortcuts) converted
    and fed a channels_last batch: every fastconv layer's output is channels_last, no activation
    or gradient changes layout forward or backward, and outputs, gradients and running statistics
    are the unconverted torch model's. model.to(memory_format=torch.channels_last) also makes the
    3x3 weights channels_last: fastconv's kernels read (K, C, R, S) weights, so those (and only
    those) are copied on each call."""
    torch.manual_seed(0)
    reference = small_resnet(torch).double()
    if model_to_channels_last:
        reference = reference.to(memory_format=torch.channels_last)
    model = fct.convert(copy.deepcopy(reference))
    outputs = []
    for module in model.modules():
        if type(module).__module__ == "fastconv.torch.nn":
            module.register_forward_hook(lambda m, i, out: outputs.append((type(m).__name__, out)))
    x = torch.randn(2, 12, 12, 3, dtype=torch.float64).permute(0, 3, 1, 2)  # NHWC memory: channels_last
    y = model(x)
    y.square().sum().backward()
    channels_last_weights = {tuple(p.shape) for p in model.parameters() if _is_channels_last(torch, p)}
    assert bool(channels_last_weights) == model_to_channels_last
    assert {shape for _, shape in layout_copies} == channels_last_weights, layout_copies
    assert len(outputs) == 15  # 6 convolutions, 6 batch norms, 3 pools
    for name, out in outputs:  # the adaptive pool's (N, C, 1, 1) is both layouts
        assert out.is_contiguous(memory_format=torch.channels_last) and (_is_channels_last(torch, out) or
                                                                         out.shape[2:] == (1, 1)), name
    expected = reference(x)
    expected.square().sum().backward()
    torch.testing.assert_close(y, expected, rtol=1e-10, atol=1e-12)
    for (name, p), q in zip(model.named_parameters(), reference.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-10, atol=1e-12, msg=name)
    for ours, theirs in zip(model.buffers(), reference.buffers()):
        torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)


def test_compiled_channels_last_block_matches_eager(torch, fct):
    """torch.compile(fullgraph=True) of conv + batch norm + ReLU + max pool on a channels_last
    input: traced with the fakes' channels_last strides, it runs in one graph and gives eager's
    output (channels_last) and gradients. The "aot_eager" backend, as test_compile.py's."""
    torch.manual_seed(0)
    nn = torch.nn
    eager = nn.Sequential(fct.Conv2d(4, 8, 3, padding=1), fct.BatchNorm2d(8, relu=True), fct.MaxPool2d(2)).double()
    eager = eager.to(memory_format=torch.channels_last)
    model = copy.deepcopy(eager)
    torch._dynamo.reset()
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    x = torch.randn(2, 4, 8, 8, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    outputs = []
    for m in (compiled, eager):
        y = m(x)
        y.square().sum().backward()
        outputs.append(y)
    assert _is_channels_last(torch, outputs[0])
    torch.testing.assert_close(outputs[0], outputs[1])
    for (name, p), q in zip(model.named_parameters(), eager.parameters()):
        torch.testing.assert_close(p.grad, q.grad, msg=name)
