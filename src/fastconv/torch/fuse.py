"""fastconv.torch.fuse: a model's Conv2d -> BatchNorm2d [-> + tensor] [-> ReLU] chains as one
fastconv convolution each for inference, its BatchNorm2d [-> + tensor] [-> ReLU] chains as one
fastconv batch-norm pass each in training, and its Conv2d -> [+ tensor] -> [ReLU] chains as one
fastconv convolution in either mode.

In eval mode a batch norm with running statistics is a per-channel scale and shift, which folds
into the convolution before it: w' = w * gamma / sqrt(var + eps), b' = (b - mean) * that + beta
(torch.fx's fuse_conv_bn_eval folds the same way). What may follow, a sum with another tensor
(a ResNet block's shortcut) and a ReLU, fastconv's kernels do as they store each output
(fastconv.ops.conv2d's residual= and relu=): the chain becomes one pass over its output instead of
up to four.

The model is traced with torch.fx (symbolic_trace's rules: no control flow that depends on tensor
values), fastconv.torch's layers kept whole like torch.nn's.
"""
import copy
import operator

import torch
from torch import fx, nn
from torch.nn import functional as tF

from fastconv.torch import nn as fnn

_ADDS = (operator.add, operator.iadd, torch.add)
_RELUS = (tF.relu, tF.relu_, torch.relu, torch.relu_)


def fuse(model: nn.Module) -> fx.GraphModule:
    """A copy of `model` with its chains of a batch norm, a sum and a ReLU fused into fastconv
    layers; `model` itself is not changed.

    In eval mode (inference), each Conv2d whose output goes only to a BatchNorm2d with running
    statistics, optionally then to a sum with one other tensor and to a ReLU, becomes a single
    fastconv.torch.Conv2d: the batch norm folded into its weight and bias (the copy's own: train
    the original, then fuse again), the sum and the ReLU in its kernel's epilogue.

    In training mode, and in eval mode for a batch norm that no convolution can take, each
    BatchNorm2d followed by a sum with one other tensor and/or a ReLU becomes one
    fastconv.torch.BatchNorm2d(relu=...) called with that tensor as its residual: one pass, and
    one backward pass, instead of up to three. In either mode, a Conv2d followed directly by such
    a sum and/or ReLU (no batch norm between) becomes one fastconv.torch.Conv2d(relu=...) called
    with the residual. The copy's parameters and statistics are the ones it trains and updates.

    Other layers are kept as they are (fastconv.torch.convert swaps them for fastconv's)."""
    model = copy.deepcopy(model)
    try:
        graph = _Tracer().trace(model)
    except Exception as error:  # torch.fx's errors have no common base class
        raise ValueError(f"model: torch.fx could not trace it ({type(error).__name__}: {error}); fuse needs a model "
                         f"without control flow that depends on tensor values") from error
    traced = fx.GraphModule(model, graph)
    modules = dict(traced.named_modules())
    calls = _module_calls(traced.graph)
    for fuse_chain in (_fuse_conv_chain, _fuse_bn_chain):
        for node in list(traced.graph.nodes):
            if node.graph is traced.graph and node.op == "call_module":  # nodes erased by an earlier chain are gone
                fuse_chain(traced, modules, calls, node)
    traced.graph.lint()
    traced.delete_all_unused_submodules()
    traced.recompile()
    return traced


class _Tracer(fx.Tracer):
    """torch.fx's tracer, keeping fastconv.torch's layers whole as it keeps torch.nn's."""

    def is_leaf_module(self, module, qualified_name):
        return type(module).__module__ == fnn.__name__ or super().is_leaf_module(module, qualified_name)


def _module_calls(graph):
    """How many call_module nodes call each submodule: one called twice cannot be swapped for a
    fused layer that fits only one of its calls."""
    calls = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    return calls


def _called_once(modules, calls, node, types):
    """The module `node` calls when it is one of `types` (exactly) and no other node calls it."""
    module = modules.get(node.target) if node is not None and node.op == "call_module" else None
    return module if type(module) in types and calls[node.target] == 1 else None


def _batch_norm_call(modules, calls, node, input_node):
    """(batch norm, its residual node or None, its relu) when `node` calls a BatchNorm2d on
    `input_node` alone (fastconv's with its residual input too), else None."""
    bn = _called_once(modules, calls, node, (nn.BatchNorm2d, fnn.BatchNorm2d))
    if bn is None or not node.args or node.args[0] is not input_node or len(node.args) > 2:
        return None
    if set(node.kwargs) - {"residual"}:
        return None
    residual = node.args[1] if len(node.args) == 2 else node.kwargs.get("residual")
    return bn, residual, bool(getattr(bn, "relu", False))


def _tail(modules, node, residual, relu):
    """The sum and ReLU nodes after `node` that a fused layer can take over, and its residual and
    relu with them: a sum with one other tensor (unless `node` already has a residual or a ReLU),
    then a ReLU (unless it has one)."""
    tail = []
    if residual is None and not relu:
        add_node = _only_user(node)
        other = _other_addend(add_node, node) if add_node is not None else None
        if other is not None:
            residual, node = other, add_node
            tail.append(add_node)
    if not relu:
        relu_node = _only_user(node)
        if relu_node is not None and _is_relu(relu_node, node, modules):
            relu = True
            tail.append(relu_node)
    return tail, residual, relu


