"""conv_transpose2d as a Function over the compiled kernels of fastconv.ops."""
from fastconv import ops
from fastconv.autograd import Function
from fastconv.functional._unbatched import run_batched


class ConvTranspose2d(Function):
    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, output_padding, groups, dilation, algo):
        ctx.args = dict(stride=stride, padding=padding, output_padding=output_padding, groups=groups,
                        dilation=dilation, algo=algo)
        ctx.save_for_backward(x, weight)
        return ops.conv_transpose2d(x, weight, bias, **ctx.args)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_arrays
        need_bias = ctx.needs_input_grad[2]
        return ops.conv_transpose2d_backward(x, weight, grad, **ctx.args, needs_bias=need_bias)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1, *,
                     algo="auto"):
    """torch.nn.functional.conv_transpose2d: weight (C_in, C_out/groups, R, S). algo picks the
    conv2d kernels that compute it and its gradients, as in conv2d. An unbatched (C_in, H, W)
    input gives a (C_out, H_out, W_out) output, as in PyTorch."""
    return run_batched(ConvTranspose2d.apply, input, weight, bias, stride, padding, output_padding, groups, dilation,
                       algo)
