"""The models section: whole-network figures for ResNet-20 (He et al. 2016, CIFAR variant), the
layers.json "models" entries:

  resnet20_train_step: 128x3x32x32, forward, cross-entropy, backward, SGD step (momentum 0.9, weight decay)
  resnet20_inference:  256x3x32x32, eval mode (running BN statistics), no graph

fastconv runs models/deep.py's ResNet20 on its engine; the peer is the same architecture written
in PyTorch (resnet20_torch, option-A shortcut) with the same weights, eager mode, NCHW and
channels_last. "fastconv_in_torch" is fastconv inside PyTorch: that same torch model (NCHW) with
its conv and batch-norm layers swapped by fastconv.torch.convert, so its ratio against "torch"
is what converting a torch model buys; "fastconv_in_torch_cl" is its channels_last twin (model
and input moved to channels_last, as for "torch_cl"), whose activations fastconv's kernels read
and write in place. "fastconv_in_torch_fused" is that converted model (NCHW) after
fastconv.torch.fuse: at inference each conv -> batch norm [-> + shortcut] -> ReLU chain is one
fastconv convolution, as fastconv's own engine runs it; in training each batch norm [-> +
shortcut] -> ReLU chain is one fastconv batch-norm pass. Each case reports the network's
direct-convolution FLOPs.
"""
import numpy as np

import fastconv
from fastconv import functional as F
from fastconv import optim
from fastconv.bench.harness import Case
from fastconv.bench.peers import torch_layouts
from fastconv.models.deep import ResNet20

LR, MOMENTUM, WEIGHT_DECAY = 0.01, 0.9, 1e-4  # small lr: repeated steps on random data stay finite


def resnet20_torch(torch, in_channels=3, num_classes=10, width=16, shortcut="A"):
    """ResNet-20 in PyTorch, parameter names matching models/deep.py's ResNet20 (so
    load_state_dict(strict=False) copies our weights; torch adds num_batches_tracked)."""
    nn, tF = torch.nn, torch.nn.functional

    class BasicBlock(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.cin, self.cout, self.stride = cin, cout, stride
            if shortcut == "B" and (stride != 1 or cin != cout):
                self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            out = self.bn2(self.conv2(tF.relu(self.bn1(self.conv1(x)))))
            if self.stride == 1 and self.cin == self.cout:
                skip = x
            elif shortcut == "B":
                skip = self.shortcut(x)
            else:  # option A: subsample, zero channels on both sides
                pad = (self.cout - self.cin) // 2
                skip = tF.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, pad, self.cout - self.cin - pad))
            return tF.relu(out + skip)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
            self.bn = nn.BatchNorm2d(width)
            blocks, channels = [], width
            for stage in range(3):
                for i in range(3):
                    blocks.append(BasicBlock(channels, width * 2 ** stage, 2 if stage > 0 and i == 0 else 1))
                    channels = width * 2 ** stage
            self.blocks = nn.Sequential(*blocks)
            self.fc = nn.Linear(channels, num_classes)

        def forward(self, x):
            x = self.blocks(tF.relu(self.bn(self.conv(x))))
            return self.fc(tF.adaptive_avg_pool2d(x, 1).flatten(1))

    return Net()


def resnet20_flops(batch, width=16, side=32, in_channels=3):
    """Forward FLOPs of the convolutions and the linear layer (2 per multiply-add)."""
    macs = in_channels * width * 9 * side * side
    channels = width
    for stage in range(3):
        out, pixels = width * 2 ** stage, (side // 2 ** stage) ** 2
        macs += channels * out * 9 * pixels + 5 * out * out * 9 * pixels  # 3 blocks, 6 convs
        channels = out
    return 2.0 * batch * (macs + channels * 10)


def _torch_copy(torch, model, layout):
    net = resnet20_torch(torch, model.conv.in_channels, model.fc.out_features)
    net.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in model.state_dict().items()}, strict=False)
    return net.to(memory_format=layout)


FASTCONV_IN_TORCH = "fastconv_in_torch"
FASTCONV_IN_TORCH_CL = "fastconv_in_torch_cl"
FASTCONV_IN_TORCH_FUSED = "fastconv_in_torch_fused"


def _torch_models(torch, model, training):
    """{runner name: (torch copy of `model`, its input layout)}: torch in each layout, a copy in
    each layout converted to fastconv's layers, and a converted copy fused (fastconv.torch.fuse,
    in the mode the case runs: folding the batch norms into the convolutions at inference)."""
    from fastconv.torch import convert, fuse
    nets = {name: (_torch_copy(torch, model, layout), layout) for name, layout in torch_layouts(torch)}
    for name, layout in ((FASTCONV_IN_TORCH, torch.contiguous_format), (FASTCONV_IN_TORCH_CL, torch.channels_last)):
        nets[name] = (convert(_torch_copy(torch, model, layout)), layout)
    for net, _ in nets.values():
        net.train(training)
    converted = convert(_torch_copy(torch, model, torch.contiguous_format)).train(training)
    nets[FASTCONV_IN_TORCH_FUSED] = (fuse(converted), torch.contiguous_format)
    return nets


