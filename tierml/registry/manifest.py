"""What a release is and what a device is told to run: the two documents the registry signs.

A `Release` is one model version: for every device class (a catalogue device name, as `tierml build` targets
them) the variant it runs, each variant's artifacts by sha256, its measured metrics and lineage, and a small
golden set (inputs, and each variant's reference outputs on them) that a device replays before it switches.
A `DesiredState` tells one device which release to run; its revision only grows and it expires, so a replayed
or a frozen one is refused (`signing.check_fresh`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field

RELEASE_KIND = "tierml.release/v1"
DESIRED_KIND = "tierml.desired/v1"


class Artifact(BaseModel):
    """One file of a release, stored as a blob."""

    name: str  # its file name on the device: model.onnx, model.c, golden.npz ...
    sha256: str
    size: int
    media_type: str = "application/octet-stream"


class Tolerance(BaseModel):
    """How close a device's outputs on the golden inputs must come to the reference outputs."""

    atol: float = 1e-4
    rtol: float = 1e-3
    min_agreement: float = 1.0  # share of golden inputs whose top-1 class must agree (class-score outputs)


class ReleaseVariant(BaseModel):
    name: str
    format: Literal["onnx", "mcu-c"]
    precision: str
    artifacts: list[Artifact]
    golden_outputs: Artifact | None = None  # .npz of this variant's outputs on the golden inputs, by output name
    tolerance: Tolerance = Field(default_factory=Tolerance)
    latency_ms: float | None = None  # measured median on the build host (the health gate's reference)
    quality: dict[str, Any] | None = None  # {"metric": ..., "value": ..., "samples": ...}
    lineage: dict[str, Any] = Field(default_factory=dict)

    def artifact(self, name: str) -> Artifact:
        return next(a for a in self.artifacts if a.name == name)


class Release(BaseModel):
    kind: Literal["tierml.release/v1"] = RELEASE_KIND
    model: str
    version: int = Field(ge=1)
    created: str = Field(default_factory=lambda: datetime.now(UTC).isoformat())
    devices: dict[str, str]  # device class -> variant name
    variants: list[ReleaseVariant]
    golden_inputs: Artifact | None = None  # .npz with the inputs, by input name
    parent: int | None = None  # the version this one replaces, when published as its successor
    notes: list[str] = Field(default_factory=list)

    def variant_for(self, device_class: str) -> ReleaseVariant | None:
        name = self.devices.get(device_class)
        return next((v for v in self.variants if v.name == name), None)

    def blobs(self) -> list[str]:
        """Every blob the release references."""
        found = [a.sha256 for v in self.variants for a in v.artifacts]
        found += [v.golden_outputs.sha256 for v in self.variants if v.golden_outputs]
        if self.golden_inputs:
            found.append(self.golden_inputs.sha256)
        return sorted(set(found))


class DesiredState(BaseModel):
    """What one device of a group should run (no release: keep what it has)."""

    kind: Literal["tierml.desired/v1"] = DESIRED_KIND
    group: str
    device: str
    revision: int = Field(ge=0)
    model: str | None = None
    version: int | None = None
    manifest_sha256: str | None = None  # the signed release manifest's blob
    rollout: str | None = None  # the rollout that put this device on this release, if any
    issued: str
    expires: str

    @classmethod
    def issue(cls, ttl_s: float, **fields: Any) -> DesiredState:
        now = datetime.now(UTC)
        return cls(issued=now.isoformat(), expires=(now + timedelta(seconds=ttl_s)).isoformat(), **fields)
