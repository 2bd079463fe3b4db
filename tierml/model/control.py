"""Control flow (If, Loop, Scan): what their bodies read from the outer graph, and what they cost."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import onnx
from onnx import numpy_helper

from tierml.model.costs import Cost
from tierml.model.tensors import TensorInfo

CONTROL_OPS = frozenset({"If", "Loop", "Scan"})


def subgraphs(node: onnx.NodeProto) -> list[onnx.GraphProto]:
    found = []
    for attr in node.attribute:
        if attr.type == onnx.AttributeProto.GRAPH:
            found.append(attr.g)
        elif attr.type == onnx.AttributeProto.GRAPHS:
            found.extend(attr.graphs)
    return found


def implicit_inputs(node: onnx.NodeProto) -> list[str]:
    """Outer-scope tensors a node's bodies read (recursively): real inputs that the node does not list."""
    used: set[str] = set()
    defined: set[str] = set()
    for graph in subgraphs(node):
        defined |= {i.name for i in graph.input} | {i.name for i in graph.initializer}
        for inner in graph.node:
            used |= {i for i in inner.input if i}
            used |= set(implicit_inputs(inner))
            defined |= {o for o in inner.output if o}
    return sorted(used - defined)


def scalar_constants(graph: onnx.GraphProto) -> dict[str, int]:
    """Integer scalars stored in the graph (Loop trip counts are usually one)."""
    found: dict[str, int] = {}
    tensors = [(t.name, t) for t in graph.initializer]
    tensors += [(n.output[0], a.t) for n in graph.node if n.op_type == "Constant" for a in n.attribute
                if a.name == "value"]
    for name, tensor in tensors:
        if tensor.data_type in (onnx.TensorProto.INT64, onnx.TensorProto.INT32) and len(tensor.dims) <= 1 and (
                not tensor.dims or tensor.dims[0] == 1):
            found[name] = int(numpy_helper.to_array(tensor).reshape(-1)[0])
    return found


@dataclass(frozen=True)
class Body:
    cost: Cost
    unknown: int  # body nodes whose output shapes were unknown (not costed)


NodeCost = Callable[[onnx.NodeProto], Cost]


def body_cost(graph: onnx.GraphProto, tensors: Mapping[str, TensorInfo], cost_of: NodeCost) -> Body:
    macs = other = unknown = 0
    for node in graph.node:
        unknown += any(o and o not in tensors for o in node.output)
        cost = cost_of(node)
        macs, other = macs + cost.macs, other + cost.other_flops
    return Body(Cost(macs, other), unknown)


def trip_count(node: onnx.NodeProto, tensors: Mapping[str, TensorInfo], scalars: Mapping[str, int]) -> int | None:
    """Iterations of a Loop (constant M) or a Scan (length of its first scanned input); None if unknown."""
    if node.op_type == "Loop":
        return scalars.get(node.input[0]) if node.input and node.input[0] else None
    if node.op_type == "Scan":
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        scanned = int(attrs.get("num_scan_inputs", 0))
        if not scanned:
            return None
        first = tensors.get(node.input[len(node.input) - scanned])
        axes = list(attrs.get("scan_input_axes", [0]))
        return first.shape[axes[0]] if first is not None and first.shape else None
    return None


def control_cost(node: onnx.NodeProto, tensors: Mapping[str, TensorInfo], scalars: Mapping[str, int],
                 cost_of: NodeCost) -> Cost:
    """If: the costlier branch; Loop/Scan: the body times the trip count (once when it is not known)."""
    bodies = [body_cost(g, tensors, cost_of) for g in subgraphs(node)]
    if not bodies:
        return Cost()
    unknown = sum(b.unknown for b in bodies)
    missing = f"; {unknown} body nodes with unknown shapes not counted" if unknown else ""
    if node.op_type == "If":
        costliest = max(bodies, key=lambda b: b.cost.flops).cost
        return Cost(costliest.macs, costliest.other_flops, f"If: the costlier branch is counted{missing}")
    body = bodies[0].cost
    trips = trip_count(node, tensors, scalars)
    if trips is None:
        return Cost(body.macs, body.other_flops, f"{node.op_type}: trip count unknown, one iteration counted{missing}")
    note = f"{node.op_type}: body x {trips} iterations{missing}" if missing else ""
    return Cost(body.macs * trips, body.other_flops * trips, note)
