"""A Variant: an ONNX artifact with its sha256, precision, measured metrics and lineage."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from tierml.errors import TiermlError
from tierml.files import staged_dir, write_synced
from tierml.hardware.estimate import Estimate
from tierml.model.measure import LatencyStats
from tierml.optimize.metrics import Quality
from tierml.optimize.passes import PassRecord


class DeviceFigures(BaseModel):
    """A variant on one target device: estimated latency and energy, and whether it fits."""

    device: str
    precision: str
    latency: Estimate
    energy: Estimate | None
    fits: bool
    ram_need_bytes: int
    ram_have_bytes: float
    storage_need_bytes: int | None
    storage_have_bytes: float | None


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


def write_variant(variant: Variant, model_bytes: bytes, folder: Path) -> Variant:
    """Write model.onnx and lineage.json into `folder` atomically: a temporary folder renamed into place,
    so a failure never leaves a half-written variant."""
    saved = variant.model_copy(update={"path": str(folder)})
    try:
        with staged_dir(folder) as tmp:
            write_synced(tmp / "model.onnx", model_bytes)
            write_synced(tmp / "lineage.json", (json.dumps(saved.model_dump(mode="json"), indent=1) + "\n").encode())
    except OSError as exc:
        raise TiermlError(f"cannot write the variant to {folder}: {exc.strerror or exc}") from exc
    return saved