def train_step_case(layer, torch, seed=0):
    rng = np.random.default_rng(seed)
    fastconv.manual_seed(seed)
    x = rng.standard_normal((layer["N"], layer["C"], layer["H"], layer["W"])).astype(np.float32)
    y = rng.integers(0, layer["classes"], layer["N"])
    model = ResNet20(layer["C"], layer["classes"])
    optimizer = optim.SGD(list(model.parameters()), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)

    def our_step():
        loss = F.cross_entropy(model(fastconv.Tensor(x)), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    runners = {"fastconv": our_step}
    if torch is not None:
        labels = torch.from_numpy(y)
        for name, (net, layout) in _torch_models(torch, model, training=True).items():
            torch_optimizer = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)

            tx = torch.from_numpy(x).contiguous(memory_format=layout)

            def torch_step(net=net, torch_optimizer=torch_optimizer, tx=tx):
                loss = torch.nn.functional.cross_entropy(net(tx), labels)
                torch_optimizer.zero_grad()
                loss.backward()
                torch_optimizer.step()

            runners[name] = torch_step
    flops = 3 * resnet20_flops(layer["N"], side=layer["H"], in_channels=layer["C"])  # backward: two products
    return Case(layer["name"], "fwd+bwd", runners, _ours(runners), flops=flops,
                extra={"what": f"ResNet-20, {layer['N']}x{layer['C']}x{layer['H']}x{layer['W']} float32: forward, "
                               "cross-entropy, backward, SGD step (momentum 0.9); peers: same weights, eager",
                       **_fastconv_in_torch_note(runners)})


def inference_case(layer, torch, seed=0):
    rng = np.random.default_rng(seed)
    fastconv.manual_seed(seed)
    x = rng.standard_normal((layer["N"], layer["C"], layer["H"], layer["W"])).astype(np.float32)
    model = ResNet20(layer["C"], layer["classes"]).eval()

    @fastconv.no_grad()
    def our_inference():
        return model(fastconv.Tensor(x))

    runners = {"fastconv": our_inference}
    if torch is not None:
        for name, (net, layout) in _torch_models(torch, model, training=False).items():
            def torch_inference(net=net, tx=torch.from_numpy(x).contiguous(memory_format=layout)):
                with torch.no_grad():
                    return net(tx)

            runners[name] = torch_inference
    flops = resnet20_flops(layer["N"], side=layer["H"], in_channels=layer["C"])
    return Case(layer["name"], "fwd", runners, _ours(runners), flops=flops,
                extra={"what": f"ResNet-20, {layer['N']}x{layer['C']}x{layer['H']}x{layer['W']} float32, "
                               "eval mode (running BN statistics), no graph", **_fastconv_in_torch_note(runners)})


def _ours(runners):
    """fastconv's engine first (what the headline ratio is), then fastconv inside PyTorch."""
    return [name for name in ("fastconv", FASTCONV_IN_TORCH, FASTCONV_IN_TORCH_CL, FASTCONV_IN_TORCH_FUSED)
            if name in runners]


def _fastconv_in_torch_note(runners):
    if FASTCONV_IN_TORCH not in runners:
        return {}
    return {FASTCONV_IN_TORCH: "the torch model (NCHW) after fastconv.torch.convert: its conv and batch-norm "
                               "layers run fastconv's kernels as torch custom ops; ReLU, the shortcut, pooling "
                               "and the head stay torch's",
            FASTCONV_IN_TORCH_CL: f"{FASTCONV_IN_TORCH} with model and input in channels_last: the kernels read "
                                  "and write NHWC activations in place (the 3x3 weights, channels_last too, are "
                                  "copied to (K, C, R, S) on each call)",
            FASTCONV_IN_TORCH_FUSED: f"{FASTCONV_IN_TORCH} after fastconv.torch.fuse: at inference the batch norms "
                                     "folded into the convolutions, the shortcut sum and ReLU in their epilogues; in "
                                     "training each batch norm, shortcut sum and ReLU one pass"}


def layers(layer_set):
    return [layer for layer in layer_set.get("models", []) if layer.get("model") == "resnet20"]


def cases(layer, torch):
    """A layer whose name ends in train_step times a training step, any other an inference pass."""
    return [(train_step_case if layer["name"].endswith("train_step") else inference_case)(layer, torch)]
