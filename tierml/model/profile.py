"""ModelProfile: what a model costs, node by node and in total, at concrete input shapes."""

from __future__ import annotations

import platform
from collections import Counter
from collections.abc import Mapping, Sequence

import onnx
import onnx.inliner
import onnxruntime as ort
from pydantic import BaseModel

from tierml.model.control import CONTROL_OPS, control_cost, implicit_inputs, scalar_constants
from tierml.model.costs import Cost, NodeView, attribute_parameters, node_cost, op_class
from tierml.model.layout import Reorder, runtime_reorders
from tierml.model.liveness import peak_memory
from tierml.model.shapes import constant_tensors, infer_tensors, resolve_input_shapes, with_input_shapes
from tierml.model.support import TierSupport, check_support
from tierml.model.tensors import TensorInfo, int8_bytes

# Element types that hold shapes and indices rather than learned weights.
_INDEX_TYPES = {onnx.TensorProto.INT64, onnx.TensorProto.BOOL, onnx.TensorProto.STRING}


def is_parameter(info: TensorInfo) -> bool:
    """Learned weights: stored constants of numeric type with more than one element (scalars are
    hyper-parameters such as clip bounds, int64 tensors are shapes and axes)."""
    return info.elem_type not in _INDEX_TYPES and info.numel > 1
# Ops whose value does not depend on their input's data once shapes are fixed.
_SHAPE_ONLY = {"Shape", "Size"}
_NONDETERMINISTIC = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial",
                     "Bernoulli"}


class NodeProfile(BaseModel):
    """One node's cost at the profile's input shapes."""

    index: int
    name: str
    op_type: str
    domain: str = ""
    op_class: str
    inputs: list[str]
    outputs: list[str]
    input_shapes: list[list[int] | None] = []  # aligned with inputs; None where unknown
    output_shapes: list[list[int] | None] = []
    const_inputs: list[str] = []  # inputs fixed at load time (weights, shapes)
    attrs: dict[str, int | float | str | list[int] | list[float]] = {}
    folded: bool  # value fixed once input shapes are: computed at load time, never per inference
    macs: int
    other_flops: int
    params: int
    input_bytes: int  # activations read
    weight_bytes: int  # constants read
    output_bytes: int
    int8_bytes_moved: int = 0  # bytes moved if every floating-point tensor were int8
    note: str = ""

    @property
    def flops(self) -> int:
        return 2 * self.macs + self.other_flops

    @property
    def bytes_moved(self) -> int:
        return self.input_bytes + self.weight_bytes + self.output_bytes

    @property
    def intensity(self) -> float:
        """FLOPs per byte moved (arithmetic intensity)."""
        return self.flops / self.bytes_moved if self.bytes_moved else 0.0


class ParamGroup(BaseModel):
    dtype: str
    count: int
    bytes: int


class Memory(BaseModel):
    """Weights plus the peak of live activations under the stated execution order."""

    weight_bytes: int
    peak_activation_bytes: int
    peak_activation_bytes_int8: int  # the same peak with floating-point activations held as int8
    peak_node: str
    live_at_peak: list[str]
    largest_tensor: str
    largest_tensor_bytes: int
    timeline: list[int] = []  # live activation bytes while each executed node runs
    order: str = "graph order (the topological order stored in the ONNX file)"

    @property
    def peak_total_bytes(self) -> int:
        return self.weight_bytes + self.peak_activation_bytes


class ModelProfile(BaseModel):
    """Static profile of a model; `host_latency` is filled in when it has been measured."""

    model: str
    sha256: str
    opsets: dict[str, int]
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    nodes: list[NodeProfile]
    params: int
    params_by_dtype: list[ParamGroup]
    macs: int
    other_flops: int
    memory: Memory
    op_histogram: dict[str, int]
    tiers: list[TierSupport]
    runtime_reorders: list[Reorder] = []  # layout conversions ORT inserts on the host that profiled it
    runtime: str = ""  # the ORT version and CPU those conversions are for
    notes: list[str] = []

    @property
    def flops(self) -> int:
        return 2 * self.macs + self.other_flops

    @property
    def weight_bytes(self) -> int:
        return self.memory.weight_bytes

    def tier(self, name: str) -> TierSupport:
        return next(t for t in self.tiers if t.tier == name)


