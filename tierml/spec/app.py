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
    torch: str | None = Field(default=None, description="file.py:factory building the same network in PyTorch "
                              "(pruning and fine-tuning need it)")
    weights: str | None = Field(default=None, description="state_dict (.pt) for the `torch` module")

    @model_validator(mode="after")
    def _one_source(self) -> ModelSpec:
        if (self.path is None) == (self.recipe is None):
            raise ValueError("give exactly one of 'path' (model.onnx) or 'recipe' (file.py:factory)")
        for name, dims in self.input_shapes.items():
            if not dims or any(d <= 0 for d in dims):
                raise ValueError(f"input_shapes.{name} must be a list of positive integers, e.g. [1, 3, 224, 224]")
        return self


class DataSpec(Strict):
    """Evaluation, calibration and training sets: .npz files with arrays x (inputs) and y (labels)."""

    eval: str | None = None
    calibration: str | None = None
    train: str | None = None


class LatencySLO(Strict):
    """The end-to-end latency objective: `p50_ms` bounds the median, `p99_ms` the 99th percentile.

    This class is the one meaning of the SLO for every stage (the plan's constraints, ranking and fallacy
    checks, the build's per-device choice, run-time deadlines): a latency distribution meets it when every
    quantile given is within its bound; a single latency (a deterministic compute time, one request's
    deadline) meets it when it is within every bound given, so its budget is the tightest bound.
    """

    p50_ms: float | None = Field(default=None, gt=0)
    p99_ms: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _some_bound(self) -> LatencySLO:
        if self.p50_ms is None and self.p99_ms is None:
            raise ValueError("give p50_ms and/or p99_ms (milliseconds), or drop latency for no SLO")
        if self.p50_ms is not None and self.p99_ms is not None and self.p50_ms > self.p99_ms:
            raise ValueError(f"p50_ms {self.p50_ms:g} is above p99_ms {self.p99_ms:g}; the median cannot be slower "
                             "than the 99th percentile")
        return self

    def bounds(self) -> list[tuple[str, float]]:
        """(quantile, bound ms) for each quantile given, the tail first."""
        return [(q, b) for q, b in (("p99", self.p99_ms), ("p50", self.p50_ms)) if b is not None]

    def miss(self, p50_ms: float, p99_ms: float) -> tuple[str, float, float] | None:
        """The first quantile over its bound as (quantile, latency ms, bound ms); None when the SLO is met."""
        values = {"p50": p50_ms, "p99": p99_ms}
        return next(((q, values[q], b) for q, b in self.bounds() if values[q] > b), None)

    @property
    def budget_ms(self) -> float:
        """What one request may take: the tightest bound given."""
        return min(b for _, b in self.bounds())

    def load(self, p50_ms: float, p99_ms: float) -> float:
        """How much of the SLO a latency uses: the largest latency/bound ratio over the quantiles given."""
        values = {"p50": p50_ms, "p99": p99_ms}
        return max(values[q] / b for q, b in self.bounds())

    def describe(self) -> str:
        return ", ".join(f"{q} <= {b:g} ms" for q, b in reversed(self.bounds()))


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


class BuildSpec(Strict):
    """`tierml build`: which devices get a rung of the ladder, and what the search may try."""

    targets: list[str] = Field(default_factory=list, description="catalogue devices (default: the fleet's)")
    prune_ratio: float = Field(default=0.5, gt=0, lt=1)
    distill: bool = True
    epochs: int = Field(default=30, ge=1)
    seconds_per_model: float = Field(default=240, gt=0)


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
    build: BuildSpec = BuildSpec()
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

    def model_reference(self, reference: str, loc: tuple) -> str:
        """A model path or `file.py:factory` recipe from the spec, resolved against the spec's folder."""
        head, sep, factory = reference.rpartition(":")
        if sep and head.endswith(".py") and factory.isidentifier():
            return f"{self.path(head, loc, 'model recipe')}:{factory}"
        return str(self.path(reference, loc, "model"))

    @property
    def main_model(self) -> tuple[str, tuple]:
        """The spec's model (path or recipe) resolved, and the spec location that names it."""
        model = self.spec.model
        loc = ("model", "path") if model.path else ("model", "recipe")
        return self.model_reference(model.path or model.recipe or "", loc), loc

    def catalog_files(self) -> list[Path]:
        """The extra catalogue files the spec names, resolved."""
        return [self.path(p, ("catalog", i), "catalog file") for i, p in enumerate(self.spec.catalog)]

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
