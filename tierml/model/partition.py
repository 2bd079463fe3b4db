"""Cutting an ONNX model in two: the valid cuts, runnable head and tail models, and the check that they agree.

A cut is a *downset* of the compute nodes (every node's producers are in it too): the head runs it on
the first tier, the tail runs the rest on the next. What crosses is a set of tensors, not a layer
index: every tensor made by the head (or a graph input) that a tail node reads, explicitly or as an
outer-scope name inside an If/Loop/Scan body. Model outputs the head makes stay where they are made.

Before cutting, the model is fixed to concrete input shapes and everything computable without the
inputs (Constant nodes, weights arithmetic, Shape chains) is folded into initializers: those values
are the same on both tiers and never need to cross.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

from tierml.errors import TiermlError
from tierml.model.control import implicit_inputs
from tierml.model.profile import folded_outputs, node_names
from tierml.model.session import make_session
from tierml.model.shapes import (
    constant_tensors,
    dummy_inputs,
    infer_tensors,
    resolve_input_shapes,
    with_input_shapes,
    with_outputs,
)
from tierml.model.tensors import TensorInfo

Shapes = Mapping[str | None, tuple[int, ...]]


@dataclass(frozen=True)
class Cut:
    """A head (node indices into `PartitionGraph.nodes`) and the tensors that cross to the tail."""

    head: frozenset[int]
    tensors: tuple[str, ...]
    nbytes: int  # fp32 / native bytes of the crossing tensors, one sample as shaped

    def key(self) -> str:
        """A short stable id: head size and the crossing tensors ('device-only' when nothing crosses)."""
        return f"{len(self.head)}:{','.join(self.tensors)}" if self.tensors else "device-only"


@dataclass
class PartitionGraph:
    """The compute DAG of a model at fixed input shapes, ready to cut."""

    model: onnx.ModelProto  # folded, fixed-shape
    inputs: dict[str, TensorInfo]
    tensors: dict[str, TensorInfo]
    names: list[str]
    reads: list[list[str]]  # non-constant tensors each node reads (explicit and outer-scope)
    producer: dict[str, int] = field(default_factory=dict)
    consumers: dict[str, list[int]] = field(default_factory=dict)

    @property
    def nodes(self) -> list[onnx.NodeProto]:
        return list(self.model.graph.node)

    @property
    def outputs(self) -> list[str]:
        return [o.name for o in self.model.graph.output]

    def preds(self, index: int) -> set[int]:
        return {self.producer[t] for t in self.reads[index] if t in self.producer}

    def succs(self, index: int) -> set[int]:
        node = self.model.graph.node[index]
        return {c for o in node.output if o for c in self.consumers.get(o, [])}

    def crossing(self, head: Iterable[int]) -> tuple[str, ...]:
        """Tensors made by the head (or graph inputs) that some tail node reads."""
        inside = set(head)
        found = set()
        for t, users in self.consumers.items():
            made_in_head = t in self.inputs or self.producer.get(t) in inside
            if made_in_head and any(u not in inside for u in users):
                found.add(t)
        return tuple(sorted(found))

    def cut(self, head: Iterable[int]) -> Cut:
        """The cut whose head is `head`; raises if a head node reads something only the tail makes."""
        inside = frozenset(head)
        for i in inside:
            missing = self.preds(i) - inside
            if missing:
                raise TiermlError(f"not a valid cut: head node '{self.names[i]}' reads the output of tail node "
                                  f"'{self.names[min(missing)]}'; a head must include every producer it reads")
        tensors = self.crossing(inside)
        return Cut(inside, tensors, sum(self.tensors[t].nbytes for t in tensors))

    def prefixes(self, order: list[int] | None = None) -> list[Cut]:
        """One cut after each node of an execution order (n + 1 cuts, device-only and server-only included).

        `order` is any topological order (default: the model's own); different orders reach different downsets.
        """
        order = list(range(len(self.names))) if order is None else order
        return [self.cut(order[:k]) for k in range(len(order) + 1)]

    def random_order(self, seed: int) -> list[int]:
        """A random topological order (Kahn's algorithm picking a random ready node each step)."""
        rng = random.Random(seed)
        waiting = [len(self.preds(i)) for i in range(len(self.names))]
        ready = [i for i, w in enumerate(waiting) if w == 0]
        order: list[int] = []
        while ready:
            node = ready.pop(rng.randrange(len(ready)))
            order.append(node)
            for nxt in sorted(self.succs(node)):
                waiting[nxt] -= 1
                if waiting[nxt] == 0:
                    ready.append(nxt)
        return order

    def downsets(self, limit: int) -> list[Cut] | None:
        """Every valid cut (every downset), or None when there are more than `limit`."""
        n = len(self.names)
        preds = [self.preds(i) for i in range(n)]
        start: frozenset[int] = frozenset()
        seen = {start}
        queue = deque([start])
        while queue:
            head = queue.popleft()
            for i in range(n):
                if i not in head and preds[i] <= head:
                    grown = head | {i}
                    if grown not in seen:
                        if len(seen) >= limit:
                            return None
                        seen.add(grown)
                        queue.append(grown)
        return [self.cut(h) for h in sorted(seen, key=lambda h: (len(h), sorted(h)))]

    def cuts(self, limit: int = 2000) -> tuple[list[Cut], bool]:
        """All downsets when there are at most `limit`, else every prefix; and whether the list is exhaustive."""
        every = self.downsets(limit)
        return (every, True) if every is not None else (self.prefixes(), False)

    def head_model(self, cut: Cut) -> onnx.ModelProto | None:
        """The head as a model: graph inputs it reads -> crossing tensors + the model outputs it makes."""
        if not cut.head:
            return None
        outs = [o for o in self.outputs if self.producer.get(o) in cut.head]
        wanted = [t for t in cut.tensors if t not in self.inputs] + outs
        inputs = [t for t in self.inputs if any(u in cut.head for u in self.consumers.get(t, []))]
        return self.submodel(sorted(cut.head), inputs, _unique(wanted), "head")

    def tail_model(self, cut: Cut) -> onnx.ModelProto | None:
        """The tail as a model: crossing tensors -> the model outputs the tail makes."""
        rest = [i for i in range(len(self.names)) if i not in cut.head]
        if not rest:
            return None
        outs = [o for o in self.outputs if self.producer.get(o) not in cut.head]
        return self.submodel(rest, list(cut.tensors), outs, "tail")

    def submodel(self, nodes: list[int], inputs: list[str], outputs: list[str], name: str) -> onnx.ModelProto:
        """A runnable model of some nodes (in execution order), with the initializers they read."""
        source = self.model.graph
        chosen = [source.node[i] for i in nodes]
        needed = {t for node in chosen for t in [*node.input, *implicit_inputs(node)] if t}
        inits = [init for init in source.initializer if init.name in needed]
        made = {o for node in chosen for o in node.output if o}
        info = [self._value_info(t) for t in sorted(made - set(outputs)) if t in self.tensors]
        graph = helper.make_graph(chosen, f"{source.name or 'model'}_{name}",
                                  [self._value_info(t) for t in inputs], [self._value_info(t) for t in outputs],
                                  inits, value_info=info)
        sub = helper.make_model(graph, opset_imports=list(self.model.opset_import), ir_version=self.model.ir_version)
        sub.functions.extend(self.model.functions)
        return sub

    def _value_info(self, name: str) -> onnx.ValueInfoProto:
        t = self.tensors[name]
        return helper.make_tensor_value_info(name, t.elem_type, list(t.shape))


def partition_graph(model: onnx.ModelProto, input_shapes: Shapes | None = None) -> PartitionGraph:
    """The partition graph of `model` at the given input shapes (dynamic dims must be given)."""
    inputs = resolve_input_shapes(model, input_shapes)
    folded = fold_constants(model, inputs)
    tensors = infer_tensors(folded, inputs)
    constants = {init.name for init in folded.graph.initializer}
    reads = [[t for t in _unique([*n.input, *implicit_inputs(n)]) if t and t not in constants]
             for n in folded.graph.node]
    names = node_names(folded.graph)
    for node, name in zip(folded.graph.node, names, strict=True):
        node.name = name  # the profiler reports per-node times by name
    graph = PartitionGraph(folded, inputs, tensors, names, reads)
    for index, node in enumerate(folded.graph.node):
        for t in node.output:
            if t:
                graph.producer[t] = index
        for t in reads[index]:
            graph.consumers.setdefault(t, []).append(index)
    unknown = sorted({t for r in reads for t in r if t not in tensors} | {o for o in graph.outputs if o not in tensors})
    if unknown:
        raise TiermlError(f"no shape known for tensor '{unknown[0]}' ({len(unknown)} in all): a cut must know every "
                          "tensor's size; give the inputs' shapes with --input-shape")
    return graph


def fold_constants(model: onnx.ModelProto, inputs: Mapping[str, TensorInfo]) -> onnx.ModelProto:
    """The model at fixed input shapes with every input-independent node replaced by its value."""
    fixed = with_input_shapes(model, inputs)
    graph = fixed.graph
    constants = set(constant_tensors(graph)) | {init.name for init in graph.initializer}
    folded = folded_outputs(graph, constants) - {init.name for init in graph.initializer}
    if not folded:
        return fixed
    keep = [n for n in graph.node if not (set(o for o in n.output if o) <= folded)]
    read = {t for n in keep for t in [*n.input, *implicit_inputs(n)] if t} | {o.name for o in graph.output}
    frontier = sorted(read & folded)
    values = _evaluate(fixed, inputs, frontier) if frontier else {}
    out = onnx.ModelProto()
    out.CopyFrom(fixed)
    del out.graph.node[:]
    out.graph.node.extend(keep)
    out.graph.initializer.extend(numpy_helper.from_array(values[name], name) for name in frontier)
    used = {t for n in keep for t in [*n.input, *implicit_inputs(n)] if t} | {o.name for o in graph.output}
    kept = [init for init in out.graph.initializer if init.name in used]
    del out.graph.initializer[:]
    out.graph.initializer.extend(kept)
    return out


def _evaluate(model: onnx.ModelProto, inputs: Mapping[str, TensorInfo], names: list[str]) -> dict[str, np.ndarray]:
    probe = with_outputs(model, names)
    session = make_session(probe, threads=None, optimization="none")
    return dict(zip(names, session.run(names, dummy_inputs(inputs)), strict=True))


def run_split(head: ort.InferenceSession | None, tail: ort.InferenceSession | None,
              feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Outputs of head then tail, fed by name, as one model's outputs."""
    values = dict(feeds)
    if head is not None:
        wanted = [i.name for i in head.get_inputs()]
        values.update(zip([o.name for o in head.get_outputs()],
                          head.run(None, {k: values[k] for k in wanted}), strict=True))
    if tail is not None:
        wanted = [i.name for i in tail.get_inputs()]
        values.update(zip([o.name for o in tail.get_outputs()],
                          tail.run(None, {k: values[k] for k in wanted}), strict=True))
    return values


@dataclass(frozen=True)
class Check:
    """How far head -> tail is from the full model on one cut."""

    cut: Cut
    max_abs: float
    max_rel: float  # max |Δ| / max(1, max |reference|) per output

    @property
    def ok(self) -> bool:
        return self.max_rel <= 1e-5


def verify(graph: PartitionGraph, cut: Cut, feeds: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray],
           optimization: str = "all") -> Check:
    """Run head then tail on `feeds` and compare every model output with `reference` (the full model's)."""
    sessions = [make_session(m, optimization=optimization) if m is not None else None
                for m in (graph.head_model(cut), graph.tail_model(cut))]
    got = run_split(sessions[0], sessions[1], feeds)
    worst_abs = worst_rel = 0.0
    for name, want in reference.items():
        diff = float(np.max(np.abs(got[name].astype(np.float64) - want.astype(np.float64)), initial=0.0))
        worst_abs = max(worst_abs, diff)
        worst_rel = max(worst_rel, diff / max(1.0, float(np.max(np.abs(want), initial=0.0))))
    return Check(cut, worst_abs, worst_rel)


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
