"""Concrete shapes: parse user input shapes, fix dynamic dims, and infer every tensor's shape."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import numpy as np
import onnx
from onnx import shape_inference

from tierml.errors import TiermlError
from tierml.model.tensors import TensorInfo

_SHAPE_RE = re.compile(r"^(?:(?P<name>[^=]+)=)?(?P<dims>\d+(?:[x,]\d+)*)$")


def parse_input_shapes(items: Iterable[str]) -> dict[str | None, tuple[int, ...]]:
    """Parse `NAME=1x3x224x224` (or a bare `1x3x224x224` for a single-input model)."""
    shapes: dict[str | None, tuple[int, ...]] = {}
    for item in items:
        match = _SHAPE_RE.match(item.strip())
        if not match:
            raise TiermlError(
                f"bad input shape '{item}': expected NAME=D1xD2x... with positive integers, "
                "e.g. --input-shape x=1x3x224x224 (or 1x3x224x224 for a single-input model)"
            )
        dims = tuple(int(d) for d in re.split("[x,]", match["dims"]))
        if any(d <= 0 for d in dims):
            raise TiermlError(f"bad input shape '{item}': every dim must be a positive integer")
        name = match["name"].strip() if match["name"] else None
        if name in shapes:
            raise TiermlError(f"input shape for '{name or 'the single input'}' is given twice")
        shapes[name] = dims
    return shapes


def graph_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    """The graph inputs a caller feeds (older exporters also list initializers as inputs)."""
    initializers = {init.name for init in model.graph.initializer}
    return [vi for vi in model.graph.input if vi.name not in initializers]


def resolve_input_shapes(
    model: onnx.ModelProto, given: Mapping[str | None, tuple[int, ...]] | None = None
) -> dict[str, TensorInfo]:
    """Every graph input with a concrete shape: static dims from the model, dynamic ones from `given`."""
    given = dict(given or {})
    inputs = graph_inputs(model)
    names = [vi.name for vi in inputs]
    if None in given:
        if len(inputs) != 1:
            raise TiermlError(
                f"the model has {len(inputs)} inputs ({', '.join(names)}): name each one, "
                f"e.g. --input-shape {names[0] if names else 'x'}=1x3x224x224"
            )
        given[names[0]] = given.pop(None)
    unknown = sorted(set(given) - set(names))  # type: ignore[arg-type]
    if unknown:
        raise TiermlError(
            f"--input-shape names unknown input '{unknown[0]}'; the model's inputs are: {', '.join(names)}"
        )
    return {vi.name: _resolve_one(vi, given.get(vi.name)) for vi in inputs}


def _resolve_one(vi: onnx.ValueInfoProto, shape: tuple[int, ...] | None) -> TensorInfo:
    ttype = vi.type.tensor_type
    if not vi.type.HasField("tensor_type"):
        raise TiermlError(f"input '{vi.name}' is not a tensor (sequence/map inputs are not supported)")
    dims = list(ttype.shape.dim) if ttype.HasField("shape") else None
    if shape is not None:
        if dims is not None and len(dims) != len(shape):
            raise TiermlError(
                f"input '{vi.name}' has rank {len(dims)} ({_show_dims(dims)}) but --input-shape gives "
                f"rank {len(shape)} ({'x'.join(map(str, shape))})"
            )
        for axis, (dim, value) in enumerate(zip(dims or [], shape, strict=False)):
            if dim.HasField("dim_value") and dim.dim_value > 0 and dim.dim_value != value:
                raise TiermlError(
                    f"input '{vi.name}' dim {axis} is fixed to {dim.dim_value} in the model but "
                    f"--input-shape gives {value}"
                )
        return TensorInfo(name=vi.name, elem_type=ttype.elem_type, shape=tuple(shape))
    if dims is None:
        raise TiermlError(
            f"input '{vi.name}' has no shape in the model; give it with --input-shape {vi.name}=D1xD2x..."
        )
    for axis, dim in enumerate(dims):
        if not (dim.HasField("dim_value") and dim.dim_value > 0):
            label = f" ('{dim.dim_param}')" if dim.dim_param else ""
            example = "x".join(str(d.dim_value) if d.dim_value > 0 else "N" for d in dims)
            raise TiermlError(
                f"input '{vi.name}' dim {axis}{label} is dynamic ({_show_dims(dims)}); "
                f"fix it with --input-shape {vi.name}={example} (N = the size you will run)"
            )
    return TensorInfo(name=vi.name, elem_type=ttype.elem_type, shape=tuple(d.dim_value for d in dims))


def _show_dims(dims: list[onnx.TensorShapeProto.Dimension]) -> str:
    return "x".join(str(d.dim_value) if d.dim_value > 0 else (d.dim_param or "?") for d in dims)


def constant_tensors(graph: onnx.GraphProto) -> dict[str, TensorInfo]:
    """Initializers and Constant-node outputs: the weights stored in the file."""
    found: dict[str, TensorInfo] = {}
    for init in graph.initializer:
        found[init.name] = TensorInfo(name=init.name, elem_type=init.data_type, shape=tuple(init.dims))
    for node in graph.node:
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            value = _constant_value_shape(node)
            if value is not None:
                found[node.output[0]] = TensorInfo(name=node.output[0], elem_type=value[0], shape=value[1])
    return found


def _constant_value_shape(node: onnx.NodeProto) -> tuple[int, tuple[int, ...]] | None:
    for attr in node.attribute:
        if attr.name == "value":
            return attr.t.data_type, tuple(attr.t.dims)
        if attr.name in ("value_float", "value_int"):
            return (onnx.TensorProto.FLOAT if attr.name == "value_float" else onnx.TensorProto.INT64), ()
        if attr.name in ("value_floats", "value_ints"):
            kind = onnx.TensorProto.FLOAT if attr.name == "value_floats" else onnx.TensorProto.INT64
            return kind, (len(attr.floats) or len(attr.ints),)
    return None


def infer_tensors(model: onnx.ModelProto, inputs: Mapping[str, TensorInfo]) -> dict[str, TensorInfo]:
    """Shape and type of every top-level tensor, for the given concrete input shapes.

    ONNX's static inference (with data propagation) resolves most graphs; what it leaves unknown
    (shape arithmetic it cannot fold, data-dependent ops) is read off one ORT run on dummy inputs.
    """
    fixed = with_input_shapes(model, inputs)
    known = dict(inputs)
    known.update(constant_tensors(fixed.graph))
    try:
        inferred = shape_inference.infer_shapes(fixed, strict_mode=False, data_prop=True)
        known.update(_concrete_value_infos(inferred.graph))
    except Exception:  # static inference is best effort; the ORT run below covers what it misses
        inferred = fixed
    missing = [o for node in fixed.graph.node for o in node.output if o and o not in known]
    if missing:
        known.update(_shapes_from_run(fixed, inputs, missing))
    return known


def with_input_shapes(model: onnx.ModelProto, inputs: Mapping[str, TensorInfo]) -> onnx.ModelProto:
    """A copy of the model whose graph inputs carry the given concrete shapes.

    Shapes stored for intermediate tensors and outputs are dropped (element types kept): an exporter
    traced at another input size leaves stale ones that inference would otherwise trust.
    """
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    del fixed.graph.value_info[:]
    for vi in fixed.graph.output:
        if vi.type.HasField("tensor_type"):
            vi.type.tensor_type.ClearField("shape")
    for vi in fixed.graph.input:
        if vi.name in inputs:
            shape = vi.type.tensor_type.shape
            shape.ClearField("dim")
            for d in inputs[vi.name].shape:
                shape.dim.add().dim_value = d
    return fixed


def _concrete_value_infos(graph: onnx.GraphProto) -> dict[str, TensorInfo]:
    """Fully known tensor types of a graph and of the subgraphs (If/Loop/Scan bodies) inside it."""
    found = {}
    for node in graph.node:
        for attr in node.attribute:
            for sub in [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs):
                found.update(constant_tensors(sub))
                found.update(_concrete_value_infos(sub))
    for vi in [*graph.value_info, *graph.output, *graph.input]:
        if not vi.type.HasField("tensor_type"):
            continue
        ttype = vi.type.tensor_type
        if not ttype.elem_type or not ttype.HasField("shape"):
            continue
        dims = ttype.shape.dim
        if all(d.HasField("dim_value") and d.dim_value >= 0 for d in dims):
            found[vi.name] = TensorInfo(name=vi.name, elem_type=ttype.elem_type,
                                        shape=tuple(d.dim_value for d in dims))
    return found


def dummy_inputs(inputs: Mapping[str, TensorInfo], seed: int = 0) -> dict[str, np.ndarray]:
    """Deterministic inputs of the right shapes and types (normal floats, zero integers)."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for name, info in inputs.items():
        dtype = onnx.helper.tensor_dtype_to_np_dtype(info.elem_type)
        if np.issubdtype(dtype, np.floating):
            feeds[name] = rng.standard_normal(info.shape).astype(dtype)
        else:
            feeds[name] = np.zeros(info.shape, dtype=dtype)
    return feeds


