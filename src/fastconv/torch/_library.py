"""How fastconv's kernels become torch operators (torch.ops.fastconv.*) on torch's dispatcher.

An op is defined in the library "fastconv" with the schema of its Python function's annotations
(torch.library.infer_schema, as torch.library.custom_op reads them), and three registrations:

  - the function itself as the CompositeExplicitAutograd kernel: it hands the tensors' memory to
    fastconv's kernel (fastconv.torch._arrays refuses devices other than the CPU, naming them);
  - a fake implementation (torch.library.register_fake): the output's shape and dtype, which
    torch.compile traces with;
  - an Autograd kernel: a call with no input that requires grad goes straight on to the kernel;
    otherwise it runs a torch.autograd.Function built from the op's setup_context and backward,
    whose forward passes the call on below autograd (as torch's own autograd kernels do).

fastconv.torch calls an op through the function define() returns, which goes past the
dispatcher when nothing but the kernel and autograd would see the call.

This is what torch.library.custom_op builds, without the Python layers it wraps around every call
(re-binding of the arguments, a check that no output aliases an input, a wrapper that keeps
Dynamo out of the kernel): on a 1x4x8x8 max_pool2d those had cost more than the kernel.
"""
import torch

_LIBRARY = torch.library.Library("fastconv", "DEF")

# The dispatch keys below autograd: a call passed on with these runs the kernel (or, while
# torch.compile traces, its fake implementation) and records nothing for autograd.
_BELOW_AUTOGRAD = torch._C._after_autograd_keyset


def define(name, kernel):
    """fastconv::<name>, with `kernel`'s annotated signature as its schema and `kernel` as its
    implementation. Returns the function that calls it (the op itself is its `.op`); give the op
    a fake and autograd with register().

    An eager call that nothing but the kernel and autograd would see (no torch.compile tracing,
    no mode, transform, tracer or profiler, no tensor subclass: _observed) skips the dispatcher,
    whose round trips into Python kernels cost as much as a small kernel: it runs the kernel, or
    when an input asks for a gradient the op's autograd.Function around it. Any other call is the
    op's, as torch.ops.fastconv.<name>."""
    _LIBRARY.define(name + torch.library.infer_schema(kernel, mutates_args=()))
    _LIBRARY.impl(name, kernel, "CompositeExplicitAutograd")
    op = getattr(torch.ops.fastconv, name).default
    tensor_positions = tuple(i for i, argument in enumerate(op._schema.arguments)
                             if str(argument.type) in ("Tensor", "Optional[Tensor]"))

    def call(*args):
        if torch.compiler.is_compiling() or _observed(args, tensor_positions):
            return op(*args)
        if _is_grad_enabled() and _any_requires_grad(*args):
            return call.function.apply(*args, None)  # None: its forward runs the kernel itself
        return kernel(*args)

    call.op, call.kernel = op, kernel
    return call


def _observed(args, tensor_positions):
    """Whether something besides the kernel and autograd would see this call go through the
    dispatcher: a tensor subclass with dispatch of its own (nn.Parameter has none), a torch mode
    (dispatch or function, fake tensors included), a functorch transform, the JIT tracer or the
    profiler."""
    for position in tensor_positions:
        tensor = args[position]
        if tensor is not None and type(tensor) not in _PLAIN_TENSORS:
            return True
    return bool(_dispatch_modes() or _function_modes() or _functorch_transforms() or _jit_tracing()
                or _profiler._is_profiler_enabled)


# What a call asks on every call, looked up once.
_PLAIN_TENSORS = (torch.Tensor, torch.nn.Parameter)
_is_grad_enabled, _any_requires_grad = torch.is_grad_enabled, torch._C._any_requires_grad
_dispatch_modes, _function_modes = torch._C._len_torch_dispatch_stack, torch._C._is_torch_function_mode_enabled
_functorch_transforms, _jit_tracing = torch._C._are_functorch_transforms_active, torch._C._get_tracing_state
_profiler = torch.autograd.profiler  # its _is_profiler_enabled is a module global, read at each call


def register(call, fake, setup_context=None, backward=None):
    """The fake implementation and the autograd of the op that `call` (from define) calls:
    backward(ctx, *output_grads) returns a gradient (or None) per input, from what
    setup_context(ctx, inputs, output) saved; an op without a backward (fastconv's backward ops)
    refuses to be differentiated."""
    op = call.op
    torch.library.register_fake(op, fake, lib=_LIBRARY)
    call.function = function = _autograd_function(op, call.kernel, setup_context, backward)

    def autograd_kernel(keyset, *args):
        if torch.is_grad_enabled() and torch._C._any_requires_grad(*args):
            return function.apply(*args, keyset & _BELOW_AUTOGRAD)
        return op.redispatch(keyset & _BELOW_AUTOGRAD, *args)

    _LIBRARY.impl(op._opname, autograd_kernel, "Autograd", with_keyset=True)


def _autograd_function(op, kernel, setup_context, backward):
    """The torch.autograd.Function of `op`. Its inputs are the op's, then the keyset the call
    continues with below autograd (which gets no gradient), or None for a call made without the
    dispatcher, which runs `kernel` itself."""

    def forward(ctx, *args):
        *inputs, keyset = args
        output = kernel(*inputs) if keyset is None else op.redispatch(keyset, *inputs)
        if setup_context is not None:
            setup_context(ctx, tuple(inputs), output)
        return output

    def differentiate(ctx, *grads):
        if backward is None:
            raise RuntimeError(f"{op.name()} has no derivative: fastconv computes gradients once, not gradients "
                               f"of gradients")
        needs_input_grad = ctx.needs_input_grad
        ctx.needs_input_grad = needs_input_grad[:-1]  # the op's inputs only, as backward expects
        try:
            return (*backward(ctx, *grads), None)
        finally:
            ctx.needs_input_grad = needs_input_grad

    return type(op._opname, (torch.autograd.Function,),
                {"forward": staticmethod(forward), "backward": staticmethod(differentiate)})


__all__ = ["define", "register"]
