"""The neural networks of the course, built from fastconv.nn: a 2-layer MLP, LeNet-5, small
AlexNet- and VGG-style nets, and ResNet-20.

The convolutional nets take 32x32 inputs (CIFAR-10's size, and LeNet-5's: LeCun et al. padded
28x28 MNIST to 32x32); models/datasets.py brings smaller images to that size. Widths scale
with `width` where a net has one, so tests can train narrow copies in seconds.
"""
from fastconv import backend, nn
from fastconv.autograd import Function
from fastconv.ops import is_channels_last

INPUT_SIZE = 32  # the side every convolutional net here expects


class MLP(nn.Module):
    """Flatten -> Linear -> activation -> Linear: the smallest net that solves XOR."""

    def __init__(self, in_features, num_classes, hidden=256, activation="relu"):
        super().__init__()
        self.layers = nn.Sequential(nn.Flatten(), nn.Linear(in_features, hidden),
                                    nn.ReLU() if activation == "relu" else nn.Tanh(),
                                    nn.Linear(hidden, num_classes))

    def forward(self, x):
        return self.layers(x)


class LeNet5(nn.Module):
    """LeCun et al. 1998: C1 6@28x28 (5x5) - S2 pool - C3 16@10x10 (5x5) - S4 pool - C5 120 -
    F6 84 - 10 outputs, on 32x32 inputs. Modern choices: ReLU and max pooling instead of
    scaled tanh and trainable subsampling, full C3 connectivity, a softmax output instead of RBFs."""

    def __init__(self, in_channels=1, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5), nn.ReLU(), nn.MaxPool2d(2),   # 32 -> 28 -> 14
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),            # 14 -> 10 -> 5
            nn.Conv2d(16, 120, 5), nn.ReLU())                           # C5: 5 -> 1
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


class AlexNetSmall(nn.Module):
    """AlexNet's shape (Krizhevsky et al. 2012) shrunk for 32x32: a large-kernel strided stem,
    ReLU, overlapping 3x3/2 max pooling, three 3x3 convolutions, and a dropout-regularised
    fully connected classifier. Channels: width, 2*width, 3*width, 2*width. He init."""

    def __init__(self, in_channels=1, num_classes=10, width=32, hidden=256, dropout=0.5):
        super().__init__()
        c1, c2, c3 = width, 2 * width, 3 * width
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, 5, stride=2, padding=2), nn.ReLU(),   # 32 -> 16
            nn.MaxPool2d(3, stride=2),                                       # 16 -> 7
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(3, stride=2),                                       # 7 -> 3
            nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c3, c2, 3, padding=1), nn.ReLU())
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(c2 * 3 * 3, hidden), nn.ReLU(),
            nn.Dropout(dropout), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))
        he_init(list(self.features) + list(self.classifier)[:-1])

    def forward(self, x):
        return self.classifier(self.features(x))


def he_init(layers):
    """He et al. 2015 (fan-in, ReLU gain) for the convolutions and linear layers that feed a
    ReLU: without batch norm, PyTorch's default (a third of that variance) shrinks the signal
    layer by layer. The output layer keeps the default, so the first logits stay small."""
    for module in layers:
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)


def conv_bn_relu(in_channels, out_channels):
    """3x3 convolution (no bias: the batch norm's shift replaces it), batch norm, ReLU."""
    return [nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU()]


class VGGSmall(nn.Module):
    """VGG's recipe (Simonyan & Zisserman 2015) with batch norm: stages of 3x3 conv+BN+ReLU,
    each ended by a 2x2 max pool, then a fully connected classifier. Default stages for 32x32:
    two convs of width, two of 2*width, two of 4*width (32 -> 16 -> 8 -> 4)."""

    def __init__(self, in_channels=1, num_classes=10, width=32, stages=(2, 2, 2), hidden=256, dropout=0.5):
        super().__init__()
        layers, channels = [], in_channels
        for stage, convs in enumerate(stages):
            for _ in range(convs):
                layers += conv_bn_relu(channels, width * 2 ** stage)
                channels = width * 2 ** stage
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        side = INPUT_SIZE // 2 ** len(stages)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(channels * side * side, hidden), nn.ReLU(),
                                        nn.Dropout(dropout), nn.Linear(hidden, num_classes))
        for module in self.features:
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        return self.classifier(self.features(x))


