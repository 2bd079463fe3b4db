"""Inference requests and responses of the Open Inference Protocol: JSON tensors and the binary extension.

`parse_request` turns a body into checked numpy inputs (every client mistake becomes a 400 naming the
tensor, what was expected and what came); `encode_response` renders outputs as JSON or binary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from tierml.registry.datatypes import NUMPY, from_numpy
from tierml.serve import binary
from tierml.serve.config import ModelConfig, TensorSpec
from tierml.serve.errors import bad_request

# Request parameters with a meaning to the server; any others pass through untouched.
_SEQUENCE = ("sequence_id", "sequence_start", "sequence_end")
_INT_INFO = {name: np.iinfo(dtype) for name, dtype in NUMPY.items() if dtype.kind in "iu"}


@dataclass
class InferRequest:
    """A checked inference request, ready for the batcher."""

    inputs: dict[str, np.ndarray]
    rows: int  # batch rows (1 for a model that does not batch)
    outputs: list[str]  # names to return, in order
    binary_outputs: set[str] = field(default_factory=set)
    id: str | None = None
    priority: int = 0
    timeout_us: int = 0
    parameters: dict[str, Any] = field(default_factory=dict)


def parse_request(body: bytes, header_length: int | None, config: ModelConfig) -> InferRequest:
    """Parse and check an `/infer` body; `header_length` is Inference-Header-Content-Length when sent."""
    if header_length == 0:
        return _raw_request(memoryview(body), config)
    tail = memoryview(b"")
    if header_length is not None:
        body, tail = binary.split_body(body, header_length)
    try:
        header = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"request body is not valid JSON ({exc}); send an object with \"inputs\"") from None
    if not isinstance(header, dict):
        raise bad_request(f"request body must be a JSON object with \"inputs\", not {type(header).__name__}")
    parameters = _parameters(header.get("parameters"), "request")
    inputs, rows = _inputs(header.get("inputs"), tail, config)
    outputs, binary_outputs = _outputs(header.get("outputs"), parameters, config)
    request_id = header.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise bad_request(f"\"id\" must be a string, not {type(request_id).__name__}")
    return InferRequest(inputs=inputs, rows=rows, outputs=outputs, binary_outputs=binary_outputs, id=request_id,
                        priority=_int_parameter(parameters, "priority"),
                        timeout_us=_int_parameter(parameters, "timeout"), parameters=parameters)


def _raw_request(body: memoryview, config: ModelConfig) -> InferRequest:
    """Inference-Header-Content-Length: 0 — the body is the one input's bytes, batch 1, binary outputs."""
    if len(config.inputs) != 1:
        raise bad_request(f"a raw binary request (Inference-Header-Content-Length: 0) needs a model with one input; "
                          f"'{config.name}' has {len(config.inputs)}")
    spec = config.inputs[0]
    dims = ((1,) if config.max_batch_size else ()) + spec.dims
    variable = [i for i, d in enumerate(dims) if d == -1]
    if spec.datatype == "BYTES":
        shape = tuple(1 if d == -1 else d for d in dims)
    elif len(variable) > 1:
        raise bad_request(f"a raw binary request needs at most one variable dim; input '{spec.name}' has {list(dims)}")
    else:
        shape = _fill_variable(spec, dims, variable, len(body))
    tensor = binary.decode_tensor(spec.name, spec.datatype, shape, body)
    tensor = _text(spec.name, tensor) if spec.datatype == "BYTES" else tensor
    names = [o.name for o in config.outputs]
    return InferRequest(inputs={spec.name: tensor}, rows=1, outputs=names, binary_outputs=set(names))


