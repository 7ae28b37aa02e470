"""torch.compile(fullgraph=True) of a converted model: one graph (fullgraph raises at any graph
break), holding fastconv's ops, with the eager model's outputs and gradients. The model is
compiled once for the module; the "aot_eager" backend runs the same tracing (Dynamo, fake
tensors, AOTAutograd's joint forward-backward graph) as inductor without its code generation,
which would take most of the suite's time on a small CI machine."""
import copy

import pytest

from tests.torch_interop.models import small_resnet


@pytest.fixture(scope="module")
def compiled(torch, fct):
    """(compiled converted model, the same converted model in eager mode, the fastconv ops
    in the traced graphs)."""
    torch.manual_seed(0)
    model = fct.convert(small_resnet(torch).double())
    eager = copy.deepcopy(model)
    seen = set()

    def recording_backend(graph_module, example_inputs):
        from functorch.compile import make_boxed_func
        from torch._dynamo.backends.common import aot_autograd

        def record(gm, _):
            seen.update(str(node.target) for node in gm.graph.nodes if str(node.target).startswith("fastconv."))
            return make_boxed_func(gm.forward)

        return aot_autograd(fw_compiler=record, bw_compiler=record)(graph_module, example_inputs)

    torch._dynamo.reset()
    return torch.compile(model, backend=recording_backend, fullgraph=True), eager, seen


def test_compiled_training_step_matches_eager(torch, compiled):
    model, eager, seen = compiled
    x = torch.randn(2, 3, 12, 12, dtype=torch.float64)
    for m in (model, eager):
        m.zero_grad()
        m(x).square().sum().backward()
    torch.testing.assert_close(model(x), eager(x))
    for (name, p), q in zip(model.named_parameters(), eager.parameters()):
        torch.testing.assert_close(p.grad, q.grad, msg=name)
    for name in ("conv2d", "batch_norm", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d",
                 "conv2d_input", "conv2d_weight", "batch_norm_backward", "max_pool2d_backward"):
        assert f"fastconv.{name}.default" in seen, sorted(seen)
    for ours, theirs in zip(model.buffers(), eager.buffers()):  # running statistics, updated in the graph
        torch.testing.assert_close(ours, theirs)
