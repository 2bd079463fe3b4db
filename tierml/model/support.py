"""Which nodes each tier's runtime can execute.

Cloud, edge and browser tiers run ONNX Runtime's CPU kernels (onnxruntime-web's WASM backend is the
same kernel set); phones run the same CPU kernels, and we report how much of the graph the NNAPI
(Android) and CoreML (iOS) accelerators would take, from the lists ORT ships. Microcontrollers get
the int8 op subset tierml's MCU exporter implements.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import onnx
from pydantic import BaseModel

from tierml.model.runtimes import MCU_INT8, op_key
from tierml.model.tensors import TensorInfo


class Unsupported(BaseModel):
    """A node a tier cannot run, why, and the nearest thing it can run instead."""

    node: str
    op_type: str
    reason: str
    suggestion: str = ""


class TierSupport(BaseModel):
    """Op coverage of one tier's runtime for one model."""

    tier: str
    runtime: str
    nodes: int
    unsupported: list[Unsupported]
    accelerator_coverage: dict[str, float] = {}

    @property
    def supported(self) -> bool:
        return not self.unsupported


@functools.cache
def _ort_kernels() -> dict[tuple[str, str], list[tuple[int, int]]]:
    from onnxruntime.capi import onnxruntime_pybind11_state as ort_c

    kernels: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for k in ort_c.get_all_opkernel_def():
        if k.provider == "CPUExecutionProvider":
            kernels.setdefault((k.domain, k.op_name), []).append(tuple(k.version_range))
    return kernels


@functools.cache
def _accelerator_ops(name: str) -> frozenset[str]:
    """ONNX op names that ORT's NNAPI / CoreML execution providers take (from the lists ORT ships)."""
    files = {"nnapi": "nnapi_supported_ops.md", "coreml": "coreml_supported_mlprogram_ops.md"}
    spec = importlib.util.find_spec("onnxruntime")  # read the files without importing onnxruntime.tools (slow)
    if spec is None or not spec.submodule_search_locations:
        return frozenset()
    path = Path(spec.submodule_search_locations[0]) / "tools" / "mobile_helpers" / files[name]
    if not path.exists():
        return frozenset()
    text = path.read_text()
    return frozenset(re.findall(r"^\|ai\.onnx:(\w+)\|", text, flags=re.M))


def _node_version(node: onnx.NodeProto, opsets: Mapping[str, int]) -> int | None:
    domain = node.domain or ""
    if domain in ("", "ai.onnx", "ai.onnx.ml"):
        try:
            schema = onnx.defs.get_schema(node.op_type, opsets.get(domain, opsets.get("", 1)), domain)
        except onnx.defs.SchemaError:
            return None
        return schema.since_version
    return None


def _ort_reason(node: onnx.NodeProto, opsets: Mapping[str, int]) -> str | None:
    domain = "" if node.domain == "ai.onnx" else node.domain
    ranges = _ort_kernels().get((domain, node.op_type))
    if not ranges:
        return f"ONNX Runtime has no CPU kernel for {domain + '::' if domain else ''}{node.op_type}"
    version = _node_version(node, opsets)
    if version is not None and not any(lo <= version <= hi for lo, hi in ranges):
        return f"ONNX Runtime has no CPU kernel for {node.op_type} version {version}"
    return None


def _mcu_reason(node: onnx.NodeProto, tensors: Mapping[str, TensorInfo], constants: set[str]) -> str | None:
    op = node.op_type
    if op_key(node) in MCU_INT8.folded:
        return None
    if op_key(node) not in MCU_INT8.supported:
        return f"{op} is not in the MCU int8 op set"
    weight = tensors.get(node.input[1]) if len(node.input) > 1 else None
    if op == "Conv":
        if weight is None or len(weight.shape) not in (3, 4):
            return "only 1-D and 2-D convolutions run on the MCU tier"
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        if group > 1 and weight.shape[1] != 1:
            return f"grouped convolution (group={group}, not depthwise) is not in the MCU int8 op set"
    if op in ("Gemm", "MatMul") and node.input[1] not in constants:
        return f"{op} of two activations (attention-style) is not in the MCU int8 op set"
    return None


def check_support(
    nodes: Sequence[tuple[str, onnx.NodeProto]],
    folded: set[str],
    tensors: Mapping[str, TensorInfo],
    constants: set[str],
    opsets: Mapping[str, int],
) -> list[TierSupport]:
    """Coverage per tier. `nodes` are (unique name, node); `folded` names nodes precomputed at load."""
    live = [(name, node) for name, node in nodes if name not in folded]
    ort_bad = [
        Unsupported(node=name, op_type=node.op_type, reason=reason)
        for name, node in live
        if (reason := _ort_reason(node, opsets))
    ]
    mcu_bad = [
        Unsupported(node=name, op_type=node.op_type, reason=reason,
                    suggestion=MCU_INT8.alternatives.get(op_key(node), ""))
        for name, node in live
        if (reason := _mcu_reason(node, tensors, constants))
    ]
    coverage = {
        ep: (sum(1 for _, n in live if n.op_type in _accelerator_ops(ep)) / len(live)) if live else 1.0
        for ep in ("nnapi", "coreml")
    }
    n = len(live)
    return [
        TierSupport(tier="cloud", runtime="onnxruntime (CPU)", nodes=n, unsupported=ort_bad),
        TierSupport(tier="edge", runtime="onnxruntime (CPU)", nodes=n, unsupported=ort_bad),
        TierSupport(tier="mobile", runtime="onnxruntime mobile (CPU; NNAPI/CoreML where covered)",
                    nodes=n, unsupported=ort_bad, accelerator_coverage=coverage),
        TierSupport(tier="browser", runtime="onnxruntime-web (WASM)", nodes=n, unsupported=ort_bad),
        TierSupport(tier="mcu", runtime=MCU_INT8.runtime, nodes=n, unsupported=mcu_bad),
    ]
