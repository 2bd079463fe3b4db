"""Models for the serving benchmark and tests: a tiny MLP (HTTP-bound) and a dense stack (compute-bound)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def mlp(widths: tuple[int, ...] = (64, 32, 10), seed: int = 0) -> onnx.ModelProto:
    """Gemm+Relu layers `widths[0] -> ... -> widths[-1]`, input `x` [batch, widths[0]], output `y`."""
    rng = np.random.default_rng(seed)
    nodes, weights = [], []
    current = "x"
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(widths)):
        w = (rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(np.float32)
        bias = np.zeros(fan_out, np.float32)
        weights += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(bias, f"b{i}")]
        last = i == len(widths) - 2
        out = "y" if last else f"h{i}"
        nodes.append(helper.make_node("Gemm", [current, f"w{i}", f"b{i}"], [out if last else f"g{i}"]))
        if not last:
            nodes.append(helper.make_node("Relu", [f"g{i}"], [out]))
        current = out
    graph = helper.make_graph(nodes, "mlp",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", widths[0]])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", widths[-1]])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def write_model(repo: Path, name: str, model: onnx.ModelProto, config: str = "", version: int = 1) -> Path:
    """Put `model` at `<repo>/<name>/<version>/model.onnx` (and `config.pbtxt` when given)."""
    folder = repo / name / str(version)
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(folder / "model.onnx"))
    if config:
        (repo / name / "config.pbtxt").write_text(config)
    return folder / "model.onnx"