def with_outputs(model: onnx.ModelProto, names: list[str]) -> onnx.ModelProto:
    """A copy of `model` that also outputs the named intermediate tensors (to read them in one run)."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    present = {o.name for o in probe.graph.output}
    for name in names:
        if name not in present:
            probe.graph.output.add().name = name
            present.add(name)
    return probe


def _shapes_from_run(
    model: onnx.ModelProto, inputs: Mapping[str, TensorInfo], missing: list[str]
) -> dict[str, TensorInfo]:
    from tierml.model.session import make_session

    probe = with_outputs(model, missing)
    try:
        session = make_session(probe, threads=None, optimization="none")
        names = [o.name for o in session.get_outputs()]
        values = session.run(names, dummy_inputs(inputs))
    except Exception as exc:
        producer = next((n for n in model.graph.node if missing[0] in n.output), None)
        where = f" (output of {producer.op_type} node '{producer.name}')" if producer else ""
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TiermlError(
            f"could not determine the shape of tensor '{missing[0]}'{where}: static inference left it "
            f"unknown and running the model on dummy inputs failed ({first_line[:300]}); "
            "check --input-shape against what the model expects"
        ) from exc
    found = {}
    for name, value in zip(names, values, strict=True):
        if name in missing and isinstance(value, np.ndarray):
            elem = onnx.helper.np_dtype_to_tensor_dtype(value.dtype)
            found[name] = TensorInfo(name=name, elem_type=elem, shape=tuple(value.shape))
    return found
