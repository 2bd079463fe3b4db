"""The Triton model configuration an ONNX graph implies, as `config.pbtxt` text.

Its tensors, batchability and default batch size are the ones `tierml serve` completes a model's config
with (serve imports them from here), so a written config serves exactly as the graph alone did, and Triton
loads the folder as it is. It knows nothing of folders (`layout`) or of serving.
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx

from tierml.registry import datatypes

DEFAULT_MAX_BATCH = 32
PLATFORM = "onnxruntime_onnx"


class UnnamedType(ValueError):
    """A graph tensor has an element type Triton's config and the protocol have no name for (bfloat16, float8...)."""


@dataclass(frozen=True)
class TensorSpec:
    """An input or output as the protocol shows it; `dims` exclude the batch dim when the model batches."""

    name: str
    datatype: str
    dims: tuple[int, ...]


def graph_tensors(proto: onnx.ModelProto) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """The graph's inputs (initializers excluded) and outputs, with every dim; -1 where a dim is not fixed."""
    initializers = {i.name for i in proto.graph.initializer}

    def spec(value: onnx.ValueInfoProto) -> TensorSpec:
        tensor = value.type.tensor_type
        datatype = datatypes.from_onnx(tensor.elem_type)
        if datatype is None:
            raise UnnamedType(f"tensor '{value.name}' has element type "
                              f"{onnx.TensorProto.DataType.Name(tensor.elem_type)}, which the protocol cannot carry")
        dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim)
        return TensorSpec(value.name, datatype, dims)

    inputs = [spec(v) for v in proto.graph.input if v.name not in initializers]
    return inputs, [spec(v) for v in proto.graph.output]


def batchable(inputs: list[TensorSpec], outputs: list[TensorSpec]) -> bool:
    """Whether every input and output has a free first dim, which a batcher can stack requests along."""
    return all(t.dims and t.dims[0] == -1 for t in (*inputs, *outputs))


def config_text(proto: onnx.ModelProto, name: str, max_batch_size: int | None = None, instances: int = 0,
                threads: int = 0) -> str:
    """`config.pbtxt` for serving `proto` as model `name`.

    `max_batch_size` None: what `tierml serve` completes a config-less model with (DEFAULT_MAX_BATCH and
    dynamic batching when the graph batches, else 0). `instances` and `threads` (0: leave it to the server)
    set instance_group count and the intra_op_thread_count parameter.
    """
    inputs, outputs = graph_tensors(proto)
    can_batch = batchable(inputs, outputs)
    batch = (DEFAULT_MAX_BATCH if can_batch else 0) if max_batch_size is None else max_batch_size
    if batch > 0 and not can_batch:
        raise ValueError(f"max_batch_size {batch} needs a free first dim on every input and output of '{name}'")
    lines = [f"name: {_quote(name)}", f"platform: {_quote(PLATFORM)}", f"max_batch_size: {batch}",
             *_tensors("input", inputs, batch), *_tensors("output", outputs, batch)]
    if max_batch_size is None and batch > 0:
        lines.append("dynamic_batching { }")
    if instances:
        lines.append(f"instance_group [ {{ count: {instances} kind: KIND_CPU }} ]")
    if threads:
        lines.append(f'parameters {{ key: "intra_op_thread_count" value: {{ string_value: "{threads}" }} }}')
    return "\n".join(lines) + "\n"


def _tensors(kind: str, tensors: list[TensorSpec], batch: int) -> list[str]:
    if not tensors:
        return []
    entries = [f"  {{ name: {_quote(t.name)} data_type: {datatypes.config_type(t.datatype)} "
               f"dims: [ {', '.join(map(str, t.dims[1:] if batch else t.dims))} ] }}" for t in tensors]
    return [f"{kind} [", ",\n".join(entries), "]"]


def _quote(text: str) -> str:
    """A protobuf text-format string literal."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'
