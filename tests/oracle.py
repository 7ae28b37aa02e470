"""PyTorch as a test oracle for the differentiable ops: same inputs, same output weights,
compare outputs and every input's gradient."""
import numpy as np

from fastconv import Tensor


def compare_with_torch(torch, ours, theirs, arrays, rtol=1e-7, atol=1e-9, seed=0):
    """ours(*Tensors) and theirs(*torch tensors) on copies of `arrays`; backward of the same
    random projection of the output; asserts outputs and gradients agree."""
    our_inputs = [Tensor(a.copy(), requires_grad=a.dtype.kind == "f") for a in arrays]
    torch_inputs = [torch.tensor(a.copy(), requires_grad=a.dtype.kind == "f") for a in arrays]
    out, expected = ours(*our_inputs), theirs(*torch_inputs)
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=rtol, atol=atol)
    weights = np.random.default_rng(seed).standard_normal(out.shape).astype(out.dtype)
    (out * weights).sum().backward()
    (expected * torch.tensor(weights)).sum().backward()
    for index, (a, b) in enumerate(zip(our_inputs, torch_inputs)):
        if a.requires_grad:
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=rtol, atol=atol,
                                       err_msg=f"gradient of input {index}")
