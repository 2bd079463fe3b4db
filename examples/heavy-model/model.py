"""A ResNet-18-sized segmentation backbone at 512 x 512 (about 11 M parameters; stand-in weights)."""

from __future__ import annotations

import sys
from pathlib import Path

import onnx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from netbuilder import Net


def build() -> onnx.ModelProto:
    net = Net("crop-segmenter", [1, 3, 512, 512])
    net.conv(64, k=7, stride=2)
    for width in (64, 128, 256, 512):
        if width != 64:
            net.conv(width, stride=2)
        for _ in range(2):
            net.residual([("conv", {"cout": width}), ("conv", {"cout": width, "act": None})])
    return net.pool().dense(20).build()
