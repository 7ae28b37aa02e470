"""PyTorch's unbatched inputs: conv2d, conv_transpose2d and the 2-d poolings take a (C, H, W)
input as a batch of one and drop the batch axis from what they return."""


def run_batched(op, input, *args, **kwargs):
    """op(input, ...) for a batched input; for a 3-d one, op on it viewed as (1, C, H, W), each
    result viewed without its batch axis."""
    if getattr(input, "ndim", None) != 3:
        return op(input, *args, **kwargs)
    result = op(input.reshape((1,) + tuple(input.shape)), *args, **kwargs)
    if isinstance(result, tuple):
        return tuple(r.reshape(tuple(r.shape[1:])) for r in result)
    return result.reshape(tuple(result.shape[1:]))
