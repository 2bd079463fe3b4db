"""A Variant: an ONNX artifact with its sha256, precision, measured metrics and lineage."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from pydantic import BaseModel

from tierml.errors import TiermlError
from tierml.hardware.estimate import Estimate
from tierml.model.measure import LatencyStats
from tierml.optimize.metrics import Quality
from tierml.optimize.passes import PassRecord


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


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_variant(variant: Variant, model_bytes: bytes, folder: Path) -> Variant:
    """Write model.onnx and lineage.json into `folder` atomically: a temporary folder renamed into place,
    so a failure never leaves a half-written variant."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        (tmp / "model.onnx").write_bytes(model_bytes)
        saved = variant.model_copy(update={"path": str(folder)})
        (tmp / "lineage.json").write_text(json.dumps(saved.model_dump(mode="json"), indent=1) + "\n")
        swap_in(tmp, folder)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise TiermlError(f"cannot write the variant to {folder}: {exc.strerror or exc}") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return saved


def swap_in(new: Path, target: Path) -> None:
    """Replace `target` by the folder `new` with renames only (the old one is kept until the new one is in)."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}-old-", dir=target.parent))
        old.rmdir()
        os.replace(target, old)
    try:
        os.replace(new, target)
    except OSError:
        if old is not None:
            os.replace(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
