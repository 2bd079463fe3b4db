"""A model's serving configuration: Triton's `config.pbtxt` subset, its YAML spelling, and ONNX auto-complete.

Both files are read into the same dict shape (Triton's field names) and built by one function, so
`config.yaml` says exactly what `config.pbtxt` says:

    name: mlp
    max_batch_size: 64
    input: [{name: x, data_type: TYPE_FP32, dims: [64]}]
    dynamic_batching: {max_queue_delay_microseconds: 500, default_queue_policy: {max_queue_size: 128}}
    instance_group: [{count: 1, kind: KIND_CPU}]
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import onnx
import yaml

from tierml.registry import datatypes
from tierml.registry.layout import CONFIG_FILE
from tierml.registry.model_config import DEFAULT_MAX_BATCH, PLATFORM, TensorSpec, batchable, graph_tensors
from tierml.serve.pbtxt import PbtxtError
from tierml.serve.pbtxt import parse as parse_pbtxt

CONFIG_FILES = (CONFIG_FILE, "config.yaml", "config.yml")
DEFAULT_MAX_QUEUE = 1024  # Triton's default is unbounded; an unbounded queue turns overload into timeouts
_SUPPORTED = {"name", "platform", "backend", "max_batch_size", "input", "output", "dynamic_batching",
              "instance_group", "version_policy", "parameters"}


class ConfigError(ValueError):
    """The model's configuration is invalid; the message names the file, field and fix."""


@dataclass(frozen=True)
class QueuePolicy:
    """Triton's ModelQueuePolicy (timeout action REJECT only)."""

    max_queue_size: int = DEFAULT_MAX_QUEUE  # requests; 0 = unbounded
    default_timeout_us: int = 0  # 0 = no timeout
    allow_timeout_override: bool = False


@dataclass(frozen=True)
class Batching:
    """Triton's dynamic_batching block."""

    preferred_batch_sizes: tuple[int, ...] = ()
    max_queue_delay_us: int = 0
    priority_levels: int = 0  # 0 = one queue
    default_priority_level: int = 0
    default_policy: QueuePolicy = QueuePolicy()
    priority_policies: dict[int, QueuePolicy] = field(default_factory=dict)

    def policy(self, level: int) -> QueuePolicy:
        return self.priority_policies.get(level, self.default_policy)


@dataclass(frozen=True)
class VersionPolicy:
    """Which numbered versions to serve: the latest n, all, or a specific list."""

    kind: str = "latest"  # latest | all | specific
    num_versions: int = 1
    versions: tuple[int, ...] = ()

    def select(self, available: list[int]) -> list[int]:
        ordered = sorted(available)
        if self.kind == "all":
            return ordered
        if self.kind == "specific":
            return [v for v in ordered if v in self.versions]
        return ordered[-self.num_versions:]


