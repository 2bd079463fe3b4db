"""A MobileNetV2-style person detector backbone at 320x320 (stand-in weights: planning needs only the shape)."""

from __future__ import annotations

import sys
from pathlib import Path

import onnx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from netbuilder import Net


def inverted_residual(net: Net, expand: int) -> None:
    channels = net.channels
    net.residual([("conv", {"cout": channels * expand, "k": 1, "act": "Relu"}),
                  ("depthwise", {}),
                  ("conv", {"cout": channels, "k": 1, "act": None})])


def build() -> onnx.ModelProto:
    net = Net("camera-detector", [1, 3, 320, 320])
    net.conv(32, stride=2)
    for width, repeats in ((16, 1), (24, 2), (32, 3), (64, 3), (96, 2)):
        net.conv(width, k=1).depthwise(stride=2 if width != 16 else 1)
        for _ in range(repeats):
            inverted_residual(net, expand=6)
    return net.conv(320, k=1).pool().dense(10).build()
