"""The MCU export's reference models, built directly as ONNX (no torch) with seeded weights.

- mlp: 64-32-16-10 with ReLU and a Softmax head.
- ds_cnn: a stride-2 stem, two depthwise-separable blocks (BatchNorm, ReLU6) with a residual Add,
  max and average pooling concatenated, global average pool and a Gemm head.
- kws: a DS-CNN keyword spotter in the style of Hello Edge (Zhang et al., arXiv 1711.07128) on a
  49x10 MFCC spectrogram: a 10x4 stride-2 conv behind an explicit Pad, four depthwise-separable
  blocks of 64 channels, global average pool, 12 classes, Softmax.
- digits: the bundled example (examples/digits/model.onnx).
- vww: MobileNetV1 x0.25 on 96x96 grayscale (the person-detection class), a larger fifth model.

Each comes with calibration and evaluation inputs drawn from a fixed seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tests.support.paths import ROOT

DIGITS = ROOT / "examples" / "digits"


@dataclass
class ReferenceModel:
    name: str
    model: onnx.ModelProto
    input_shape: tuple[int, ...]
    calib: np.ndarray
    eval: np.ndarray


class _Net:
    """A tiny ONNX graph builder: each method appends nodes and returns the output tensor name."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.weights: list[onnx.TensorProto] = []
        self.count = 0

    def _name(self, kind: str) -> str:
        self.count += 1
        return f"{kind}_{self.count}"

    def _weight(self, kind: str, value: np.ndarray) -> str:
        name = self._name(kind)
        self.weights.append(numpy_helper.from_array(value.astype(np.float32), name))
        return name

    def ints(self, kind: str, values: list[int]) -> str:
        name = self._name(kind)
        self.weights.append(numpy_helper.from_array(np.array(values, np.int64), name))
        return name

    def node(self, op: str, inputs: list[str], **attrs: object) -> str:
        out = self._name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def conv(self, x: str, cin: int, cout: int, k: tuple[int, int], stride: int = 1,
             pads: int | tuple[int, int, int, int] = 0, group: int = 1, bn: bool = True, act: str = "relu") -> str:
        fan_in = cin // group * k[0] * k[1]
        w = self.rng.normal(0, np.sqrt(2.0 / fan_in), (cout, cin // group, *k))
        b = self.rng.normal(0, 0.1, cout)
        y = self.node("Conv", [x, self._weight("w", w), self._weight("b", b)], kernel_shape=list(k),
                      strides=[stride, stride], pads=[pads] * 4 if isinstance(pads, int) else list(pads), group=group)
        if bn:
            params = [self.rng.uniform(0.5, 1.5, cout), self.rng.normal(0, 0.2, cout),
                      self.rng.normal(0, 0.2, cout), self.rng.uniform(0.5, 2.0, cout)]
            y = self.node("BatchNormalization", [y, *(self._weight("bn", p) for p in params)], epsilon=1e-5)
        return self.activation(y, act)

    def activation(self, x: str, act: str) -> str:
        if act == "relu":
            return self.node("Relu", [x])
        if act == "relu6":
            lo, hi = (self._weight("clip", np.array(v)) for v in (0.0, 6.0))
            return self.node("Clip", [x, lo, hi])
        return x

    def gemm(self, x: str, cin: int, cout: int, act: str = "none") -> str:
        w = self.rng.normal(0, np.sqrt(2.0 / cin), (cout, cin))
        y = self.node("Gemm", [x, self._weight("w", w), self._weight("b", self.rng.normal(0, 0.1, cout))], transB=1)
        return self.activation(y, act)

    def separable(self, x: str, cin: int, cout: int, act: str = "relu", last_act: str = "relu", stride: int = 1) -> str:
        # stride 2 on an even size: TFLite SAME pads the bottom/right only
        y = self.conv(x, cin, cin, (3, 3), stride, pads=1 if stride == 1 else (0, 0, 1, 1), group=cin, act=act)
        return self.conv(y, cin, cout, (1, 1), act=last_act)

    def model(self, x: str, shape: tuple[int, ...], y: str) -> onnx.ModelProto:
        inputs = [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["batch", *shape[1:]])]
        graph = helper.make_graph(self.nodes, "mcu_reference", inputs,
                                  [helper.make_tensor_value_info(y, TensorProto.FLOAT, None)], self.weights)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        return model


def mlp() -> onnx.ModelProto:
    net = _Net(1)
    h = net.gemm("input", 64, 32, "relu")
    h = net.gemm(h, 32, 16, "relu")
    out = net.node("Softmax", [net.gemm(h, 16, 10)], axis=-1)
    return net.model("input", (1, 64), out)


def ds_cnn() -> onnx.ModelProto:
    net = _Net(2)
    x = net.conv("input", 3, 8, (3, 3), stride=2, pads=1)  # 17x17 -> 9x9
    x = net.separable(x, 8, 16, act="relu6")
    y = net.separable(x, 16, 16, last_act="none")
    x = net.node("Relu", [net.node("Add", [x, y])])  # residual
    a = net.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2])
    b = net.node("AveragePool", [x], kernel_shape=[3, 3], strides=[2, 2])
    x = net.node("GlobalAveragePool", [net.node("Concat", [a, b], axis=1)])
    return net.model("input", (1, 3, 17, 17), net.gemm(net.node("Flatten", [x]), 32, 10))