class ZeroPadShortcut(Function):
    """ResNet option A (He et al. 2016, section 4.2): the identity subsampled by `stride` with
    the extra output channels zero; no parameters. Backward keeps the gradient of the real
    channels at the sampled positions. The output and the input gradient keep the input's memory
    layout (NCHW or channels_last), as the convolutions beside it do, so that the block's sum
    meets arrays of one layout."""

    @staticmethod
    def forward(ctx, x, out_channels, stride):
        ctx.input_shape, ctx.stride = x.shape, stride
        ctx.channels_last = is_channels_last(x)
        sampled = x[:, :, ::stride, ::stride]
        out = _empty_in_layout((x.shape[0], out_channels) + sampled.shape[2:], x, ctx.channels_last)
        ctx.first = (out_channels - x.shape[1]) // 2  # torch ports pad both sides equally
        last = ctx.first + x.shape[1]
        backend.fill(out[:, :ctx.first], 0)  # only the padding is cleared: the sampled channels are written once
        backend.fill(out[:, last:], 0)
        backend.copy_into(out[:, ctx.first:last], sampled)
        return out

    @staticmethod
    def backward(ctx, grad):
        grad_x = _empty_in_layout(ctx.input_shape, grad, ctx.channels_last)
        backend.fill(grad_x, 0)
        s = ctx.stride
        backend.copy_into(grad_x[:, :, ::s, ::s], grad[:, ctx.first:ctx.first + ctx.input_shape[1]])
        return grad_x


def _empty_in_layout(shape, like, channels_last):
    if channels_last:
        return backend.empty_channels_last(shape, like.dtype)
    return backend.empty(shape, like.dtype, backend.device_of(like))


class OptionAShortcut(nn.Module):
    def __init__(self, out_channels, stride):
        super().__init__()
        self.out_channels, self.stride = out_channels, stride

    def forward(self, x):
        return ZeroPadShortcut.apply(x, self.out_channels, self.stride)

    def extra_repr(self):
        return f"out_channels={self.out_channels}, stride={self.stride}"


class BasicBlock(nn.Module):
    """Two 3x3 conv+BN, ReLU between, the shortcut added before the last ReLU. Where the shape
    changes the shortcut is option A (zero-padded identity) or B (1x1 strided conv + BN)."""

    def __init__(self, in_channels, out_channels, stride=1, shortcut="A"):
        super().__init__()
        # BN + ReLU (+ the shortcut) as one fused pass each: the same parameters and state_dict
        # as BatchNorm2d, one trip over memory instead of three (BN, add, ReLU) per direction.
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNormReLU2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNormReLU2d(out_channels)
        self.shortcut = None
        if stride != 1 or in_channels != out_channels:
            if shortcut == "A":
                self.shortcut = OptionAShortcut(out_channels, stride)
            elif shortcut == "B":
                self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                              nn.BatchNorm2d(out_channels))
            else:
                raise ValueError(f"shortcut: expected 'A' or 'B', got {shortcut!r}")

    def forward(self, x):
        out = self.bn1.after_conv(self.conv1, x)
        return self.bn2.after_conv(self.conv2, out, residual=x if self.shortcut is None else self.shortcut(x))


class ResNet20(nn.Module):
    """He et al. 2016's CIFAR ResNet with n=3: a 3x3 conv of `width` channels, three stages of
    n basic blocks at width, 2*width, 4*width channels (the 2nd and 3rd start with stride 2),
    global average pooling and a linear layer: 6n+2 = 20 weighted layers. BN after every conv;
    He (fan-in, ReLU gain) init for the convolutions."""

    def __init__(self, in_channels=3, num_classes=10, width=16, blocks_per_stage=3, shortcut="A"):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, width, 3, padding=1, bias=False)
        self.bn = nn.BatchNormReLU2d(width)
        blocks, channels = [], width
        for stage in range(3):
            for i in range(blocks_per_stage):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(BasicBlock(channels, width * 2 ** stage, stride, shortcut))
                channels = width * 2 ** stage
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")

    def forward(self, x):
        x = self.bn.after_conv(self.conv, x)
        return self.fc(self.pool(self.blocks(x)).flatten(1))
