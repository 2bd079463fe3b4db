"""A small vibration classifier over a 3-axis accelerometer window (3 x 1 x 128), built for an MCU:
int8-friendly ops only (Conv, ReLU, Add, GlobalAveragePool, Gemm). Stand-in weights."""

from __future__ import annotations

import sys
from pathlib import Path

import onnx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from netbuilder import Net


def build() -> onnx.ModelProto:
    net = Net("vibration", [1, 3, 1, 128])
    net.conv(16).conv(32, stride=2)
    net.residual([("conv", {"cout": 32}), ("conv", {"cout": 32, "act": None})])
    return net.conv(32, stride=2).pool().dense(4).build()