def node_names(graph: onnx.GraphProto) -> list[str]:
    """Unique, stable names for the graph's nodes (exporters often leave names empty or repeat them)."""
    seen: Counter[str] = Counter()
    names = []
    for index, node in enumerate(graph.node):
        base = node.name or f"{node.op_type}_{index}"
        seen[base] += 1
        names.append(base if seen[base] == 1 else f"{base}#{seen[base]}")
    return names


def folded_outputs(graph: onnx.GraphProto, constants: set[str]) -> set[str]:
    """Tensors whose values are fixed at load time: constants and everything computed only from them."""
    fixed = set(constants)
    for node in graph.node:
        if node.op_type in _NONDETERMINISTIC:
            continue
        inputs = [i for i in node.input if i] + implicit_inputs(node)
        if node.op_type in _SHAPE_ONLY or node.op_type == "Constant" or (inputs and all(i in fixed for i in inputs)):
            fixed.update(o for o in node.output if o)
    return fixed


def analyze(
    model: onnx.ModelProto,
    input_shapes: Mapping[str | None, tuple[int, ...]] | None = None,
    source: str = "<memory>",
    sha256: str = "",
) -> ModelProfile:
    """Profile `model` at the given input shapes (dynamic dims must be resolved by them)."""
    if model.functions:  # model-local functions are costed through their bodies
        model = onnx.inliner.inline_local_functions(model)
    graph = model.graph
    inputs = resolve_input_shapes(model, input_shapes)
    tensors = infer_tensors(model, inputs)
    stored = constant_tensors(graph)
    fixed = folded_outputs(graph, set(stored))
    scalars = scalar_constants(graph)
    names = node_names(graph)
    nodes = [
        _profile_node(index, name, node, tensors, set(stored), fixed, scalars)
        for index, (name, node) in enumerate(zip(names, graph.node, strict=True))
    ]
    live_steps = [(n.inputs, n.outputs) for n in nodes if not n.folded]
    live_names = [n.name for n in nodes if not n.folded]
    live = {name: info for name, info in tensors.items() if name not in fixed and name not in stored}
    activations = {name: info.nbytes for name, info in live.items()}
    outputs = [o.name for o in graph.output]
    peak = peak_memory(live_steps, activations, inputs.keys(), outputs)
    peak_int8 = peak_memory(live_steps, {name: int8_bytes(info) for name, info in live.items()}, inputs.keys(),
                            outputs)
    weights = list(stored.values())
    in_attributes = sum(attribute_parameters(node) for node in graph.node)
    largest = max(activations.items(), key=lambda kv: kv[1], default=("", 0))
    opsets = {o.domain or "": o.version for o in model.opset_import}
    return ModelProfile(
        model=source,
        sha256=sha256,
        opsets=opsets,
        inputs=list(inputs.values()),
        outputs=[tensors[o] for o in outputs if o in tensors],
        nodes=nodes,
        params=sum(w.numel for w in weights if is_parameter(w)) + in_attributes,
        params_by_dtype=_params_by_dtype(weights, in_attributes),
        macs=sum(n.macs for n in nodes if not n.folded),
        other_flops=sum(n.other_flops for n in nodes if not n.folded),
        memory=Memory(
            weight_bytes=sum(w.nbytes for w in weights) + 4 * in_attributes,
            peak_activation_bytes=peak.peak_bytes,
            peak_activation_bytes_int8=peak_int8.peak_bytes,
            peak_node=live_names[peak.step] if peak.step >= 0 else "",
            live_at_peak=list(peak.live),
            largest_tensor=largest[0],
            largest_tensor_bytes=largest[1],
            timeline=list(peak.timeline),
        ),
        op_histogram=dict(Counter(n.op_type for n in nodes if n.op_type != "Constant").most_common()),
        tiers=check_support(list(zip(names, graph.node, strict=True)), {n.name for n in nodes if n.folded},
                            tensors, fixed, opsets),
        runtime_reorders=runtime_reorders(with_input_shapes(model, inputs), tensors),
        runtime=f"onnxruntime {ort.__version__} CPU, ORT_ENABLE_ALL, on {platform.machine()}",
        notes=[f"{n.name}: {n.note}" for n in nodes if n.note and not n.folded],
    )


