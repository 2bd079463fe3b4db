"""What tierml's answers are checked against, computed independently of tierml's own analysis."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort

from tierml.model.session import make_session
from tierml.model.shapes import dummy_inputs, resolve_input_shapes


def full_outputs(model: onnx.ModelProto, feeds: dict[str, np.ndarray], optimization: str = "all"
                 ) -> dict[str, np.ndarray]:
    session = make_session(model, optimization=optimization)
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds), strict=True))


def run_all_tensors(model: onnx.ModelProto, shapes: dict) -> dict[str, int]:
    """Bytes of every top-level tensor, read off a real ORT run with all of them exposed as outputs."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    present = {o.name for o in probe.graph.output}
    for node in probe.graph.node:
        for name in node.output:
            if name and name not in present:
                probe.graph.output.add().name = name
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    feeds = dummy_inputs(resolve_input_shapes(model, shapes))
    names = [o.name for o in session.get_outputs()]
    sizes = {n: v.nbytes for n, v in zip(names, session.run(names, feeds), strict=True)}
    sizes.update({n: v.nbytes for n, v in feeds.items()})
    return sizes


def executor_peak(model: onnx.ModelProto, sizes: dict[str, int]) -> int:
    """An executor with reference counts, written from the graph itself (subgraph reads included).

    Like an optimizing runtime at fixed input shapes, it computes Constant nodes, Shape/Size and
    anything derived only from constants once at load time: those are not activations.
    """
    constant = {i.name for i in model.graph.initializer}
    def reads(node: onnx.NodeProto) -> set[str]:
        found = {i for i in node.input if i}
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                inner_defined = {i.name for i in attr.g.input} | {o for n in attr.g.node for o in n.output}
                found |= {i for n in attr.g.node for i in reads(n)} - inner_defined
        return found
    steps = []
    for node in model.graph.node:
        inputs = reads(node)
        if node.op_type in ("Constant", "Shape", "Size") or (inputs and inputs <= constant):
            constant |= set(node.output)
            continue
        steps.append((inputs - constant, set(node.output)))
    remaining: dict[str, int] = {}
    for inputs, _ in steps:
        for name in inputs:
            remaining[name] = remaining.get(name, 0) + 1
    outputs = {o.name for o in model.graph.output}
    live = {i.name for i in model.graph.input} - constant
    peak = 0
    for inputs, produced in steps:
        live |= produced
        peak = max(peak, sum(sizes[t] for t in live))
        for name in inputs:
            remaining[name] -= 1
        live = {t for t in live if remaining.get(t, 0) > 0 or t in outputs}
    return peak
