"""Reference PyTorch models with independently known MAC counts (tests and benchmarks/macs_agreement.py)."""

from __future__ import annotations

import math
import sys

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from tests.support.paths import ROOT

sys.path.insert(0, str(ROOT / "examples" / "digits"))
from model import DigitsNet


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                     if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + self.down(x))


class TinyResNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 7, 2, 3, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))
        self.layers = nn.Sequential(BasicBlock(16, 16, 1), BasicBlock(16, 32, 2), BasicBlock(32, 64, 2))
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(self.layers(self.stem(x)), 1), 1))


class SelfAttention(nn.Module):
    """Multi-head self-attention written out: the two attention matmuls are explicit."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads, self.qkv, self.out = heads, nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.attention_macs = 0

    def forward(self, x):
        b, s, d = x.shape
        q, k, v = self.qkv(x).reshape(b, s, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        scores = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d // self.heads), dim=-1)
        self.attention_macs = 2 * b * self.heads * s * s * (d // self.heads)  # QK^T and AV
        return self.out((scores @ v).transpose(1, 2).reshape(b, s, d))


class TransformerBlock(nn.Module):
    def __init__(self, dim: int = 64, heads: int = 4, hidden: int = 256) -> None:
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim), SelfAttention(dim, heads)
        self.norm2, self.mlp = nn.LayerNorm(dim), nn.Sequential(nn.Linear(dim, hidden), nn.GELU(),
                                                                 nn.Linear(hidden, dim))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class MobileDecoder(nn.Module):
    """Inverted residual with depthwise conv, then a ConvTranspose upsampler."""

    def __init__(self) -> None:
        super().__init__()
        self.expand = nn.Conv2d(8, 48, 1)
        self.depthwise = nn.Conv2d(48, 48, 3, 2, 1, groups=48)
        self.project = nn.Conv2d(48, 16, 1)
        self.up = nn.ConvTranspose2d(16, 8, 2, 2)

    def forward(self, x):
        y = self.project(nn.functional.relu6(self.depthwise(nn.functional.relu6(self.expand(x)))))
        return self.up(y) + x


def hand_macs(model: nn.Module, x) -> int:
    """Sum of the textbook formulas over the layers a forward pass actually runs."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            total += output.numel() * module.in_channels // module.groups * math.prod(module.kernel_size)
        elif isinstance(module, nn.ConvTranspose2d):
            total += inputs[0].numel() * module.out_channels // module.groups * math.prod(module.kernel_size)
        elif isinstance(module, nn.Linear):
            total += output.numel() * module.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return total + sum(m.attention_macs for m in model.modules() if isinstance(m, SelfAttention))


def torch_counter_macs(model: nn.Module, x) -> float:
    """torch's own FlopCounterMode (FLOPs / 2) over the same forward pass: the second, independent tool."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() / 2


CASES = [
    ("digits (residual)", DigitsNet, (1, 1, 8, 8)),
    ("tiny resnet (residual, downsample)", TinyResNet, (2, 3, 64, 64)),
    ("transformer block (attention)", TransformerBlock, (1, 24, 64)),
    ("depthwise + conv-transpose", MobileDecoder, (1, 8, 32, 32)),
]


