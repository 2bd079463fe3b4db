"""The device and link catalog: what hardware and networks can do, every number with its source.

Catalog files are YAML (see `tierml/hardware/catalog/devices.yaml` and `links.yaml`): a `sources`
table (title, url, date) and `devices` / `links` lists in which every number is written as
`{value: ..., source: <key>}`. Users extend or override entries with their own files (`--catalog`);
an entry with the same name replaces the built-in one.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tierml.errors import TiermlError, did_you_mean
from tierml.yamlfile import read_yaml

Tier = Literal["cloud", "edge", "mobile", "mcu"]
FIBRE_KM_PER_S = 200_000.0  # light in glass (n ~ 1.47-1.5)
VACUUM_KM_PER_S = 299_792.458


class Source(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str
    url: str = ""
    date: str = Field(description="publication or access date, YYYY or YYYY-MM or YYYY-MM-DD")
    note: str = ""


class Number(BaseModel):
    """A figure and where it comes from."""

    model_config = ConfigDict(extra="forbid")

    value: float = Field(ge=0)
    source: str
    note: str = ""


class Quantiles(BaseModel):
    """A distribution summarised by its median and 95th percentile."""

    model_config = ConfigDict(extra="forbid")

    p50: float = Field(ge=0)
    p95: float = Field(ge=0)
    source: str
    note: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> Quantiles:
        if self.p95 < self.p50:
            raise ValueError(f"p95 ({self.p95}) is below p50 ({self.p50})")
        return self


def _require_positive(entry: BaseModel, fields: tuple[str, ...]) -> None:
    """Rates and capacities divide estimates: zero would be a division by zero, not a figure."""
    for name in fields:
        number = getattr(entry, name)
        if number is not None and number.value <= 0:
            raise ValueError(f"{name}.value must be greater than 0 (got {number.value:g})")


class Entry(BaseModel):
    """A named catalogue entry whose figures are `Number`s."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    title: str
    kind: str

    def numbers(self) -> dict[str, Number]:
        return {k: v for k, v in self if isinstance(v, Number)}


class Device(Entry):
    """What one device can do. Peaks are for the whole device; one inference runs on one of its `units`."""

    tier: Tier
    compute: str = ""
    units: int = Field(default=1, ge=1, description="identical accelerators/chips; one request uses one")
    peak_fp32_gflops: Number | None = None
    peak_int8_gops: Number | None = None
    memory_bandwidth_gbps: Number
    ram_mb: Number
    storage_mb: Number | None = None
    power_idle_w: Number | None = None
    power_active_w: Number | None = None
    battery_wh: Number | None = None
    price_usd: Number | None = None
    usd_per_hour: Number | None = None
    usd_per_gb_second: Number | None = None
    usd_per_million_requests: Number | None = None
    efficiency: Number | None = Field(
        default=None, description="fraction of peak a batch-1 model reaches, relative to this host's profile")
    cold_start_s: Number | None = None
    node_overhead_us: Number | None = Field(
        default=None, description="fixed cost per executed op (kernel launch, dispatch); default: the host's")
    request_overhead_us: Number | None = Field(
        default=None, description="fixed cost per inference (runtime entry, host-device copies); default: the host's")

    @model_validator(mode="after")
    def _has_compute(self) -> Device:
        if self.peak_fp32_gflops is None and self.peak_int8_gops is None:
            raise ValueError("give peak_fp32_gflops or peak_int8_gops (or both)")
        _require_positive(self, ("peak_fp32_gflops", "peak_int8_gops", "memory_bandwidth_gbps", "ram_mb"))
        return self

    # Base-unit views used by the estimators (one inference uses one unit).
    def peak_flops(self, precision: str = "fp32") -> float:
        number = self.peak_fp32_gflops if precision == "fp32" else self.peak_int8_gops
        return number.value * 1e9 / self.units if number else 0.0

    @property
    def bandwidth(self) -> float:
        return self.memory_bandwidth_gbps.value * 1e9 / self.units

    @property
    def ram_bytes(self) -> float:
        return self.ram_mb.value * 1e6 / self.units

    @property
    def storage_bytes(self) -> float | None:
        return self.storage_mb.value * 1e6 if self.storage_mb else None


