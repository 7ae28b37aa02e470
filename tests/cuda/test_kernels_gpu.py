"""fastconv's CUDA kernels through the ops, on a GPU: against fastconv's CPU kernels on the same
values, against PyTorch's CUDA kernels where torch sees a GPU, the seam's errors with real CuPy
arrays, and a LeNet-5 and a ResNet-20 training step run entirely on the GPU against the same
step on the CPU. Skipped, with the reason, where fastconv cannot run CUDA kernels."""
import numpy as np
import pytest

from fastconv import backend, ops
from tests.conftest import WHY_NOT_CUDA

pytestmark = pytest.mark.skipif(WHY_NOT_CUDA is not None, reason=f"no CUDA here: {WHY_NOT_CUDA}")

WINDOWS = [  # (input shape, kernel, stride, padding, dilation, ceil_mode), edge cases as in test_pool_body.py
    ((2, 3, 7, 9), (3, 3), (2, 2), (1, 1), (1, 1), False),
    ((2, 3, 7, 9), (3, 3), (2, 2), (1, 1), (1, 1), True),
    ((1, 2, 6, 5), (2, 3), (2, 2), (1, 1), (1, 1), True),
    ((4, 8, 32, 32), (2, 2), (2, 2), (0, 0), (1, 1), False),
    ((2, 2, 9, 7), (3, 2), (1, 3), (1, 0), (2, 1), True),
]


def cuda(array):
    return backend.to_device(array, "cuda")


def host(array):
    return None if array is None else backend.to_host(array)


