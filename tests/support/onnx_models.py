"""Small ONNX models built in code, for tests that need a graph of a known shape."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def make_model(nodes: list[onnx.NodeProto], inputs: dict[str, tuple], outputs: list[str],
               weights: dict[str, np.ndarray] | None = None, opset: int = 17,
               input_type: int = TensorProto.FLOAT) -> onnx.ModelProto:
    """A small ONNX model from nodes; inputs map name -> shape (dims may be strings for dynamic)."""
    graph = helper.make_graph(
        nodes, "test",
        [helper.make_tensor_value_info(n, input_type, list(s)) for n, s in inputs.items()],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
        [numpy_helper.from_array(v, n) for n, v in (weights or {}).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def residual_model() -> onnx.ModelProto:
    """x -> conv1 -> r1 -> [conv2 -> r2 -> conv3] + proj(r1) -> relu -> pool -> flatten -> matmul."""
    rng = np.random.default_rng(0)
    weights = {
        "w1": rng.standard_normal((8, 3, 3, 3)).astype(np.float32),
        "w2": rng.standard_normal((8, 8, 3, 3)).astype(np.float32),
        "w3": rng.standard_normal((8, 8, 3, 3)).astype(np.float32),
        "wp": rng.standard_normal((8, 8, 1, 1)).astype(np.float32),
        "fc": rng.standard_normal((8, 4)).astype(np.float32),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], pads=[1, 1, 1, 1], name="conv2"),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("Conv", ["r2", "w3"], ["c3"], pads=[1, 1, 1, 1], name="conv3"),
        helper.make_node("Conv", ["r1", "wp"], ["p"], name="proj"),
        helper.make_node("Add", ["c3", "p"], ["a1"], name="add"),
        helper.make_node("Relu", ["a1"], ["r3"], name="relu3"),
        helper.make_node("GlobalAveragePool", ["r3"], ["g"], name="pool"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("MatMul", ["f", "fc"], ["logits"], name="fc"),
    ]
    return make_model(nodes, {"x": (1, 3, 8, 8)}, ["logits"], weights)


def blocked_graph() -> onnx.ModelProto:
    """Convolutions ONNX Runtime runs in its blocked NCHWc layout, with plain-layout ops between them."""
    rng = np.random.default_rng(0)

    def w(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(np.float32)

    c = 32
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1] * 4),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1] * 4),
             helper.make_node("Add", ["c2", "r1"], ["res"]),           # residual add: fused into the conv
             helper.make_node("Add", ["res", "three"], ["h"]),          # constant operand: plain layout again
             helper.make_node("Mul", ["h", "res"], ["m"]),
             helper.make_node("Conv", ["m", "w3", "b3"], ["c3"], group=c, pads=[1] * 4),
             helper.make_node("Transpose", ["c3"], ["t"], perm=[0, 2, 3, 1])]
    weights = {"w1": w(c, 16, 3, 3), "b1": w(c), "w2": w(c, c, 3, 3), "b2": w(c), "three": np.array(3, np.float32),
               "w3": w(c, 1, 3, 3), "b3": w(c)}
    return make_model(nodes, {"x": (1, 16, 20, 20)}, ["t"], weights)
