"""A Variant: an ONNX artifact with its sha256, precision, measured metrics and lineage."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
from pydantic import BaseModel

from tierml.data.metrics import Quality
from tierml.errors import TiermlError
from tierml.hardware.estimate import Estimate
from tierml.model.load import serialize
from tierml.model.measure import LatencyStats
from tierml.optimize.passes import PassRecord
from tierml.registry.layout import MODEL_FILE, next_version, version_dir, write_config, write_version

LINEAGE_FILE = "lineage.json"


class DeviceFigures(BaseModel):
    """A variant on one target device: estimated latency and energy, whether it fits, and — on a device whose
    runtime does not compute what ONNX Runtime does (the MCU's int8 C) — the quality measured on that runtime's
    arithmetic, or why that runtime cannot run the variant."""

    device: str
    precision: str
    latency: Estimate
    energy: Estimate | None
    fits: bool
    ram_need_bytes: int
    ram_have_bytes: float
    storage_need_bytes: int | None
    storage_have_bytes: float | None
    quality: Quality | None = None  # None: the variant's (ONNX Runtime) quality holds on this device
    refused: str = ""  # why the device's runtime cannot run the variant


class Metrics(BaseModel):
    quality: Quality | None
    size_bytes: int  # the ONNX file
    weight_bytes: int
    params: int
    macs: int
    peak_activation_bytes: int
    host_latency: LatencyStats | None = None
    speedup_vs_fp32: float | None = None  # host, same threads
    devices: list[DeviceFigures] = []
    flags: list[str] = []


class Lineage(BaseModel):
    parent: str  # where the original model came from
    parent_sha256: str
    passes: list[PassRecord]


class Variant(BaseModel):
    name: str
    precision: str
    sha256: str
    lineage: Lineage
    metrics: Metrics
    path: str | None = None  # the folder it was written to

    def quality_on(self, device: str) -> Quality | None:
        """The quality of what `device` runs: its own runtime's measurement when there is one, else ONNX Runtime's."""
        figures = next((f for f in self.metrics.devices if f.device == device), None)
        return figures.quality if figures is not None and figures.quality is not None else self.metrics.quality


def write_variant(variant: Variant, model: onnx.ModelProto, repo: Path) -> Variant:
    """Add the variant to the model repository `repo` as the next version of `variant.name`: model.onnx and
    lineage.json, visible only once both are complete, then the config.pbtxt that serves it."""
    version = next_version(repo, variant.name)
    saved = variant.model_copy(update={"path": str(version_dir(repo, variant.name, version))})
    try:
        lineage = json.dumps(saved.model_dump(mode="json"), indent=1) + "\n"
        write_version(repo, variant.name, {MODEL_FILE: serialize(model), LINEAGE_FILE: lineage.encode()}, version)
        write_config(repo, variant.name, model)
    except OSError as exc:
        raise TiermlError(f"cannot write the variant to {saved.path}: {exc.strerror or exc}") from exc
    return saved
