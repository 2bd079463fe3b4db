"""Everything the planner knows about one app: spec, catalogue, model profiles, estimator, and derived rates."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from tierml.hardware.assessment import DeviceEstimate, assess_device
from tierml.hardware.catalog import Catalog, Device, Link
from tierml.hardware.estimate import Estimate, LatencyEstimator, Precision
from tierml.model.profile import ModelProfile
from tierml.plan.network import Hop, distance_floor_ms
from tierml.spec.app import AppSpec, CloudOption, EdgeSpec

SECONDS_PER_YEAR = 365 * 86_400.0


@dataclass
class Context:
    spec: AppSpec
    catalog: Catalog
    model: ModelProfile
    estimator: LatencyEstimator
    small: ModelProfile | None = None  # the cascade's first-stage model, when the spec gives one
    accuracy: Estimate | None = None  # of the fp32 model on the eval set
    _assessments: dict = field(default_factory=dict)

    # ------------------------------------------------------------------ load
    @property
    def fleet_rps(self) -> float:
        return self.spec.requirements.throughput.requests_per_day / 86_400

    @property
    def peak_rps(self) -> float:
        given = self.spec.requirements.throughput.peak_rps
        return given if given is not None else self.fleet_rps * self.spec.assumptions.peak_to_mean

    @property
    def sources(self) -> int:
        return self.spec.fleet.source.count

    @property
    def rps_per_source(self) -> float:
        return self.fleet_rps / self.sources

    @property
    def requests_per_year(self) -> float:
        return self.fleet_rps * SECONDS_PER_YEAR

    # ------------------------------------------------------------------ sizes
    @property
    def input_bytes(self) -> int:
        return sum(t.nbytes for t in self.model.inputs)

    @property
    def output_bytes(self) -> int:
        return sum(t.nbytes for t in self.model.outputs)

    @property
    def result_bytes(self) -> int:
        given = self.spec.assumptions.result_bytes
        return given if given is not None else self.output_bytes

    # ------------------------------------------------------------------ fleet
    @functools.cached_property
    def source_device(self) -> Device:
        return self.catalog.device(self.spec.fleet.source.device)

    def source_link(self) -> Link | None:
        name = self.spec.fleet.source.link
        return self.catalog.link(name) if name else None

    def edge_link(self, edge: EdgeSpec | None = None) -> Link | None:
        edges = self.spec.fleet.edge
        site = edge or (edges[0] if edges else None)
        return self.catalog.link(site.link) if site and site.link else None

    def cloud_floor_ms(self) -> float:
        cloud = self.spec.fleet.cloud
        return distance_floor_ms(cloud.distance_km) if cloud else 0.0

    def hops_to(self, position: str, up: int, down: int, edge: EdgeSpec | None = None) -> list[Hop] | None:
        """The hops from the data source to `position` ("edge" or "cloud"); None when there is no route."""
        source_link = self.source_link()
        if source_link is None:
            return None
        access = Hop(source_link, up, down, shared=False)
        if position == "edge":
            return [access]
        floor = self.cloud_floor_ms()
        if not self.spec.fleet.edge:
            return [Hop(source_link, up, down, floor, shared=False)]
        wan = self.edge_link(edge)
        return None if wan is None else [access, Hop(wan, up, down, floor)]

    def hops_between(self, start: str, end: str, up: int, down: int) -> list[Hop] | None:
        """Hops from one position to a later one (source < edge < cloud)."""
        if start == "source":
            return self.hops_to(end, up, down)
        wan = self.edge_link()
        return None if wan is None else [Hop(wan, up, down, self.cloud_floor_ms())]

    def cloud_device(self, option: CloudOption) -> Device:
        return self.catalog.device(option.device)

    # ------------------------------------------------------------------ per-device estimates
    def assess(self, profile: ModelProfile, device: Device, precision: Precision) -> DeviceEstimate:
        key = (id(profile), device.name, precision)
        if key not in self._assessments:
            self._assessments[key] = assess_device(profile, device, self.estimator, precision)
        return self._assessments[key]

    def best_fit(self, profile: ModelProfile, device: Device) -> DeviceEstimate:
        """fp32 where it fits, else the int8 estimate (int8 always on MCUs and int8-only accelerators)."""
        if device.tier == "mcu" or not device.peak_fp32_gflops:
            return self.assess(profile, device, "int8")
        fp32 = self.assess(profile, device, "fp32")
        if fp32.fits:
            return fp32
        int8 = self.assess(profile, device, "int8")
        return int8 if int8.fits else fp32