def _fuse_conv_chain(traced, modules, calls, conv_node):
    """conv -> batch norm (eval) [-> sum] [-> ReLU] as one fastconv Conv2d with the batch norm
    folded in; without a batch norm, conv -> sum and/or ReLU as one fastconv Conv2d (either
    mode: its operator is differentiable)."""
    conv = _called_once(modules, calls, conv_node, (nn.Conv2d, fnn.Conv2d))
    if conv is None or getattr(conv, "relu", False) or len(conv_node.args) != 1 or conv_node.kwargs:
        return
    bn_node = _only_user(conv_node)
    found = _batch_norm_call(modules, calls, bn_node, conv_node)
    if found is not None and _foldable(found[0]):
        bn, residual, relu = found
        tail, residual, relu = _tail(modules, bn_node, residual, relu)
        traced.add_submodule(conv_node.target, _folded(conv, bn, relu))
        _replace(traced, [conv_node, bn_node, *tail], conv_node.target, conv_node.args[0], residual)
        return
    tail, residual, relu = _tail(modules, conv_node, None, False)
    if tail:
        layer = fnn._replacement(conv) or conv  # a fastconv Conv2d holding conv's parameters
        layer.relu = relu
        traced.add_submodule(conv_node.target, layer)
        _replace(traced, [conv_node, *tail], conv_node.target, conv_node.args[0], residual)


def _fuse_bn_chain(traced, modules, calls, bn_node):
    """batch norm -> [sum] -> [ReLU] as one fastconv BatchNorm2d pass, in either mode."""
    if len(bn_node.args) != 1 or bn_node.kwargs:
        return
    found = _batch_norm_call(modules, calls, bn_node, bn_node.args[0])
    if found is None:
        return
    bn, residual, relu = found
    tail, residual, relu = _tail(modules, bn_node, residual, relu)
    if not tail:
        return
    layer = fnn._replacement(bn) or bn  # a fastconv BatchNorm2d holding bn's parameters and statistics
    layer.relu = relu
    traced.add_submodule(bn_node.target, layer)
    _replace(traced, [bn_node, *tail], bn_node.target, bn_node.args[0], residual)


def _replace(traced, chain, target, input_node, residual):
    """Puts one call of submodule `target` on (input_node[, residual]) where the last node of
    `chain` was, and removes the chain. The call goes just before that last node: every input of
    the chain (the residual too) is defined before it."""
    tail = chain[-1]
    with traced.graph.inserting_before(tail):
        fused = traced.graph.call_module(target, (input_node,) + ((residual,) if residual is not None else ()))
    tail.replace_all_uses_with(fused)
    for node in reversed(chain):
        traced.graph.erase_node(node)


def _only_user(node):
    return next(iter(node.users)) if len(node.users) == 1 else None


def _foldable(bn):
    """An eval-mode batch norm that normalises by running statistics."""
    return not bn.training and bn.track_running_stats and bn.running_mean is not None and bn.running_var is not None


def _other_addend(node, operand):
    """The tensor that `node` adds to `operand` (node's only input besides it), or None when node
    is not such a sum. An in-place sum must write into `operand`, whose only user it is: writing
    into the other tensor changes what its later users see, which the fused layer would not."""
    if node.kwargs:
        return None  # torch.add's alpha=, out=
    if node.op == "call_function" and node.target in _ADDS and len(node.args) == 2:
        a, b = node.args
        if node.target is operator.iadd and a is not operand:
            return None
    elif node.op == "call_method" and node.target in ("add", "add_") and len(node.args) == 2:
        a, b = node.args
        if node.target == "add_" and a is not operand:
            return None
    else:
        return None
    if a is b or operand not in (a, b):
        return None
    other = b if a is operand else a
    return other if isinstance(other, fx.Node) else None  # a number is no residual


def _is_relu(node, operand, modules):
    if node.args != (operand,):
        return False
    if node.op == "call_function":
        return node.target in _RELUS and set(node.kwargs) <= {"inplace"}
    if node.op == "call_method":
        return node.target in ("relu", "relu_") and not node.kwargs
    return node.op == "call_module" and type(modules.get(node.target)) is nn.ReLU


@torch.no_grad()
def _folded(conv, bn, relu):
    """A fastconv.torch.Conv2d computing relu?(bn(conv(x))) (bn in eval mode), in conv's dtype."""
    layer = fnn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                       conv.dilation, conv.groups, bias=True, padding_mode=conv.padding_mode,
                       device=conv.weight.device, dtype=conv.weight.dtype, algo=getattr(conv, "algo", "auto"),
                       relu=relu)
    channels = conv.out_channels
    double = dict(dtype=torch.float64, device=conv.weight.device)
    gamma = bn.weight.to(torch.float64) if bn.weight is not None else torch.ones(channels, **double)
    beta = bn.bias.to(torch.float64) if bn.bias is not None else torch.zeros(channels, **double)
    bias = conv.bias.to(torch.float64) if conv.bias is not None else torch.zeros(channels, **double)
    scale = gamma / torch.sqrt(bn.running_var.to(torch.float64) + bn.eps)
    layer.weight.copy_(conv.weight.to(torch.float64) * scale.reshape(-1, 1, 1, 1))
    layer.bias.copy_((bias - bn.running_mean.to(torch.float64)) * scale + beta)
    return layer


__all__ = ["fuse"]
