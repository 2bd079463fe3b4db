"""The app spec, tierml.yaml: the model, its data, what the deployment must achieve, and the fleet.

Relative paths in the file are relative to the file. `tierml plan --schema` prints the JSON schema
for editors.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tierml.errors import did_you_mean
from tierml.yamlfile import YamlDocument, read_yaml

Privacy = Literal["device", "local-network", "cloud"]
Connectivity = Literal["always", "intermittent", "offline"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelSpec(Strict):
    """The model: an ONNX file, or a recipe `file.py:factory` (torch module, sklearn estimator or ModelProto)."""

    path: str | None = None
    recipe: str | None = None
    input_shapes: dict[str, list[int]] = Field(
        default_factory=dict, description="NAME: [dims] for every input with dynamic dims")
    small: str | None = Field(default=None, description="a smaller model for cascades (path or recipe)")

    @model_validator(mode="after")
    def _one_source(self) -> ModelSpec:
        if (self.path is None) == (self.recipe is None):
            raise ValueError("give exactly one of 'path' (model.onnx) or 'recipe' (file.py:factory)")
        for name, dims in self.input_shapes.items():
            if not dims or any(d <= 0 for d in dims):
                raise ValueError(f"input_shapes.{name} must be a list of positive integers, e.g. [1, 3, 224, 224]")
        return self


class DataSpec(Strict):
    """Evaluation and calibration sets: .npz files with arrays x (inputs) and y (labels)."""

    eval: str | None = None
    calibration: str | None = None


class LatencySLO(Strict):
    p50_ms: float | None = Field(default=None, gt=0)
    p99_ms: float | None = Field(default=None, gt=0)


class PowerSpec(Strict):
    """Average power the on-site inference path may draw, and/or a battery that must last `target_hours`."""

    budget_w: float | None = Field(default=None, gt=0)
    battery_wh: float | None = Field(default=None, gt=0)
    target_hours: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _battery_needs_target(self) -> PowerSpec:
        if self.target_hours is not None and self.battery_wh is None:
            raise ValueError("target_hours needs battery_wh (the battery's capacity in watt-hours)")
        return self


class Throughput(Strict):
    requests_per_day: float = Field(gt=0, description="inferences per day, whole fleet")
    peak_rps: float | None = Field(default=None, gt=0, description="busiest-second rate, whole fleet")


class Requirements(Strict):
    latency: LatencySLO | None = None
    min_accuracy: float | None = Field(default=None, ge=0, le=1)
    privacy: Privacy = Field(default="cloud", description="how far raw data may travel")
    connectivity: Connectivity = Field(default="always", description="the network at inference time")
    power: PowerSpec | None = None
    throughput: Throughput
    horizon_years: float = Field(default=3, gt=0)


class SourceSpec(Strict):
    """Where the data originates: `count` devices of one catalogue type."""

    device: str
    count: int = Field(default=1, ge=1)
    link: str | None = Field(default=None, description="catalogue link to the next tier (edge if any, else cloud)")
    stream_mbps: float | None = Field(default=None, gt=0,
                                      description="raw data produced continuously per device (cameras)")
    runs_models: bool = True
    browser: bool = Field(default=False, description="also consider running in the browser (onnxruntime-web)")
    existing: bool = Field(default=True, description="already owned: no purchase")


class EdgeSpec(Strict):
    """On-site servers or gateways the sources reach over their link."""

    name: str
    device: str
    count: int = Field(default=1, ge=1)
    link: str | None = Field(default=None, description="catalogue link from the edge to the cloud")
    existing: bool = False


class CloudOption(Strict):
    name: str
    device: str = Field(description="catalogue device whose figures describe the compute")
    usd_per_request: float | None = Field(default=None, ge=0, description="a managed API's price per inference")
    batch_window_hours: float | None = Field(default=None, gt=0, description="also consider overnight batch")


class CloudSpec(Strict):
    distance_km: float = Field(default=0, ge=0, description="from the sources to the cloud region (RTT floor)")
    options: list[CloudOption] = Field(min_length=1)


class FleetSpec(Strict):
    source: SourceSpec
    edge: list[EdgeSpec] = []
    cloud: CloudSpec | None = None


class Assumptions(Strict):
    """Prices and factors the plan uses; every one is reported in the plan with its value."""

    electricity_usd_per_kwh: float = Field(default=0.15, ge=0)
    ops_usd_per_device_month: float = Field(default=1.0, ge=0, description="managing a device that runs a model")
    amortisation_years: float = Field(default=3, gt=0)
    cellular_usd_per_gb: float | None = Field(default=None, ge=0, description="overrides the link catalogue")
    target_utilisation: float = Field(default=0.7, gt=0, le=1, description="how busy shared servers may run")
    escalation_rate: float = Field(default=0.1, ge=0, le=1, description="cascade: share of inputs escalated")
    peak_to_mean: float = Field(default=3.0, ge=1, description="peak rate / mean rate when peak_rps is absent")
    result_bytes: int | None = Field(default=None, ge=0, description="what a local tier sends upstream per result")
    browser_slowdown: float = Field(default=2.0, ge=1, description="onnxruntime-web WASM vs native CPU")


class Ranking(Strict):
    cost: float = Field(default=1.0, ge=0)
    latency: float = Field(default=0.5, ge=0)
    energy: float = Field(default=0.25, ge=0)


class AppSpec(Strict):
    """tierml.yaml."""

    name: str
    description: str = ""
    model: ModelSpec
    data: DataSpec = DataSpec()
    requirements: Requirements
    fleet: FleetSpec
    assumptions: Assumptions = Assumptions()
    ranking: Ranking = Ranking()
    catalog: list[str] = Field(default_factory=list, description="extra device/link catalogue files")

    def resolve(self, relative: str, base: Path) -> Path:
        """A path written in the spec, relative to the spec file's folder."""
        path = Path(relative)
        return path if path.is_absolute() else base / path


