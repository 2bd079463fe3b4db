"""int8 post-training quantization through ONNX Runtime's quantizer, with the pre-processing done right.

Pre-processing (the traps ORT 1.32 has on real exported models): Constant-node weights become
initializers (onnxslim; quantize_dynamic refuses Constant weights), the default-domain opset is raised
to 13 (per-channel QDQ below 13 writes a file ORT cannot load, silently), and shapes are inferred with
ONNX's inference (ORT's symbolic inference fails on many exports). Calibration ranges are computed once
per (model, method, data) and cached, so variants are re-quantized in seconds; Entropy calibration
uses 2048 histogram bins (via quantize_static alone it uses 128/128 and equals MinMax).
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
import onnx
from onnx import shape_inference, version_converter
from pydantic import Field

from tierml.data.dataset import Dataset
from tierml.errors import TiermlError
from tierml.files import sha256_bytes
from tierml.model.load import serialize
from tierml.model.session import make_session
from tierml.optimize.passes import ModelState, Pass, PassConfig, Workspace
from tierml.optimize.simplify import slim

COMPUTE_OPS = ["Conv", "ConvTranspose", "MatMul", "Gemm"]


class _PreprocessAdvice(logging.Filter):
    """ORT's quantizer logs 'Please consider pre-processing' on the root logger; `prepare` has done it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


logging.getLogger().addFilter(_PreprocessAdvice())
_TYPES = {"int8": "QInt8", "uint8": "QUInt8"}


def prepare(model: onnx.ModelProto) -> onnx.ModelProto:
    """A model ORT's quantizer handles: initializers for weights, opset >= 13, inferred shapes."""
    prepared = slim(model)
    opset = next((o.version for o in prepared.opset_import if o.domain in ("", "ai.onnx")), 13)
    if opset < 13:
        try:
            prepared = version_converter.convert_version(prepared, 13)
        except Exception as exc:
            raise TiermlError(f"cannot raise the model from opset {opset} to 13 (needed for per-channel int8): "
                              f"{str(exc).splitlines()[0][:200]}") from exc
    try:
        return shape_inference.infer_shapes(prepared, strict_mode=False)
    except Exception:
        return prepared


class Reader:
    """ORT CalibrationDataReader over a Dataset, one sample (batch of one) at a time."""

    def __init__(self, dataset: Dataset, input_name: str, samples: int) -> None:
        self.rows = iter(dataset.x[:samples])
        self.input_name = input_name

    def get_next(self) -> dict[str, np.ndarray] | None:
        row = next(self.rows, None)
        return None if row is None else {self.input_name: row[None]}

    def __len__(self) -> int:  # ORT asks for the size with strided calibration
        return 0


def calibration_cache(model: onnx.ModelProto, data: Dataset, method: str, samples: int, workspace: Workspace,
                      percentile: float) -> Path:
    """Tensor ranges for `model` on `data`, computed once and kept in the workspace's scratch folder."""
    from onnxruntime.quantization import CalibrationMethod, create_calibrator
    from onnxruntime.quantization.calibrate import save_tensors_data

    rows = data.x[:samples]
    key = sha256_bytes(serialize(model) + rows.tobytes() + f"{rows.shape}|{method}|{percentile}".encode())
    path = workspace.scratch() / f"calibration-{key[:16]}.json"
    if path.exists():
        return path
    calibrate = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                 "percentile": CalibrationMethod.Percentile}[method]
    options: dict[str, object] = {}
    if method == "entropy":
        options = {"num_bins": 2048, "num_quantized_bins": 128}
    elif method == "percentile":
        options = {"percentile": percentile, "num_bins": 2048}
    check_loads(model, "float")  # calibration runs the model: say which node ORT cannot run, before it does
    with tempfile.TemporaryDirectory(prefix="tierml-calib-") as tmp:
        source = Path(tmp) / "model.onnx"
        onnx.save(model, source)
        try:
            calibrator = create_calibrator(source, None, augmented_model_path=str(Path(tmp) / "augmented.onnx"),
                                           calibrate_method=calibrate, extra_options=options)
            calibrator.collect_data(Reader(data, model.graph.input[0].name, samples))
            save_tensors_data(calibrator.compute_data(), path)
        except Exception as exc:
            raise _quantizer_error(exc, model) from exc
    return path


def _quantizer_error(exc: Exception, model: onnx.ModelProto | None = None) -> TiermlError:
    message = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
    node = re.search(r"node[^'\"]*['\"]([^'\"]+)['\"]", message)
    named = [node.group(1)] if node else _nodes_named_in(message, model)
    where = f" at node '{', '.join(named)}'" if named else ""
    return TiermlError(f"ONNX Runtime's quantizer failed{where}: {message}; leave the node in float with "
                       "nodes_to_exclude=NAME or restrict op_types (e.g. op_types=Conv+MatMul)")