@dataclass(frozen=True)
class ModelConfig:
    """Everything the server needs to serve one model."""

    name: str
    max_batch_size: int
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    batching: Batching | None = None  # None: one request per execution
    instance_count: int = 1
    intra_op_threads: int = 0  # 0 = cores // instance_count
    version_policy: VersionPolicy = VersionPolicy()
    platform: str = PLATFORM

    def threads(self) -> int:
        return self.intra_op_threads or max(1, (os.cpu_count() or 1) // self.instance_count)

    def to_triton(self) -> dict[str, Any]:
        """The configuration as Triton's `/config` endpoint returns it (ModelConfig in JSON)."""
        policy: dict[str, Any] = (
            {"latest": {"num_versions": self.version_policy.num_versions}} if self.version_policy.kind == "latest"
            else {"all": {}} if self.version_policy.kind == "all"
            else {"specific": {"versions": list(self.version_policy.versions)}})
        config: dict[str, Any] = {
            "name": self.name, "platform": self.platform, "backend": "onnxruntime", "version_policy": policy,
            "max_batch_size": self.max_batch_size,
            "input": [_tensor_json(t) for t in self.inputs], "output": [_tensor_json(t) for t in self.outputs],
            "instance_group": [{"name": self.name, "kind": "KIND_CPU", "count": self.instance_count}],
            "parameters": {"intra_op_thread_count": {"string_value": str(self.threads())}},
        }
        if self.batching is not None:
            config["dynamic_batching"] = _batching_json(self.batching)
        return config


def _tensor_json(t: TensorSpec) -> dict[str, Any]:
    return {"name": t.name, "data_type": datatypes.config_type(t.datatype), "dims": list(t.dims)}


def _policy_json(p: QueuePolicy) -> dict[str, Any]:
    return {"timeout_action": "REJECT", "default_timeout_microseconds": p.default_timeout_us,
            "allow_timeout_override": p.allow_timeout_override, "max_queue_size": p.max_queue_size}


def _batching_json(b: Batching) -> dict[str, Any]:
    return {"preferred_batch_size": list(b.preferred_batch_sizes), "max_queue_delay_microseconds": b.max_queue_delay_us,
            "priority_levels": b.priority_levels, "default_priority_level": b.default_priority_level,
            "default_queue_policy": _policy_json(b.default_policy),
            "priority_queue_policy": {str(k): _policy_json(v) for k, v in b.priority_policies.items()}}


def read_config_file(model_dir: Path) -> tuple[dict[str, Any], Path | None]:
    """The raw config dict of a model folder (empty when it has no config file) and the file read."""
    for name in CONFIG_FILES:
        path = model_dir / name
        if path.exists():
            text = path.read_text()
            try:
                raw = parse_pbtxt(text) if name.endswith(".pbtxt") else (yaml.safe_load(text) or {})
            except (PbtxtError, yaml.YAMLError) as exc:
                raise ConfigError(f"{path}: cannot be parsed: {exc}") from exc
            if not isinstance(raw, dict):
                raise ConfigError(f"{path}: must hold a mapping of config fields, not {type(raw).__name__}")
            return raw, path
    return {}, None


def build_config(raw: dict[str, Any], model_name: str, onnx_model: onnx.ModelProto, where: str) -> ModelConfig:
    """Validate a raw config dict against the ONNX graph, filling what it omits from the graph."""
    try:
        return _build(raw, model_name, onnx_model)
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def _build(raw: dict[str, Any], model_name: str, proto: onnx.ModelProto) -> ModelConfig:
    unknown = sorted(set(raw) - _SUPPORTED)
    if unknown:
        raise ValueError(f"field(s) {', '.join(unknown)} not supported by tierml serve "
                         f"(supported: {', '.join(sorted(_SUPPORTED))})")
    name = str(raw.get("name", model_name))
    if name != model_name:
        raise ValueError(f"name '{name}' must equal the model's folder name '{model_name}'")
    platform = str(raw.get("platform", PLATFORM))
    backend = str(raw.get("backend", "onnxruntime"))
    if platform not in ("onnxruntime_onnx", "onnx_onnxv1") or backend != "onnxruntime":
        raise ValueError(f"platform '{platform}' / backend '{backend}': tierml serves ONNX models with onnxruntime "
                         "(platform: \"onnxruntime_onnx\")")
    graph_in, graph_out = graph_tensors(proto)
    can_batch = batchable(graph_in, graph_out)
    max_batch = _int(raw.get("max_batch_size", DEFAULT_MAX_BATCH if can_batch else 0), "max_batch_size", 0)
    if max_batch > 0 and not can_batch:
        fixed = [t.name for t in (*graph_in, *graph_out) if not t.dims or t.dims[0] != -1]
        raise ValueError(f"max_batch_size {max_batch} needs a dynamic first dim on every input and output, but "
                         f"{', '.join(fixed)} have none; set max_batch_size: 0")
    inputs = _tensors(raw.get("input"), graph_in, max_batch, "input")
    outputs = _tensors(raw.get("output"), graph_out, max_batch, "output")
    batching = _batching(raw, max_batch)
    count, threads = _instances(raw)
    return ModelConfig(name=name, max_batch_size=max_batch, inputs=inputs, outputs=outputs, batching=batching,
                       instance_count=count, intra_op_threads=threads, version_policy=_version_policy(raw),
                       platform=PLATFORM)


def _tensors(raw: Any, graph: list[TensorSpec], max_batch: int, kind: str) -> tuple[TensorSpec, ...]:
    by_name = {t.name: t for t in graph}
    if raw is None:
        return tuple(replace(t, dims=t.dims[1:] if max_batch else t.dims) for t in graph)
    given = [_tensor(item, kind) for item in _list(raw)]
    for t in given:
        actual = by_name.get(t.name)
        if actual is None:
            raise ValueError(f"{kind} '{t.name}' is not in the ONNX graph (its {kind}s: {', '.join(by_name)})")
        if t.datatype != actual.datatype:
            raise ValueError(f"{kind} '{t.name}' is {datatypes.config_type(t.datatype)} in the config but "
                             f"{datatypes.config_type(actual.datatype)} in the ONNX graph")
        expected = actual.dims[1:] if max_batch else actual.dims
        if len(t.dims) != len(expected) or any(e not in (-1, g) for g, e in zip(t.dims, expected, strict=True)):
            raise ValueError(f"{kind} '{t.name}' dims {list(t.dims)} do not match the ONNX graph's {list(expected)}"
                             + (" (without the batch dim, since max_batch_size > 0)" if max_batch else ""))
    if kind == "input" and {t.name for t in given} != set(by_name):
        missing = sorted(set(by_name) - {t.name for t in given})
        raise ValueError(f"input(s) {', '.join(missing)} of the ONNX graph are missing from the config")
    return tuple(given)


def _tensor(item: Any, kind: str) -> TensorSpec:
    if not isinstance(item, dict) or "name" not in item:
        raise ValueError(f"each {kind} needs a name, data_type and dims, got {item!r}")
    extra = sorted(set(item) - {"name", "data_type", "datatype", "dims"})
    if extra:
        raise ValueError(f"{kind} '{item['name']}': field(s) {', '.join(extra)} not supported")
    datatype = datatypes.parse_config_type(str(item.get("data_type", item.get("datatype", ""))))
    dims = tuple(_int(d, f"{kind} '{item['name']}' dims", -1) for d in _list(item.get("dims", [])))
    return TensorSpec(str(item["name"]), datatype, dims)


def _batching(raw: dict[str, Any], max_batch: int) -> Batching | None:
    block = raw.get("dynamic_batching")
    if block is None:
        return Batching() if "max_batch_size" not in raw and max_batch > 0 else None
    if not isinstance(block, dict):
        raise ValueError("dynamic_batching must be a block: dynamic_batching { max_queue_delay_microseconds: 100 }")
    known = {"preferred_batch_size", "max_queue_delay_microseconds", "preserve_ordering", "priority_levels",
             "default_priority_level", "default_queue_policy", "priority_queue_policy"}
    extra = sorted(set(block) - known)
    if extra:
        raise ValueError(f"dynamic_batching field(s) {', '.join(extra)} not supported (supported: "
                         f"{', '.join(sorted(known))})")
    preferred = tuple(_int(v, "preferred_batch_size", 1) for v in _list(block.get("preferred_batch_size", [])))
    if max_batch and any(p > max_batch for p in preferred):
        raise ValueError(f"preferred_batch_size {list(preferred)} must not exceed max_batch_size {max_batch}")
    levels = _int(block.get("priority_levels", 0), "priority_levels", 0)
    default_level = _int(block.get("default_priority_level", 0), "default_priority_level", 0)
    if levels and not 1 <= default_level <= levels:
        raise ValueError(f"default_priority_level must be in [1, priority_levels={levels}], not {default_level}")
    per_level = {_int(k, "priority_queue_policy key", 1): _policy(v)
                 for k, v in _map(block.get("priority_queue_policy"))}
    return Batching(preferred_batch_sizes=tuple(sorted(set(preferred))),
                    max_queue_delay_us=_int(block.get("max_queue_delay_microseconds", 0),
                                            "max_queue_delay_microseconds", 0),
                    priority_levels=levels, default_priority_level=default_level,
                    default_policy=_policy(block.get("default_queue_policy", {})), priority_policies=per_level)


def _policy(raw: Any) -> QueuePolicy:
    if not isinstance(raw, dict):
        raise ValueError(f"a queue policy must be a block, got {raw!r}")
    action = str(raw.get("timeout_action", "REJECT"))
    if action != "REJECT":
        raise ValueError(f"timeout_action {action} not supported (tierml rejects timed-out requests: REJECT)")
    return QueuePolicy(max_queue_size=_int(raw.get("max_queue_size", DEFAULT_MAX_QUEUE), "max_queue_size", 0),
                       default_timeout_us=_int(raw.get("default_timeout_microseconds", 0),
                                               "default_timeout_microseconds", 0),
                       allow_timeout_override=_bool(raw.get("allow_timeout_override", False)))


def _instances(raw: dict[str, Any]) -> tuple[int, int]:
    groups = _list(raw.get("instance_group", []))
    count = 0
    for group in groups:
        if not isinstance(group, dict):
            raise ValueError(f"instance_group entries are blocks ({{ count: 1 kind: KIND_CPU }}), got {group!r}")
        kind = str(group.get("kind", "KIND_CPU"))
        if kind not in ("KIND_CPU", "KIND_AUTO"):
            raise ValueError(f"instance_group kind {kind}: tierml serves on CPU (kind: KIND_CPU)")
        count += _int(group.get("count", 1), "instance_group count", 1)
    threads = 0
    for key, value in _map(raw.get("parameters")):
        if key != "intra_op_thread_count":
            raise ValueError(f"parameter '{key}' not supported (supported: intra_op_thread_count)")
        text = value.get("string_value", "") if isinstance(value, dict) else value
        threads = _int(text, "intra_op_thread_count", 1)
    count = count or 1
    cores = os.cpu_count() or 1
    used = threads or max(1, cores // count)  # what ModelConfig.threads() gives each instance
    if count * used > cores:
        fix = ("lower instance_group count or intra_op_thread_count (or omit it: tierml gives each instance "
               "cores / instances)") if threads else f"lower instance_group count to at most {cores}"
        raise ValueError(f"{count} instance(s) x {used} intra-op thread(s) = {count * used} threads on "
                         f"{cores} core(s) oversubscribes the CPU; {fix}")
    return count, threads


def _version_policy(raw: dict[str, Any]) -> VersionPolicy:
    block = raw.get("version_policy")
    if block is None:
        return VersionPolicy()
    if not isinstance(block, dict) or len(block) != 1:
        raise ValueError("version_policy must be one of { latest { num_versions: 1 } }, { all {} }, "
                         "{ specific { versions: [1, 3] } }")
    (kind, body), = block.items()
    body = body if isinstance(body, dict) else {}
    if kind == "latest":
        return VersionPolicy("latest", num_versions=_int(body.get("num_versions", 1), "num_versions", 1))
    if kind == "all":
        return VersionPolicy("all")
    if kind == "specific":
        return VersionPolicy("specific", versions=tuple(_int(v, "versions", 1) for v in _list(body.get("versions"))))
    raise ValueError(f"version_policy '{kind}' unknown (latest, all or specific)")


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _map(value: Any) -> list[tuple[Any, Any]]:
    """A protobuf map as text format writes it (`{key: k value: v}` entries) or as a YAML mapping."""
    if value is None:
        return []
    if isinstance(value, dict) and set(value) != {"key", "value"}:
        return list(value.items())
    return [(e["key"], e["value"]) for e in _list(value) if isinstance(e, dict) and "key" in e and "value" in e]


def _int(value: Any, what: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{what} must be an integer, not {value!r}")
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{what} must be an integer, not {value!r}") from None
    if number < minimum:
        raise ValueError(f"{what} must be >= {minimum}, not {number}")
    return number


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "false"):
        return str(value).lower() == "true"
    raise ValueError(f"expected true or false, not {value!r}")