def kws() -> onnx.ModelProto:
    net = _Net(3)
    pads = net.ints("pads", [0, 0, 4, 1, 0, 0, 5, 1])  # TFLite SAME for a 10x4 stride-2 conv on 49x10
    x = net.conv(net.node("Pad", ["input", pads]), 1, 64, (10, 4), stride=2)  # -> 25x5x64
    for _ in range(4):
        x = net.separable(x, 64, 64)
    x = net.node("Flatten", [net.node("GlobalAveragePool", [x])])
    return net.model("input", (1, 1, 49, 10), net.node("Softmax", [net.gemm(x, 64, 12)], axis=-1))


def vww() -> onnx.ModelProto:
    """MobileNetV1 x0.25 on a 96x96 grayscale image, two classes: the person-detection model class."""
    net = _Net(5)
    x = net.conv("input", 1, 8, (3, 3), stride=2, pads=(0, 0, 1, 1))
    for cin, cout, stride in [(8, 16, 1), (16, 32, 2), (32, 32, 1), (32, 64, 2), (64, 64, 1), (64, 128, 2),
                              *[(128, 128, 1)] * 5, (128, 256, 2), (256, 256, 1)]:
        x = net.separable(x, cin, cout, stride=stride)
    x = net.node("Flatten", [net.node("GlobalAveragePool", [x])])
    return net.model("input", (1, 1, 96, 96), net.node("Softmax", [net.gemm(x, 256, 2)], axis=-1))


def op_zoo() -> onnx.ModelProto:
    """Kernel corner cases (not an acceptance model): channels not a multiple of 4, depth multiplier 2,
    dilation, in-place 1x1 widening, padded pools, Relu6, Concat of differently-ranged tensors."""
    net = _Net(4)
    x = net.conv("input", 6, 6, (3, 3), pads=1, group=6, act="relu6")
    x = net.conv(x, 6, 12, (1, 1))  # widening 1x1: in place, walking backwards
    w = net.rng.normal(0, 0.5, (24, 1, 3, 3))
    x = net.node("Conv", [x, net._weight("w", w)], kernel_shape=[3, 3], pads=[2, 2, 2, 2], dilations=[2, 2],
                 group=12)  # depth multiplier 2, dilation 2
    x = net.conv(x, 24, 24, (3, 3), stride=2, pads=1, group=24, bn=False)  # 9x9 -> 5x5
    y = net.node("MaxPool", [x], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    x = net.node("Concat", [x, net.conv(y, 24, 8, (3, 3), pads=1, act="none")], axis=1)
    x = net.node("AveragePool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])  # 5x5 -> 3x3
    x = net.node("Flatten", [net.node("GlobalAveragePool", [x])])
    return net.model("input", (1, 6, 9, 9), net.node("Softmax", [net.gemm(x, 32, 5)], axis=-1))


def _inputs(shape: tuple[int, ...], count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 1, (count, *shape[1:])).astype(np.float32)


def reference_models(names: list[str] | None = None, eval_count: int = 16) -> list[ReferenceModel]:
    """The models of the MCU acceptance tests and benchmark, with calibration and evaluation inputs."""
    built = {"mlp": (mlp, (1, 64)), "ds_cnn": (ds_cnn, (1, 3, 17, 17)), "kws": (kws, (1, 1, 49, 10)),
             "vww": (vww, (1, 1, 96, 96)), "op_zoo": (op_zoo, (1, 6, 9, 9))}
    models = []
    for name in names or ["mlp", "ds_cnn", "kws", "digits"]:
        if name == "digits":
            calib = np.load(DIGITS / "data" / "calib.npz")["x"].astype(np.float32)
            evals = np.load(DIGITS / "data" / "eval.npz")["x"].astype(np.float32)[:eval_count]
            models.append(ReferenceModel("digits", onnx.load(DIGITS / "model.onnx"), (1, 1, 8, 8), calib, evals))
            continue
        factory, shape = built[name]
        models.append(ReferenceModel(name, factory(), shape, _inputs(shape, 64, 10), _inputs(shape, eval_count, 11)))
    return models