def check_loads(model: onnx.ModelProto, what: str) -> None:
    """Every artifact must load and run in ORT: a quantizer can write files ORT refuses."""
    try:
        make_session(model, threads=1)
    except Exception as exc:
        message = str(exc).strip().splitlines()[0][:300]
        named = _nodes_named_in(message, model)
        where = f" (node {', '.join(repr(n) for n in named)})" if named else ""
        raise TiermlError(f"the {what} model does not load in ONNX Runtime{where}: {message}") from exc


def _nodes_named_in(message: str, model: onnx.ModelProto | None) -> list[str]:
    """Nodes whose name, or `domain:op_type`, an ORT message mentions."""
    if model is None:
        return []
    found = []
    for index, node in enumerate(model.graph.node):
        op = f"{node.domain}:{node.op_type}" if node.domain else node.op_type
        if (node.name and f"'{node.name}'" in message) or (node.domain and op in message):
            found.append(node.name or f"#{index} ({op})")
    return found[:5]


class _QuantizeConfig(PassConfig):
    weight_type: Literal["int8", "uint8"] = "int8"  # ORT's default
    per_channel: bool = False
    reduce_range: bool = False
    op_types: list[str] | Literal["all", "compute"] = "all"
    nodes_to_exclude: list[str] = Field(default_factory=list)

    def common(self) -> dict[str, object]:
        """The keyword arguments quantize_static and quantize_dynamic share."""
        from onnxruntime.quantization import QuantType

        return {"op_types_to_quantize": _op_types(self.op_types), "per_channel": self.per_channel,
                "reduce_range": self.reduce_range, "weight_type": getattr(QuantType, _TYPES[self.weight_type]),
                "nodes_to_exclude": list(self.nodes_to_exclude)}


class QuantizeStaticConfig(_QuantizeConfig):
    format: Literal["qdq", "qoperator"] = "qdq"
    activation_type: Literal["uint8", "int8"] = "int8"  # ORT's defaults: S8S8
    calibration: Literal["minmax", "entropy", "percentile"] = "minmax"
    percentile: float = 99.999
    samples: int = 64


def _quantize(prepared: onnx.ModelProto, call: Callable[[Path, Path], None]) -> onnx.ModelProto:
    """Run one of ORT's quantizers file-to-file, and require the result to load in ORT."""
    with tempfile.TemporaryDirectory(prefix="tierml-quant-") as tmp:
        source, out = Path(tmp) / "in.onnx", Path(tmp) / "out.onnx"
        onnx.save(prepared, source)
        try:
            call(source, out)
        except Exception as exc:
            raise _quantizer_error(exc, prepared) from exc
        quantized = onnx.load(out)
    check_loads(quantized, "quantized")
    return quantized


class QuantizeStatic(Pass):
    """Static int8 (activation ranges from the calibration set)."""

    name = "quantize-static"
    Config = QuantizeStaticConfig

    def apply(self, state: ModelState, workspace: Workspace) -> tuple[ModelState, list[str]]:
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

        config: QuantizeStaticConfig = self.config  # type: ignore[assignment]
        data = workspace.require(self.name, workspace.calibration, "calibration data")
        prepared = prepare(state.proto)
        cache = calibration_cache(prepared, data, config.calibration, config.samples, workspace, config.percentile)
        method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                  "percentile": CalibrationMethod.Percentile}[config.calibration]
        quantized = _quantize(prepared, lambda source, out: quantize_static(
            source, out, None, quant_format=QuantFormat.QDQ if config.format == "qdq" else QuantFormat.QOperator,
            activation_type=getattr(QuantType, _TYPES[config.activation_type]), calibrate_method=method,
            calibration_cache_path=cache, **config.common()))
        precision = "mixed" if config.nodes_to_exclude else "int8"
        return ModelState(quantized, precision, None), [f"{_count_q(quantized)} QuantizeLinear nodes"]


class QuantizeDynamic(Pass):
    """int8 weights, activation ranges computed at run time (no calibration data)."""

    name = "quantize-dynamic"
    Config = _QuantizeConfig

    def apply(self, state: ModelState, workspace: Workspace) -> tuple[ModelState, list[str]]:
        from onnxruntime.quantization import quantize_dynamic

        config: _QuantizeConfig = self.config  # type: ignore[assignment]
        quantized = _quantize(prepare(state.proto), lambda source, out: quantize_dynamic(
            source, out, **config.common()))
        notes = []
        if any(n.op_type == "ConvInteger" for n in quantized.graph.node):
            notes.append("dynamic quantization turned convolutions into ConvInteger, which ORT runs slowly on CPU")
        return ModelState(quantized, "int8", None), notes


def _op_types(choice: list[str] | str) -> list[str] | None:
    if choice == "all":
        return None
    return list(COMPUTE_OPS) if choice == "compute" else list(choice)


def _count_q(model: onnx.ModelProto) -> int:
    return sum(1 for n in model.graph.node if n.op_type == "QuantizeLinear")
