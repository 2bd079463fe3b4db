"""A model against every device and link: does it fit, how fast, how much energy, what a request costs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel

from tierml.hardware.catalog import Catalog, Device
from tierml.hardware.estimate import Estimate, LatencyEstimator, NodeTime, Precision, weakest
from tierml.hardware.transfer import LinkEstimate, transfer
from tierml.model.measure import LatencyStats
from tierml.model.profile import ModelProfile
from tierml.model.tensors import TensorInfo

_FLOATS = frozenset({"float", "double", "float16", "bfloat16"})


class Fit(BaseModel):
    """What a resource must hold against what the device has."""

    resource: Literal["ram", "storage"]
    need_bytes: int
    have_bytes: float
    what: str

    @property
    def margin_bytes(self) -> float:
        return self.have_bytes - self.need_bytes

    @property
    def fits(self) -> bool:
        return self.margin_bytes >= 0


class DeviceEstimate(BaseModel):
    device: str
    title: str
    tier: str
    precision: Precision
    latency: Estimate
    energy: Estimate | None  # mJ per inference
    ram: Fit
    storage: Fit | None
    time_by_bound: dict[str, float]  # share of the latency that is compute-, memory-, overhead-bound
    slowest: list[NodeTime]
    notes: list[str] = []

    @property
    def fits(self) -> bool:
        return self.ram.fits and (self.storage is None or self.storage.fits)


class ModelEstimate(BaseModel):
    """`tierml estimate`: one model on the devices and links asked for."""

    model: str
    sha256: str
    inputs: list[TensorInfo]
    params: int
    macs: int
    weight_bytes: int
    peak_activation_bytes: int
    calibration: str
    measured: LatencyStats | None = None
    devices: list[DeviceEstimate]
    links: list[LinkEstimate]


def choose_precision(device: Device, requested: str) -> Precision:
    """fp32 unless asked otherwise; int8 where the device has no fp32 path or is a microcontroller."""
    if requested in ("fp32", "int8"):
        return requested  # type: ignore[return-value]
    return "int8" if device.tier == "mcu" or not device.peak_fp32_gflops else "fp32"


def weight_bytes(profile: ModelProfile, precision: Precision) -> int:
    """Stored weights at this precision (int8: floating-point weights quantized to one byte each)."""
    if precision == "fp32":
        return profile.memory.weight_bytes
    return sum(g.count if g.dtype in _FLOATS else g.bytes for g in profile.params_by_dtype)


def assess_device(profile: ModelProfile, device: Device, estimator: LatencyEstimator, precision: Precision
                  ) -> DeviceEstimate:
    breakdown = estimator.latency(profile, device, precision)
    weights = weight_bytes(profile, precision)
    activations = (profile.memory.peak_activation_bytes_int8 if precision == "int8"
                   else profile.memory.peak_activation_bytes)
    notes = []
    if device.tier == "mcu":
        ram = Fit(resource="ram", need_bytes=activations, have_bytes=device.ram_bytes,
                  what=f"peak activations {activations:,} B (weights execute in place from flash)")
        notes.append("int8 sizes estimated as 1 byte per weight and activation; code size not included")
    else:
        ram = Fit(resource="ram", need_bytes=weights + activations, have_bytes=device.ram_bytes,
                  what=f"weights {weights:,} B + peak activations {activations:,} B")
    storage = (Fit(resource="storage", need_bytes=weights, have_bytes=device.storage_bytes,
                   what=f"weights {weights:,} B") if device.storage_bytes is not None else None)
    energy = None
    if device.power_active_w is not None:
        energy = Estimate(
            value=device.power_active_w.value / device.units * breakdown.total.value, unit="mJ",
            method=weakest(breakdown.total.method, "catalogue"),
            basis=f"{device.power_active_w.value / device.units:g} W active x estimated latency")
    total = sum(t.seconds for t in breakdown.nodes) or 1.0
    shares: Counter[str] = Counter()
    for node in breakdown.nodes:
        shares[node.bound] += node.seconds / total
    return DeviceEstimate(
        device=device.name, title=device.title, tier=device.tier, precision=precision, latency=breakdown.total,
        energy=energy, ram=ram, storage=storage, time_by_bound=dict(shares),
        slowest=sorted(breakdown.nodes, key=lambda t: -t.seconds)[:5], notes=notes,
    )


def assess(
    profile: ModelProfile,
    catalog: Catalog,
    estimator: LatencyEstimator,
    devices: Sequence[str] = (),
    links: Sequence[str] = (),
    precision: str = "auto",
    calibration: str = "",
    measured: LatencyStats | None = None,
) -> ModelEstimate:
    """Estimate `profile` on the named devices and links (all of the catalogue's when none are named)."""
    chosen = [catalog.device(d) for d in devices] if devices else list(catalog.devices.values())
    hops = [catalog.link(k) for k in links] if links else list(catalog.links.values())
    up = sum(t.nbytes for t in profile.inputs)
    down = sum(t.nbytes for t in profile.outputs)
    return ModelEstimate(
        model=profile.model, sha256=profile.sha256, inputs=profile.inputs, params=profile.params, macs=profile.macs,
        weight_bytes=profile.memory.weight_bytes, peak_activation_bytes=profile.memory.peak_activation_bytes,
        calibration=calibration, measured=measured,
        devices=[assess_device(profile, d, estimator, choose_precision(d, precision)) for d in chosen],
        links=[transfer(link, up, down) for link in hops],
    )
