"""Graph simplification (onnxslim: constant folding, Conv+BN fusion, Constant nodes to initializers) and
stripping what an exporter leaves that inference never reads (doc strings, per-node metadata, long names)."""

from __future__ import annotations

import onnx
from onnx import numpy_helper

from tierml.errors import TiermlError
from tierml.optimize.passes import ModelState, Pass, PassConfig, Workspace


class SimplifyConfig(PassConfig):
    slim: bool = True  # run onnxslim
    strip: bool = True  # drop doc strings, metadata_props, stored intermediate shapes, zero zero-points
    short_names: bool = False  # rename internal tensors and nodes to t0, t1, ... (graph inputs/outputs kept)


class Simplify(Pass):
    name = "simplify"
    Config = SimplifyConfig

    def apply(self, state: ModelState, workspace: Workspace) -> tuple[ModelState, list[str]]:
        config: SimplifyConfig = self.config  # type: ignore[assignment]
        model = slim(state.proto) if config.slim else _copy(state.proto)
        before = len(state.proto.graph.node)
        if config.strip:
            strip(model)
        if config.short_names:
            shorten_names(model)
        notes = [f"{before} -> {len(model.graph.node)} nodes"]
        return ModelState(model, state.precision, state.torch), notes


def slim(model: onnx.ModelProto) -> onnx.ModelProto:
    import onnxslim

    try:
        return onnxslim.slim(_copy(model))
    except Exception as exc:
        raise TiermlError(f"onnxslim could not simplify the model: {str(exc).splitlines()[0][:300]}") from exc


def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    return copy


def strip(model: onnx.ModelProto) -> None:
    """Remove what inference never reads: doc strings and metadata (exporters write stack traces there),
    stored intermediate shapes (runtimes infer them), and DequantizeLinear zero points that are all zero
    (the input is optional and defaults to zero)."""
    graph = model.graph
    del graph.value_info[:]
    _drop_zero_points(graph)
    _drop_default_attributes(graph)
    for node in graph.node:
        node.doc_string = ""
        del node.metadata_props[:]
    for value in [*graph.input, *graph.output, *graph.value_info]:
        value.doc_string = ""
        del value.metadata_props[:]
    for tensor in graph.initializer:
        tensor.doc_string = ""
        del tensor.metadata_props[:]
        _pack(tensor)
    graph.doc_string = ""
    del model.metadata_props[:]


def _pack(tensor: onnx.TensorProto) -> None:
    """Store small integer tensors as raw bytes: int32_data writes a negative int8 zero point as a
    10-byte varint."""
    if tensor.int32_data and tensor.data_type in (onnx.TensorProto.INT8, onnx.TensorProto.UINT8):
        tensor.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor), tensor.name))


def _drop_zero_points(graph: onnx.GraphProto) -> None:
    initializers = {t.name: t for t in graph.initializer}
    dropped: set[str] = set()
    for node in graph.node:
        if node.op_type != "DequantizeLinear" or len(node.input) < 3:
            continue
        zero_point = initializers.get(node.input[2])
        if zero_point is not None and not numpy_helper.to_array(zero_point).any():
            dropped.add(node.input[2])
            del node.input[2]
    still_used = {i for node in graph.node for i in node.input}
    keep = [t for t in graph.initializer if t.name not in dropped or t.name in still_used]
    del graph.initializer[:]
    graph.initializer.extend(keep)


# Attributes whose value is the operator's default (ONNX spec); a Conv's kernel_shape is read off its weight.
_DEFAULTS: dict[str, dict[str, object]] = {
    "Conv": {"strides": 1, "dilations": 1, "pads": 0, "group": 1, "auto_pad": b"NOTSET", "kernel_shape": None},
    "ConvTranspose": {"strides": 1, "dilations": 1, "pads": 0, "group": 1, "auto_pad": b"NOTSET"},
    "MaxPool": {"strides": 1, "dilations": 1, "pads": 0, "auto_pad": b"NOTSET", "ceil_mode": 0, "storage_order": 0},
    "AveragePool": {"strides": 1, "pads": 0, "auto_pad": b"NOTSET", "ceil_mode": 0, "count_include_pad": 0},
    "Gemm": {"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0},
}


def _drop_default_attributes(graph: onnx.GraphProto) -> None:
    """Remove attributes that restate the default (exporters write every one; each costs bytes per node)."""
    for node in graph.node:
        defaults = _DEFAULTS.get(node.op_type) if node.domain in ("", "ai.onnx") else None
        if not defaults:
            continue
        keep = []
        for attribute in node.attribute:
            default = defaults.get(attribute.name, ...)
            value = onnx.helper.get_attribute_value(attribute)
            is_default = default is None or (
                value == default if not isinstance(value, list) else bool(value) and all(v == default for v in value))
            if default is ... or not is_default:
                keep.append(attribute)
        del node.attribute[:]
        node.attribute.extend(keep)


def shorten_names(model: onnx.ModelProto) -> None:
    """Give internal tensors and nodes short names; graph inputs and outputs keep theirs."""
    graph = model.graph
    keep = {v.name for v in [*graph.input, *graph.output]}
    names: dict[str, str] = {}

    def short(name: str) -> str:
        if not name or name in keep:
            return name
        return names.setdefault(name, f"t{len(names)}")

    for tensor in graph.initializer:
        tensor.name = short(tensor.name)
    for value in graph.value_info:
        value.name = short(value.name)
    for index, node in enumerate(graph.node):
        node.name = f"n{index}"
        node.input[:] = [short(i) for i in node.input]
        node.output[:] = [short(o) for o in node.output]
