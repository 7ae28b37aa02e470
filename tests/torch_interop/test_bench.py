"""The bench's "fastconv inside PyTorch" runners: the converted torch ResNet-20 trains like the
plain one, and the overhead micro-benchmark reports every runner."""
import numpy as np

from fastconv.bench import models, torch_overhead

TINY = {"name": "resnet20_train_step", "model": "resnet20", "N": 2, "C": 3, "H": 8, "W": 8, "classes": 10}


def test_models_section_times_fastconv_inside_torch(torch):
    case = models.train_step_case(TINY, torch)
    assert case.ours == ["fastconv", models.FASTCONV_IN_TORCH, models.FASTCONV_IN_TORCH_CL,
                         models.FASTCONV_IN_TORCH_FUSED]
    for name, layout in ((models.FASTCONV_IN_TORCH, torch.contiguous_format),
                         (models.FASTCONV_IN_TORCH_CL, torch.channels_last),
                         (models.FASTCONV_IN_TORCH_FUSED, torch.contiguous_format)):
        assert name in case.extra
        step = case.runners[name]
        net, _, tx = step.__defaults__  # the converted torch model the runner trains, and its input
        assert type(net.conv).__module__ == "fastconv.torch.nn" and tx.is_contiguous(memory_format=layout)
        before = net.conv.weight.detach().clone()
        step()
        assert not torch.equal(net.conv.weight, before)  # an SGD step ran on fastconv's gradients


def test_overhead_micro_benchmark_reports_each_runner(torch):
    rows = torch_overhead.measure(torch, calls=2, rounds=1)
    assert [name for name, _ in rows] == ["max_pool2d 1x4x8x8", "conv2d 1x4x8x8, 3x3 direct"]
    for _, microseconds in rows:
        assert set(microseconds) == {"bare", "torch op", "+autograd", "torch"}
        assert all(np.isfinite(v) and v > 0 for v in microseconds.values())


def test_inference_case_runs_the_fused_torch_model_to_the_same_logits(torch):
    case = models.inference_case(dict(TINY, name="resnet20_inference"), torch)
    assert case.ours[-1] == models.FASTCONV_IN_TORCH_FUSED and models.FASTCONV_IN_TORCH_FUSED in case.extra
    fused = case.runners[models.FASTCONV_IN_TORCH_FUSED]()
    reference = case.runners["torch"]()
    net, _ = case.runners[models.FASTCONV_IN_TORCH_FUSED].__defaults__  # the fused model it runs
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    np.testing.assert_allclose(fused.numpy(), reference.numpy(), rtol=1e-4, atol=1e-4)
    ours = case.runners["fastconv"]()
    np.testing.assert_allclose(fused.numpy(), ours.numpy(), rtol=1e-4, atol=1e-4)