def _params_by_dtype(weights: Sequence[TensorInfo], in_attributes: int) -> list[ParamGroup]:
    groups: dict[str, ParamGroup] = {}

    def add(dtype: str, count: int, nbytes: int) -> None:
        group = groups.setdefault(dtype, ParamGroup(dtype=dtype, count=0, bytes=0))
        group.count += count
        group.bytes += nbytes

    for w in weights:
        add(w.dtype, w.numel, w.nbytes)
    if in_attributes:  # ai.onnx.ml ops keep float coefficients in attributes
        add("float", in_attributes, 4 * in_attributes)
    return sorted(groups.values(), key=lambda g: -g.bytes)


def _profile_node(
    index: int,
    name: str,
    node: onnx.NodeProto,
    tensors: Mapping[str, TensorInfo],
    stored: set[str],
    fixed: set[str],
    scalars: Mapping[str, int],
) -> NodeProfile:
    ins = [tensors.get(i) if i else None for i in node.input]
    outs = [tensors.get(o) if o else None for o in node.output]
    cost = _cost(node, tensors, scalars)
    unknown = [o for o, info in zip(node.output, outs, strict=True) if o and info is None]
    note = cost.note or (f"shape of {unknown[0]} unknown" if unknown else "")
    hidden = implicit_inputs(node)  # what If/Loop/Scan bodies read from the outer graph
    distinct = {i: info for i, info in zip([*node.input, *hidden], [*ins, *(tensors.get(h) for h in hidden)],
                                           strict=True) if i and info is not None}
    weight_index = 3 if node.op_type == "QLinearConv" else 1
    weight = ins[weight_index] if len(ins) > weight_index and node.input[weight_index] in fixed else None
    moved = [*distinct.values(), *(t for t in outs if t is not None)]
    return NodeProfile(
        index=index,
        name=name,
        op_type=node.op_type,
        domain=node.domain,
        op_class=op_class(node, weight),
        inputs=[*(i for i in node.input if i), *hidden],
        outputs=[o for o in node.output if o],
        input_shapes=[list(t.shape) if t else None for i, t in zip(node.input, ins, strict=True) if i],
        output_shapes=[list(t.shape) if t else None for o, t in zip(node.output, outs, strict=True) if o],
        const_inputs=[i for i in dict.fromkeys([*node.input, *hidden]) if i and i in fixed],
        attrs=_simple_attributes(node),
        folded=bool(node.output) and all(o in fixed for o in node.output if o),
        macs=cost.macs,
        other_flops=cost.other_flops,
        params=sum(t.numel for i, t in distinct.items() if i in stored and is_parameter(t))
        + attribute_parameters(node),
        input_bytes=sum(t.nbytes for i, t in distinct.items() if i not in fixed),
        weight_bytes=sum(t.nbytes for i, t in distinct.items() if i in fixed),
        output_bytes=sum(t.nbytes for t in outs if t is not None),
        int8_bytes_moved=sum(int8_bytes(t) for t in moved),
        note=note,
    )


def _simple_attributes(node: onnx.NodeProto) -> dict[str, int | float | str | list[int] | list[float]]:
    """Scalar and list attributes (what layout and fusion rules look at); tensors and graphs are left out."""
    kinds = {onnx.AttributeProto.INT, onnx.AttributeProto.FLOAT, onnx.AttributeProto.STRING,
             onnx.AttributeProto.INTS, onnx.AttributeProto.FLOATS}
    found: dict[str, int | float | str | list[int] | list[float]] = {}
    for attr in node.attribute:
        if attr.type in kinds:
            value = onnx.helper.get_attribute_value(attr)
            found[attr.name] = value.decode(errors="replace") if isinstance(value, bytes) else (
                list(value) if isinstance(value, list | tuple) else value)
    return found


def _cost(node: onnx.NodeProto, tensors: Mapping[str, TensorInfo], scalars: Mapping[str, int]) -> Cost:
    if node.op_type in CONTROL_OPS:
        return control_cost(node, tensors, scalars, lambda inner: _cost(inner, tensors, scalars))
    ins = [tensors.get(i) if i else None for i in node.input]
    outs = [tensors.get(o) if o else None for o in node.output]
    return node_cost(NodeView(node, ins, outs))