def assert_same(got, want, dtype=np.float64, exact=False):
    if exact:
        np.testing.assert_array_equal(host(got), want)
    else:
        tolerance = 1e-4 if dtype == np.float32 else 1e-10
        np.testing.assert_allclose(host(got), want, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, kernel, stride, padding, dilation, ceil", WINDOWS)
def test_max_pool_matches_the_cpu(rng, dtype, shape, kernel, stride, padding, dilation, ceil):
    x = rng.integers(-4, 5, shape).astype(dtype)  # ties: the tie-breaking order is compared too
    y, idx = ops.max_pool2d(x, kernel, stride, padding, dilation, ceil, return_indices=True)
    y_gpu, idx_gpu = ops.max_pool2d(cuda(x), kernel, stride, padding, dilation, ceil, return_indices=True)
    assert_same(y_gpu, y, exact=True)
    assert_same(idx_gpu, idx, exact=True)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = ops.max_pool2d_backward(dy, shape, idx)
    assert_same(ops.max_pool2d_backward(cuda(dy), shape, idx_gpu), dx, dtype)  # atomic adds: order may differ


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("count_include_pad, divisor", [(True, None), (False, None), (True, 5)])
@pytest.mark.parametrize("shape, kernel, stride, padding, dilation, ceil", [w for w in WINDOWS if w[4] == (1, 1)])
def test_avg_pool_matches_the_cpu_exactly(rng, dtype, count_include_pad, divisor, shape, kernel, stride, padding,
                                          dilation, ceil):
    x = rng.standard_normal(shape).astype(dtype)
    arguments = (kernel, stride, padding, ceil, count_include_pad, divisor)
    y = ops.avg_pool2d(x, *arguments)
    assert_same(ops.avg_pool2d(cuda(x), *arguments), y, exact=True)
    dy = rng.standard_normal(y.shape).astype(dtype)
    assert_same(ops.avg_pool2d_backward(cuda(dy), shape, *arguments), ops.avg_pool2d_backward(dy, shape, *arguments),
                exact=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, size", [((2, 3, 7, 9), (3, 4)), ((2, 16, 8, 8), (1, 1)), ((1, 2, 3, 4), (7, 9))])
def test_adaptive_avg_pool_matches_the_cpu_exactly(rng, dtype, shape, size):
    x = rng.standard_normal(shape).astype(dtype)
    y = ops.adaptive_avg_pool2d(x, size)
    assert_same(ops.adaptive_avg_pool2d(cuda(x), size), y, exact=True)
    dy = rng.standard_normal(y.shape).astype(dtype)
    assert_same(ops.adaptive_avg_pool2d_backward(cuda(dy), shape), ops.adaptive_avg_pool2d_backward(dy, shape),
                exact=True)


def _bn_case(rng, shape, dtype):
    c = shape[1]
    x = (rng.standard_normal(shape) * 2 + 3).astype(dtype)
    return (x, rng.standard_normal(shape).astype(dtype), rng.uniform(0.5, 2, c).astype(dtype),
            rng.standard_normal(c).astype(dtype), rng.standard_normal(c).astype(dtype),
            rng.uniform(0.5, 2, c).astype(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(8, 16, 8, 8), (2, 3, 1, 5), (1, 300, 2, 2), (64, 4, 32, 32)])
@pytest.mark.parametrize("residual, relu", [(False, False), (True, True)])
def test_batch_norm_train_matches_the_cpu(rng, dtype, shape, residual, relu):
    x, z, gamma, beta, rm, rv = _bn_case(rng, shape, dtype)
    z = z if residual else None
    rm_gpu, rv_gpu = cuda(rm), cuda(rv)
    y, mean, invstd = ops.batch_norm(x, rm, rv, gamma, beta, True, 0.1, 1e-5, z, relu)
    y_gpu, mean_gpu, invstd_gpu = ops.batch_norm(cuda(x), rm_gpu, rv_gpu, cuda(gamma), cuda(beta), True, 0.1, 1e-5,
                                                 None if z is None else cuda(z), relu)
    for got, want in ((y_gpu, y), (mean_gpu, mean), (invstd_gpu, invstd), (rm_gpu, rm), (rv_gpu, rv)):
        assert_same(got, want, dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    grads = ops.batch_norm_backward(dy, x, mean, invstd, gamma, True, y, relu, residual)
    grads_gpu = ops.batch_norm_backward(cuda(dy), cuda(x), mean_gpu, invstd_gpu, cuda(gamma), True, y_gpu, relu,
                                        residual)
    for got, want in zip(grads_gpu, grads):
        if want is not None:
            assert_same(got, want, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm_eval_matches_the_cpu_exactly(rng, dtype):
    x, z, gamma, beta, rm, rv = _bn_case(rng, (4, 6, 5, 7), dtype)
    y, _, _ = ops.batch_norm(x, rm, rv, gamma, beta, False, 0.1, 1e-5, z, True)
    y_gpu, _, _ = ops.batch_norm(*map(cuda, (x, rm, rv, gamma, beta)), False, 0.1, 1e-5, cuda(z), True)
    assert_same(y_gpu, y, exact=True)


def test_batch_norm_statistics_are_the_same_every_run(rng):
    x = cuda(rng.standard_normal((32, 8, 16, 16)).astype(np.float32))
    runs = [backend.to_host(ops.batch_norm(x, None, None, training=True)[1]) for _ in range(3)]
    assert all(np.array_equal(r, runs[0]) for r in runs)


@pytest.fixture
def torch_cuda(torch):
    if not torch.cuda.is_available():
        pytest.skip("torch sees no GPU")
    return torch


def _torch(torch, array):
    return torch.from_dlpack(array) if array is not None else None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm_and_pooling_agree_with_pytorch_cuda(torch_cuda, rng, dtype):
    F = torch_cuda.nn.functional
    x, z, gamma, beta, rm, rv = _bn_case(rng, (8, 16, 12, 12), dtype)
    x_gpu = cuda(x)
    y, _, _ = ops.batch_norm(x_gpu, cuda(rm), cuda(rv), cuda(gamma), cuda(beta), True, 0.1, 1e-5)
    want = F.batch_norm(_torch(torch_cuda, x_gpu), _torch(torch_cuda, cuda(rm)), _torch(torch_cuda, cuda(rv)),
                        _torch(torch_cuda, cuda(gamma)), _torch(torch_cuda, cuda(beta)), True, 0.1, 1e-5)
    assert_same(y, want.cpu().numpy(), dtype)
    t = _torch(torch_cuda, x_gpu)
    for shape, kernel, stride, padding, dilation, ceil in WINDOWS[:3]:
        got = ops.max_pool2d(x_gpu, kernel, stride, padding, dilation, ceil)
        assert_same(got, F.max_pool2d(t, kernel, stride, padding, dilation, ceil).cpu().numpy(), exact=True)
        got = ops.avg_pool2d(x_gpu, kernel, stride, padding, ceil, False)
        assert_same(got, F.avg_pool2d(t, kernel, stride, padding, ceil, False).cpu().numpy(), dtype)
    assert_same(ops.adaptive_avg_pool2d(x_gpu, (5, 7)), F.adaptive_avg_pool2d(t, (5, 7)).cpu().numpy(), dtype)


def _have_im2col():
    try:
        import fastconv.cuda.im2col  # noqa: F401
    except ImportError:
        return False
    return True


needs_im2col = pytest.mark.skipif(not _have_im2col(), reason="this build has no CUDA im2col (fastconv/cuda/im2col.py)")


@needs_im2col
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("stride, padding, dilation, groups", [(1, 1, 1, 1), (2, "same", 1, 1), (1, 0, 2, 2),
                                                               (2, 1, 1, 4)])
def test_conv2d_matches_the_cpu(rng, dtype, stride, padding, dilation, groups):
    if padding == "same" and stride != 1:
        stride = 1
    x = rng.standard_normal((2, 8, 9, 11)).astype(dtype)
    w = rng.standard_normal((12, 8 // groups, 3, 3)).astype(dtype)
    b = rng.standard_normal(12).astype(dtype)
    args = (stride, padding, dilation, groups)
    y = ops.conv2d(x, w, b, *args, relu=True)
    assert_same(ops.conv2d(cuda(x), cuda(w), cuda(b), *args, relu=True), y, dtype)
    dy = rng.standard_normal(ops.conv2d(x, w, b, *args).shape).astype(dtype)
    for got, want in zip(ops.conv2d_backward(cuda(x), cuda(w), cuda(dy), *args),
                         ops.conv2d_backward(x, w, dy, *args)):
        assert_same(got, want, dtype)


def test_arrays_on_two_devices_are_refused_naming_each(rng):
    x = rng.standard_normal((1, 2, 4, 4))
    with pytest.raises(backend.DeviceError, match="^batch_norm: input is on cuda, running_mean on cpu"):
        ops.batch_norm(cuda(x), np.zeros(2), np.ones(2), training=True)


def test_device_out_of_memory_is_a_memory_error_with_the_size():
    with pytest.raises(MemoryError, match="out of memory on cuda: .* needs 8796093022208 bytes"):
        backend.empty((2**41,), np.float32, device="cuda")


def test_a_kernel_that_is_not_there_is_named():
    from fastconv.cuda import loader
    with pytest.raises(loader.KernelError, match="CUDA kernel no_such_kernel_f32"):
        loader.function("pool", "no_such_kernel_f32")


# ---- a training step entirely on the GPU ---------------------------------------------------------

def _to_device(model, device):
    for tensor in model._state_tensors().values():
        tensor.data = backend.to_device(tensor.data, device)
    return model


def _train_steps(model, x, y, optimizer_class, steps=2):
    from fastconv import functional as F
    from fastconv.autograd import Tensor
    optimizer = optimizer_class(model.parameters(), lr=0.01)
    losses = []
    for _ in range(steps):
        loss = F.cross_entropy(model(Tensor(x)), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.item()))
    return losses, {name: backend.to_host(t.data) for name, t in model._state_tensors().items()}


@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
@pytest.mark.parametrize("net", ["LeNet5", "ResNet20"])
def test_a_training_step_runs_on_the_gpu_as_on_the_cpu(rng, net, optimizer):
    if not _have_im2col():
        pytest.skip("conv2d on CUDA needs fastconv/cuda/im2col.py, not in this build")
    from fastconv import optim
    from fastconv.models import deep
    make = {"LeNet5": lambda: deep.LeNet5(in_channels=3), "ResNet20": lambda: deep.ResNet20(width=8)}[net]
    backend.manual_seed(0)
    cpu_model = make()
    backend.manual_seed(0)
    gpu_model = _to_device(make(), "cuda")
    x = rng.standard_normal((8, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, 8)
    cpu_losses, cpu_state = _train_steps(cpu_model, x, y, getattr(optim, optimizer))
    gpu_losses, gpu_state = _train_steps(gpu_model, cuda(x), cuda(y), getattr(optim, optimizer))
    np.testing.assert_allclose(gpu_losses, cpu_losses, rtol=1e-3)
    for name, value in cpu_state.items():
        np.testing.assert_allclose(gpu_state[name], value, rtol=1e-3, atol=1e-4, err_msg=name)