class Link(Entry):
    """What one network hop does: latency distribution, bandwidth each way, energy and price per byte."""

    rtt_ms: Quantiles
    up_mbps: Number
    down_mbps: Number
    path_km: Number | None = None
    medium: Literal["fibre", "radio", "vacuum"] = "fibre"
    scope: Literal["local", "wide"] = Field(
        default="wide", description="local: stays on the site's own network; wide: crosses the internet or a carrier")
    energy_nj_per_bit_up: Number | None = None
    energy_nj_per_bit_down: Number | None = None
    tail_energy_j: Number | None = Field(default=None, description="radio tail after each transfer session")
    usd_per_gb_up: Number | None = None
    usd_per_gb_down: Number | None = None
    max_payload_bytes: Number | None = None
    duty_cycle: Number | None = Field(default=None, description="share of time the radio may transmit (LoRa: 0.01)")

    @property
    def rtt_floor_ms(self) -> float:
        """Speed-of-light round trip over the path (fibre at ~200,000 km/s; radio/vacuum at c)."""
        if self.path_km is None:
            return 0.0
        speed = FIBRE_KM_PER_S if self.medium == "fibre" else VACUUM_KM_PER_S
        return 2 * self.path_km.value / speed * 1e3

    @model_validator(mode="after")
    def _positive_rates(self) -> Link:
        _require_positive(self, ("up_mbps", "down_mbps", "duty_cycle"))
        return self

    @model_validator(mode="after")
    def _rtt_above_floor(self) -> Link:
        if self.path_km is not None and self.rtt_ms.p50 + 1e-9 < self.rtt_floor_ms:
            raise ValueError(
                f"rtt_ms.p50 {self.rtt_ms.p50} ms is below the speed-of-light floor "
                f"{self.rtt_floor_ms:.1f} ms for {self.path_km.value:g} km")
        return self


class CatalogFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sources: dict[str, Source] = {}
    devices: list[Device] = []
    links: list[Link] = []

    @field_validator("devices", "links")
    @classmethod
    def _unique(cls, entries: list) -> list:
        seen: set[str] = set()
        for entry in entries:
            if entry.name in seen:
                raise ValueError(f"'{entry.name}' is defined twice")
            seen.add(entry.name)
        return entries


class Catalog(BaseModel):
    """Devices and links by name, with the sources their numbers cite."""

    sources: dict[str, Source]
    devices: dict[str, Device]
    links: dict[str, Link]

    def device(self, name: str) -> Device:
        if name not in self.devices:
            raise TiermlError(_unknown("device", name, self.devices))
        return self.devices[name]

    def link(self, name: str) -> Link:
        if name not in self.links:
            raise TiermlError(_unknown("link", name, self.links))
        return self.links[name]

    def with_device(self, device: Device, sources: dict[str, Source] | None = None) -> Catalog:
        return Catalog(sources={**self.sources, **(sources or {})}, devices={**self.devices, device.name: device},
                       links=self.links)


def _unknown(kind: str, name: str, known: Iterable[str]) -> str:
    names = sorted(known)
    listed = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
    return f"unknown {kind} '{name}'; {did_you_mean(name, names)}run `tierml devices` to list them (known: {listed})"


def builtin_paths() -> list[Path]:
    folder = resources.files("tierml.hardware") / "catalog"
    return [Path(str(folder / "devices.yaml")), Path(str(folder / "links.yaml"))]


@functools.cache
def _builtin() -> Catalog:
    return merge([read_catalog_file(p) for p in builtin_paths()])


def load_catalog(extra: Sequence[Path | str] = ()) -> Catalog:
    """The built-in catalog, with entries from the user's files added (same name = replaced)."""
    if not extra:
        return _builtin()
    files = [read_catalog_file(Path(p)) for p in extra]
    return merge([_builtin(), *files])


def merge(parts: Sequence[Catalog]) -> Catalog:
    sources: dict[str, Source] = {}
    devices: dict[str, Device] = {}
    links: dict[str, Link] = {}
    for part in parts:
        sources.update(part.sources)
        devices.update(part.devices)
        links.update(part.links)
    return Catalog(sources=sources, devices=devices, links=links)


def read_catalog_file(path: Path) -> Catalog:
    """Parse and validate one catalog file; errors name the file, the line and the field."""
    doc = read_yaml(path, "catalog file")
    parsed = doc.validate(CatalogFile)
    known_sources = set(parsed.sources) | (set() if path in builtin_paths() else set(_builtin().sources))
    for group, entries in (("devices", parsed.devices), ("links", parsed.links)):
        for index, entry in enumerate(entries):
            for field_name, number in _cited(entry):
                if number.source not in known_sources:
                    raise doc.error((group, index, *field_name, "source"),
                                    f"source '{number.source}' is not in the 'sources' table; add it there with "
                                    "title, url and date")
    return Catalog(
        sources=parsed.sources,
        devices={d.name: d for d in parsed.devices},
        links={k.name: k for k in parsed.links},
    )


def _cited(entry: Entry) -> list[tuple[tuple[str, ...], Number | Quantiles]]:
    cited: list[tuple[tuple[str, ...], Number | Quantiles]] = [((k,), v) for k, v in entry.numbers().items()]
    if isinstance(entry, Link):
        cited.append((("rtt_ms",), entry.rtt_ms))
    return cited
