"""Build stand-in ONNX models layer by layer (random, seeded weights) for planning before a model exists.

The examples use these to describe models by their architecture alone: what tierml plan needs is a
model's shapes, operations and sizes, not its trained weights.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class Net:
    """A sequential network with optional residual adds; `build()` returns the ONNX model."""

    def __init__(self, name: str, input_shape: list[int], seed: int = 0) -> None:
        self.name = name
        self.rng = np.random.default_rng(seed)
        self.input_shape = input_shape
        self.nodes: list[onnx.NodeProto] = []
        self.weights: list[onnx.TensorProto] = []
        self.tensor = "input"
        self.channels = input_shape[1]
        self.count = 0

    def _name(self, kind: str) -> str:
        self.count += 1
        return f"{kind}_{self.count}"

    def _weight(self, shape: tuple[int, ...], fan_in: int) -> str:
        name = self._name("w")
        values = (self.rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32)
        self.weights.append(numpy_helper.from_array(values, name))
        return name

    def _node(self, op: str, inputs: list[str], **attrs: object) -> str:
        out = self._name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], **attrs))
        self.tensor = out
        return out

    def conv(self, cout: int, k: int = 3, stride: int = 1, group: int = 1, act: str | None = "Relu") -> Net:
        w = self._weight((cout, self.channels // group, k, k), self.channels // group * k * k)
        b = self._weight((cout,), 1)
        self._node("Conv", [self.tensor, w, b], kernel_shape=[k, k], pads=[k // 2] * 4, strides=[stride] * 2,
                   group=group)
        self.channels = cout
        if act:
            self._node(act, [self.tensor])
        return self

    def depthwise(self, k: int = 3, stride: int = 1) -> Net:
        return self.conv(self.channels, k, stride, group=self.channels)

    def residual(self, body: list[tuple[str, dict]]) -> Net:
        """`body` is a list of (method, kwargs) applied to the current tensor, then added back to it."""
        start, channels = self.tensor, self.channels
        for method, kwargs in body:
            getattr(self, method)(**kwargs)
        assert self.channels == channels, "a residual body must keep the channel count"
        self._node("Add", [start, self.tensor])
        return self

    def pool(self) -> Net:
        self._node("GlobalAveragePool", [self.tensor])
        self._node("Flatten", [self.tensor], axis=1)
        return self

    def dense(self, units: int, act: str | None = None) -> Net:
        w = self._weight((self.channels, units), self.channels)
        b = self._weight((units,), 1)
        self._node("Gemm", [self.tensor, w, b])
        self.channels = units
        if act:
            self._node(act, [self.tensor])
        return self

    def build(self) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes, self.name, [helper.make_tensor_value_info("input", TensorProto.FLOAT, self.input_shape)],
            [helper.make_tensor_value_info(self.tensor, TensorProto.FLOAT, None)], self.weights)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                                  producer_name="tierml examples/netbuilder.py")
        model.ir_version = 8
        return model
