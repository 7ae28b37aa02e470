"""The suite's networks written again in PyTorch, layer for layer, as the independent reference of
tests/models/test_deep.py and of the models benchmark (fastconv.bench.models builds its own copy)."""


def resnet20(torch, in_channels=3, num_classes=10, width=16, shortcut="A"):
    nn, F = torch.nn, torch.nn.functional

    class Block(nn.Module):
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
            out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
            if self.stride == 1 and self.cin == self.cout:
                skip = x
            elif shortcut == "B":
                skip = self.shortcut(x)
            else:
                pad = (self.cout - self.cin) // 2
                skip = F.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, pad, self.cout - self.cin - pad))
            return F.relu(out + skip)

    class ResNet20(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
            self.bn = nn.BatchNorm2d(width)
            blocks, c = [], width
            for stage in range(3):
                for i in range(3):
                    blocks.append(Block(c, width * 2 ** stage, 2 if stage > 0 and i == 0 else 1))
                    c = width * 2 ** stage
            self.blocks = nn.Sequential(*blocks)
            self.fc = nn.Linear(c, num_classes)

        def forward(self, x):
            x = self.blocks(F.relu(self.bn(self.conv(x))))
            return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))

    return ResNet20()