@dataclass
class LoadedSpec:
    """A validated spec, the folder its relative paths start from, and its YAML (to point at lines)."""

    spec: AppSpec
    base: Path
    doc: YamlDocument

    def path(self, relative: str, loc: tuple, what: str) -> Path:
        """A file the spec names, which must exist (the error points at the spec line)."""
        path = self.spec.resolve(relative, self.base)
        if not path.exists():
            raise self.doc.error(loc, f"{what} '{relative}' not found (looked for {path})")
        return path

    def check_catalog(self, devices: Iterable[str], links: Iterable[str]) -> None:
        """Every device and link the fleet names must be in the catalogue."""
        known_devices, known_links = set(devices), set(links)
        fleet = self.spec.fleet
        named: list[tuple[tuple, str, str]] = [(("fleet", "source", "device"), fleet.source.device, "device")]
        if fleet.source.link:
            named.append((("fleet", "source", "link"), fleet.source.link, "link"))
        for i, edge in enumerate(fleet.edge):
            named.append((("fleet", "edge", i, "device"), edge.device, "device"))
            if edge.link:
                named.append((("fleet", "edge", i, "link"), edge.link, "link"))
        for i, option in enumerate(fleet.cloud.options if fleet.cloud else []):
            named.append((("fleet", "cloud", "options", i, "device"), option.device, "device"))
        for loc, name, kind in named:
            known = known_devices if kind == "device" else known_links
            if name not in known:
                raise self.doc.error(loc, f"unknown {kind} '{name}'; {did_you_mean(name, known)}`tierml devices` "
                                          "lists them, or add "
                                          "yours with a catalog file under 'catalog:'")


def load_spec(path: Path) -> LoadedSpec:
    """Read and validate tierml.yaml."""
    doc = read_yaml(path, "app spec")
    return LoadedSpec(doc.validate(AppSpec), path.resolve().parent, doc)


def json_schema() -> dict:
    return AppSpec.model_json_schema()