def _fill_variable(spec: TensorSpec, dims: tuple[int, ...], variable: list[int], size: int) -> tuple[int, ...]:
    fixed = math.prod(d for d in dims if d != -1) * NUMPY[spec.datatype].itemsize
    if not variable:
        return dims
    if fixed == 0 or size % fixed:
        raise bad_request(f"raw binary body of {size} bytes is not a whole number of {spec.datatype} rows of "
                          f"input '{spec.name}' with dims {list(dims)}")
    return tuple(size // fixed if i == variable[0] else d for i, d in enumerate(dims))


def _inputs(raw: Any, tail: memoryview, config: ModelConfig) -> tuple[dict[str, np.ndarray], int]:
    if not isinstance(raw, list) or not raw:
        raise bad_request(f"request needs \"inputs\": a non-empty list of tensors (model '{config.name}' takes "
                          f"{', '.join(t.name for t in config.inputs)})")
    specs = {t.name: t for t in config.inputs}
    tensors: dict[str, np.ndarray] = {}
    offset = 0
    for item in raw:
        if not isinstance(item, dict):
            raise bad_request(f"each input must be an object with name, shape, datatype and data, not {item!r:.80}")
        name = item.get("name")
        spec = specs.get(name) if isinstance(name, str) else None
        if spec is None:
            raise bad_request(f"unexpected input {name!r} for model '{config.name}' "
                              f"(its inputs: {', '.join(specs)})")
        if name in tensors:
            raise bad_request(f"input '{name}' is given twice")
        tensors[name], offset = _tensor(item, spec, config, tail, offset)
    if offset != len(tail):
        raise bad_request(f"{len(tail) - offset} bytes of binary data follow the JSON header but no input claims "
                          "them (set parameters.binary_data_size on each binary input)")
    missing = [n for n in specs if n not in tensors]
    if missing:
        raise bad_request(f"model '{config.name}' needs input(s) {', '.join(missing)}")
    return tensors, _rows(tensors, config)


def _tensor(item: dict[str, Any], spec: TensorSpec, config: ModelConfig, tail: memoryview,
            offset: int) -> tuple[np.ndarray, int]:
    datatype = item.get("datatype")
    if datatype != spec.datatype:
        raise bad_request(f"input '{spec.name}' has datatype {datatype!r} but model '{config.name}' expects "
                          f"{spec.datatype}")
    shape = _shape(item.get("shape"), spec, config)
    parameters = _parameters(item.get("parameters"), f"input '{spec.name}'")
    size = parameters.get("binary_data_size")
    if size is not None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise bad_request(f"input '{spec.name}': binary_data_size must be a byte count, not {size!r}")
        if "data" in item:
            raise bad_request(f"input '{spec.name}' has both \"data\" and binary_data_size; send one")
        if offset + size > len(tail):
            raise bad_request(f"input '{spec.name}' claims {size} bytes of binary data but only "
                              f"{len(tail) - offset} follow the JSON header")
        tensor = binary.decode_tensor(spec.name, datatype, shape, tail[offset:offset + size])
        return (_text(spec.name, tensor) if datatype == "BYTES" else tensor), offset + size
    if "data" not in item:
        raise bad_request(f"input '{spec.name}' has no \"data\" (or binary_data_size for binary data)")
    return json_tensor(spec.name, datatype, shape, item["data"]), offset


def _shape(raw: Any, spec: TensorSpec, config: ModelConfig) -> tuple[int, ...]:
    if not isinstance(raw, list) or any(isinstance(d, bool) or not isinstance(d, int) or d < 0 for d in raw):
        raise bad_request(f"input '{spec.name}': \"shape\" must be a list of non-negative integers, not {raw!r:.80}")
    dims = ((-1,) if config.max_batch_size else ()) + spec.dims
    if len(raw) != len(dims) or any(d != -1 and d != r for d, r in zip(dims, raw, strict=True)):
        raise bad_request(f"input '{spec.name}' has shape {raw} but model '{config.name}' expects {list(dims)} "
                          "(-1: any size)")
    if config.max_batch_size and not 1 <= raw[0] <= config.max_batch_size:
        raise bad_request(f"input '{spec.name}': batch size {raw[0]} must be between 1 and max_batch_size "
                          f"{config.max_batch_size} of model '{config.name}'")
    return tuple(raw)


def json_tensor(name: str, datatype: str, shape: tuple[int, ...], data: Any) -> np.ndarray:
    """A tensor from JSON data, flat or nested, with its element types checked against `datatype`."""
    if not isinstance(data, list):
        raise bad_request(f"input '{name}': \"data\" must be a JSON array, not {type(data).__name__}")
    count = math.prod(shape)
    if datatype == "BYTES":
        flat = _flatten(name, data)
        if len(flat) != count or not all(isinstance(v, str) for v in flat):
            raise bad_request(f"input '{name}': BYTES data must be {count} strings for shape {list(shape)}")
        items = np.empty(count, dtype=object)
        items[:] = flat
        return items.reshape(shape)
    try:
        array = np.array(data)
    except (ValueError, TypeError, RecursionError, OverflowError):
        raise bad_request(f"input '{name}': \"data\" is ragged or mixes types; send a flat list of "
                          f"{count} {datatype} values") from None
    if array.size != count:
        raise bad_request(f"input '{name}': shape {list(shape)} needs {count} values but \"data\" holds {array.size}")
    return _cast(name, datatype, array).reshape(shape)


def _text(name: str, tensor: np.ndarray) -> np.ndarray:
    """BYTES elements as str: ONNX string tensors hold UTF-8 text (ORT would feed `bytes` as their repr)."""
    try:
        return np.vectorize(bytes.decode, otypes=[object])(tensor) if tensor.size else tensor
    except UnicodeDecodeError as exc:
        raise bad_request(f"input '{name}': BYTES element is not UTF-8 text ({exc.reason} at byte {exc.start}); "
                          "ONNX string tensors carry text") from None


def _flatten(name: str, data: list[Any]) -> list[Any]:
    flat: list[Any] = []
    stack = [iter(data)]
    while stack:
        for value in stack[-1]:
            if isinstance(value, list):
                if len(stack) > 64:
                    raise bad_request(f"input '{name}': \"data\" is nested more than 64 deep")
                stack.append(iter(value))
                break
            flat.append(value)
        else:
            stack.pop()
    return flat


def _cast(name: str, datatype: str, array: np.ndarray) -> np.ndarray:
    kind = array.dtype.kind
    target = NUMPY[datatype]
    if datatype == "BOOL":
        if kind != "b" and array.size:
            raise bad_request(f"input '{name}': BOOL data must be true/false, got {array.dtype.name} values")
        return array.astype(np.bool_)
    if kind not in "iuf" and array.size:
        raise bad_request(f"input '{name}': {datatype} data must be numbers, got {_describe(array)}")
    if target.kind in "iu" and array.size:
        if kind == "f":
            raise bad_request(f"input '{name}': {datatype} data must be integers, got fractional numbers")
        info = _INT_INFO[datatype]
        low, high = int(array.min()), int(array.max())
        if low < info.min or high > info.max:
            raise bad_request(f"input '{name}': {datatype} values must lie in [{info.min}, {info.max}], "
                              f"got {low}..{high}")
    return array.astype(target, copy=False)


def _describe(array: np.ndarray) -> str:
    return {"U": "strings", "b": "booleans", "O": "mixed values"}.get(array.dtype.kind, array.dtype.name)


def _rows(tensors: dict[str, np.ndarray], config: ModelConfig) -> int:
    if not config.max_batch_size:
        return 1
    batches = {name: t.shape[0] for name, t in tensors.items()}
    if len(set(batches.values())) > 1:
        raise bad_request(f"inputs disagree on the batch size (first dim): {batches}")
    return next(iter(batches.values()))


def _outputs(raw: Any, parameters: dict[str, Any], config: ModelConfig) -> tuple[list[str], set[str]]:
    known = [o.name for o in config.outputs]
    default_binary = parameters.get("binary_data_output", False)
    if not isinstance(default_binary, bool):
        raise bad_request(f"parameter binary_data_output must be true or false, not {default_binary!r}")
    if raw is None:
        return known, set(known) if default_binary else set()
    if not isinstance(raw, list):
        raise bad_request(f"\"outputs\" must be a list of {{\"name\": ...}} objects, not {type(raw).__name__}")
    names: list[str] = []
    binary_names: set[str] = set()
    for item in raw:
        name = item.get("name") if isinstance(item, dict) else None
        if name not in known:
            raise bad_request(f"unknown output {name!r} requested from model '{config.name}' "
                              f"(its outputs: {', '.join(known)})")
        params = _parameters(item.get("parameters"), f"output '{name}'")
        if "classification" in params:
            raise bad_request("the classification extension is not supported; request the raw output")
        wants_binary = params.get("binary_data", default_binary)
        if not isinstance(wants_binary, bool):
            raise bad_request(f"output '{name}': binary_data must be true or false, not {wants_binary!r}")
        names.append(name)
        if wants_binary:
            binary_names.add(name)
    return names, binary_names


def _parameters(raw: Any, where: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise bad_request(f"{where}: \"parameters\" must be an object, not {type(raw).__name__}")
    for key in _SEQUENCE:
        if raw.get(key) not in (None, 0, "", False):
            raise bad_request(f"{where}: parameter {key} needs a sequence batcher, which tierml does not provide "
                              "(the model is stateless: drop sequence_id/sequence_start/sequence_end)")
    return raw


def _int_parameter(parameters: dict[str, Any], key: str) -> int:
    value = parameters.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise bad_request(f"parameter {key} must be a non-negative integer, not {value!r}")
    return value


def encode_response(config: ModelConfig, version: int, request: InferRequest,
                    results: dict[str, np.ndarray]) -> tuple[bytes, int | None]:
    """The response body and, when any output is binary, the length of its JSON header."""
    outputs: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for name in request.outputs:
        array = results[name]
        entry: dict[str, Any] = {"name": name, "datatype": from_numpy(array.dtype), "shape": list(array.shape)}
        if name in request.binary_outputs:
            raw = binary.encode_tensor(array)
            entry["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            entry["data"] = _json_data(array)
        outputs.append(entry)
    response: dict[str, Any] = {"model_name": config.name, "model_version": str(version)}
    if request.id is not None:
        response["id"] = request.id
    response["outputs"] = outputs
    header = orjson.dumps(response, option=orjson.OPT_SERIALIZE_NUMPY)
    if not chunks:
        return header, None
    return b"".join([header, *chunks]), len(header)


def _json_data(array: np.ndarray) -> Any:
    flat = array.ravel()
    if flat.dtype.kind in "OSU":
        return [v.decode(errors="replace") if isinstance(v, bytes) else str(v) for v in flat]
    if flat.dtype == np.float16:
        return flat.astype(np.float32)
    return np.ascontiguousarray(flat)
