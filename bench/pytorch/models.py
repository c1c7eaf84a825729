"""The CIFAR bottleneck ResNet with MRLA-B, MRLA-L and ELA skips of SPEC sections 1-3, and the
ImageNet ResNets with the same blocks, written in plain PyTorch for the reference benchmark. State-dict names are the ones `ela` reads and writes
(`layer1.0.mrla.Wq.weight`, `layer1.0.bn_mrla.running_mean`, ...); `bench.py --check` verifies
these models against the NumPy reference fixtures of `crates/ela-model/tests/fixtures`, so both
frameworks are timed on the same computation.

MRLA-B is written as the official code writes it: every block concatenates the stage's keys and
value maps and takes the softmax-weighted sum over them.
"""
import math

import torch
from torch import nn
import torch.nn.functional as F


def odd_kernel(c):
    t = int(abs((math.log2(c) + 1) / 2))
    return t if t % 2 else t + 1


class MRLA(nn.Module):
    def __init__(self, channels, dim_per_head, light):
        super().__init__()
        k = odd_kernel(channels)
        self.heads, self.d = channels // dim_per_head, dim_per_head
        self.Wq = nn.Conv1d(1, 1, k, padding=(k - 1) // 2, bias=False)
        self.Wk = nn.Conv1d(1, 1, k, padding=(k - 1) // 2, bias=False)
        self.Wv = nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False)
        if light:
            self.lambda_t = nn.Parameter(torch.randn(channels, 1, 1))

    def qkv(self, x):
        y = x.mean((2, 3)).unsqueeze(1)  # [B, 1, C]
        return self.Wq(y), self.Wk(y), self.Wv(x)


class Bottleneck(nn.Module):
    """A residual block with optional MRLA: the bottleneck (1x1 -> 3x3 -> 1x1, x4) of the CIFAR
    and ImageNet ResNet-50/101/152, or with `basic` the 3x3 -> 3x3 block of ResNet-18/34."""

    def __init__(self, cin, width, stride, attention, dim_per_head, basic=False):
        super().__init__()
        out = width if basic else width * 4
        if basic:
            self.conv1 = nn.Conv2d(cin, width, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(width)
            self.conv3 = None
        else:
            self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(width)
            self.conv3 = nn.Conv2d(width, out, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(out)
        self.downsample = None
        if stride != 1 or cin != out:
            self.downsample = nn.Sequential(nn.Conv2d(cin, out, 1, stride, bias=False), nn.BatchNorm2d(out))
        self.attention = attention
        if attention in ("mrla-b", "mrla-l"):
            self.mrla = MRLA(out, dim_per_head, attention == "mrla-l")
            self.bn_mrla = nn.BatchNorm2d(out)
        self.skip = False

    def residual(self, x, identity):
        out = F.relu(self.bn1(self.conv1(x)))
        if self.conv3 is None:
            return F.relu(self.bn2(self.conv2(out)) + identity)
        out = F.relu(self.bn2(self.conv2(out)))
        return F.relu(self.bn3(self.conv3(out)) + identity)

    def forward(self, x, keys, values, mode):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.residual(x, identity)
        if self.attention == "mrla-l":
            b, c, h, w = out.shape
            q, k, v = self.mrla.qkv(out)
            g, d = self.mrla.heads, self.mrla.d
            gate = torch.sigmoid((q.view(b, g, d) * k.view(b, g, d)).sum(-1) / math.sqrt(d))
            o = (v.view(b, g, d, h, w) * gate[:, :, None, None, None]).view(b, c, h, w)
            return out + self.bn_mrla(o + self.mrla.lambda_t * identity)
        if self.attention != "mrla-b" or (self.skip and mode == "full"):
            return out
        b, c, h, w = out.shape
        g, d = self.mrla.heads, self.mrla.d
        y = out.mean((2, 3)).unsqueeze(1)
        keys.append(self.mrla.Wk(y).view(b, g, 1, d))
        values.append(self.mrla.Wv(out).view(b, g, 1, d * h * w))
        if self.skip:
            return out
        q = self.mrla.Wq(y).view(b, g, 1, d)
        K = torch.cat(keys, 2)  # [B, G, t, d]
        V = torch.cat(values, 2)  # [B, G, t, d*H*W]
        a = torch.softmax(q @ K.transpose(-1, -2) / math.sqrt(d), -1)  # [B, G, 1, t]
        o = (a @ V).view(b, c, h, w)
        return out + F.relu(self.bn_mrla(o))


class ResNet(nn.Module):
    def __init__(self, depth, num_classes, attention="none", in_channels=3, dim_per_head=16, mode="full"):
        super().__init__()
        assert (depth - 2) % 9 == 0, "depth must be 9n + 2"
        n = (depth - 2) // 9
        self.mode = mode
        self.conv1 = nn.Conv2d(in_channels, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        cin = 16
        for s, width in enumerate([16, 32, 64]):
            blocks = []
            for j in range(n):
                blocks.append(Bottleneck(cin, width, 2 if (s > 0 and j == 0) else 1, attention, dim_per_head))
                cin = width * 4
            setattr(self, f"layer{s + 1}", nn.ModuleList(blocks))
        self.fc = nn.Linear(cin, num_classes)

    def stages(self):
        return (self.layer1, self.layer2, self.layer3)

    def blocks(self):
        return [b for s in self.stages() for b in s]

    def set_skips(self, skipped):
        for i, b in enumerate(self.blocks()):
            b.skip = i in skipped

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        for stage in self.stages():
            keys, values = [], []  # the stage memory
            for block in stage:
                x = block(x, keys, values, self.mode)
        return self.fc(x.mean((2, 3)))


IMAGENET = {18: (True, [2, 2, 2, 2]), 34: (True, [3, 4, 6, 3]), 50: (False, [3, 4, 6, 3]),
            101: (False, [3, 4, 23, 3]), 152: (False, [3, 8, 36, 3])}


class ImageNetResNet(ResNet):
    """torchvision's ImageNet ResNet-18/34/50/101/152 with the same attention blocks, as `ela`
    builds it: the official MRLA-B deep stem (conv3x3/2 -> 32, conv3x3 -> 32, conv3x3 -> 64) for
    MRLA-B and ELA, the 7x7/2 stem otherwise, then BN, ReLU and a 3x3/2 max-pool; 32 channels
    per head for MRLA-L, 16 for MRLA-B."""

    def __init__(self, depth, num_classes, attention="none", in_channels=3, mode="full"):
        nn.Module.__init__(self)
        assert depth in IMAGENET, f"ImageNet ResNets have depth {sorted(IMAGENET)}"
        basic, blocks = IMAGENET[depth]
        dim_per_head = 32 if attention == "mrla-l" else 16
        self.mode = mode
        self.stem = None
        if attention == "mrla-b":
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
                nn.Conv2d(32, 32, 3, 1, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU())
            self.conv1 = nn.Conv2d(32, 64, 3, 1, 1, bias=False)
        else:
            self.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        cin = 64
        for s, (width, n) in enumerate(zip([64, 128, 256, 512], blocks)):
            stage = []
            for j in range(n):
                stage.append(Bottleneck(cin, width, 2 if (s > 0 and j == 0) else 1, attention,
                                        dim_per_head, basic=basic))
                cin = width if basic else width * 4
            setattr(self, f"layer{s + 1}", nn.ModuleList(stage))
        self.fc = nn.Linear(cin, num_classes)

    def stages(self):
        return (self.layer1, self.layer2, self.layer3, self.layer4)

    def forward(self, x):
        if self.stem is not None:
            x = self.stem(x)
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        for stage in self.stages():
            keys, values = [], []
            for block in stage:
                x = block(x, keys, values, self.mode)
        return self.fc(x.mean((2, 3)))
