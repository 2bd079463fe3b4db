"""The per-device variant choice: which of the build's measured variants each target device gets, and why.

A planning decision, kept pure: measured variants (with their per-device figures) and the devices in; one
`Rung` per device out, with every budget's margin, the variants it could not take and the closest miss.
"""

from __future__ import annotations

from pydantic import BaseModel

from tierml.hardware.catalog import Device
from tierml.optimize.variant import DeviceFigures, Variant
from tierml.spec.app import LatencySLO

NEAR_BEST = 0.005  # quality within half a point of the best counts as equal; speed decides


class Margin(BaseModel):
    """One constraint of a device: what the variant needs against what the device allows."""

    what: str  # "RAM" | "storage" | "latency" | "quality"
    need: float
    limit: float
    unit: str
    higher_is_better: bool = False  # quality: need >= limit; the rest: need <= limit

    @property
    def ok(self) -> bool:
        return self.need >= self.limit if self.higher_is_better else self.need <= self.limit

    @property
    def shortfall(self) -> float:
        """How far over the limit, relative to it (0 when within)."""
        if self.ok or self.limit == 0:
            return 0.0
        return (self.limit - self.need) / self.limit if self.higher_is_better else (self.need - self.limit) / self.limit

    def describe(self) -> str:
        if self.unit == "B":
            spare = self.limit - self.need
            word = "spare" if spare >= 0 else "over"
            return f"{self.what} {_bytes(self.need)} of {_bytes(self.limit)} ({_bytes(abs(spare))} {word})"
        if self.unit == "ms":
            return f"{self.what} {self.need:.3g} ms vs SLO {self.limit:g} ms ({self.limit - self.need:+.3g} ms)"
        return f"{self.what} {self.need:.4f} vs floor {self.limit:.4f} ({(self.need - self.limit) * 100:+.2f} pt)"


class Rung(BaseModel):
    """A target device and the variant it gets (or why none)."""

    device: str
    tier: str
    variant: str | None
    precision: str | None = None
    latency_ms: float | None = None
    latency_method: str = ""
    margins: list[Margin] = []
    reason: str
    rejected: dict[str, str] = {}  # variant -> why not
    closest_miss: str | None = None


class Ladder(BaseModel):
    app: str
    spec: str
    out: str
    host: str
    threads: int
    quality_floor: float
    quality_metric: str
    variants: list[Variant]
    rungs: list[Rung]
    notes: list[str] = []


def _bytes(value: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if value >= size:
            return f"{value / size:.3g} {unit}"
    return f"{value:,.0f} B"


def _runs_natively(variant: Variant, device: Device) -> str:
    """Why the device cannot run this variant's precision well ('' when it can)."""
    needs = {"fp32": {"fp32"}, "fp16": {"fp16"}, "int8": {"int8"}, "mixed": {"int8", "fp32"}}[variant.precision]
    missing = needs - set(device.precisions)
    if missing:
        return f"{device.name} does not run {'/'.join(sorted(missing))} natively"
    speedup = variant.metrics.speedup_vs_fp32
    if device.arch == "x86_64" and variant.precision in ("int8", "mixed") and speedup is not None and speedup < 1:
        return f"int8 ran {speedup:.2f}x of fp32 speed on this x86 host; never ship int8 slower than fp32"
    return ""


def margins(variant: Variant, figures: DeviceFigures, floor: float, slo: LatencySLO | None) -> list[Margin]:
    """The device's budgets for this variant: RAM, storage, latency (one request's budget under the SLO), quality."""
    found = [Margin(what="RAM", need=figures.ram_need_bytes, limit=figures.ram_have_bytes, unit="B")]
    if figures.storage_need_bytes is not None and figures.storage_have_bytes is not None:
        found.append(Margin(what="storage", need=figures.storage_need_bytes, limit=figures.storage_have_bytes,
                            unit="B"))
    if slo is not None:
        found.append(Margin(what="latency", need=figures.latency.value, limit=slo.budget_ms, unit="ms"))
    quality = variant.quality_on(figures.device)
    if quality is not None:
        found.append(Margin(what="quality", need=quality.value, limit=floor, unit=quality.metric,
                            higher_is_better=True))
    return found


def choose(device: Device, variants: list[Variant], floor: float, slo: LatencySLO | None) -> Rung:
    """The rung for one device: the most accurate variant it runs within every budget (then the fastest)."""
    fitting: list[tuple[Variant, DeviceFigures, list[Margin]]] = []
    rejected: dict[str, str] = {}
    misses: list[tuple[float, str]] = []
    for variant in variants:
        figures = next((f for f in variant.metrics.devices if f.device == device.name), None)
        why = _runs_natively(variant, device) or (figures.refused if figures else "no estimate for this device")
        if why:
            rejected[variant.name] = why
            continue
        assert figures is not None
        checks = margins(variant, figures, floor, slo)
        failed = [m for m in checks if not m.ok]
        if failed:
            rejected[variant.name] = "; ".join(m.describe() for m in failed)
            misses.append((max(m.shortfall for m in failed), f"{variant.name}: {rejected[variant.name]}"))
            continue
        fitting.append((variant, figures, checks))
    if not fitting:
        closest = min(misses)[1] if misses else None
        reason = ("no variant fits: closest miss " + closest) if closest else "no variant runs on this device"
        return Rung(device=device.name, tier=device.tier, variant=None, reason=reason, rejected=rejected,
                    closest_miss=closest)
    best_quality = max(_quality(v, device.name) for v, _, _ in fitting)
    near = [item for item in fitting if _quality(item[0], device.name) >= best_quality - NEAR_BEST]
    variant, figures, checks = min(near, key=lambda item: (item[1].latency.value, item[0].metrics.size_bytes))
    reason = (f"most accurate within budget ({_quality(variant, device.name):.4f}); fastest on {device.name} of the "
              f"{len(near)} within {NEAR_BEST * 100:g} pt of the best")
    return Rung(device=device.name, tier=device.tier, variant=variant.name, precision=figures.precision,
                latency_ms=figures.latency.value, latency_method=figures.latency.method, margins=checks,
                reason=reason, rejected=rejected)


def _quality(variant: Variant, device: str) -> float:
    quality = variant.quality_on(device)
    return quality.value if quality else 0.0


def choose_all(devices: list[Device], variants: list[Variant], floor: float, slo: LatencySLO | None) -> list[Rung]:
    """One rung per device, in the order given."""
    return [choose(device, variants, floor, slo) for device in devices]
