"""A candidate placement, its scores (each an Estimate that says how it was obtained) and rejections."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from tierml.hardware.estimate import Estimate, Precision

Position = Literal["source", "edge", "cloud"]
Offline = Literal["works", "degraded", "fails"]  # when the network is down
Constraint = Literal["privacy", "latency", "connectivity", "compute", "power"]
# The deployment decision framework's order: the first violated constraint is the binding one.
FRAMEWORK_ORDER: tuple[Constraint, ...] = ("privacy", "latency", "connectivity", "compute", "power")


class Stage(BaseModel):
    """Where part of the work runs."""

    role: str  # "all", "first stage", "escalation", "head", "tail", "fallback"
    position: Position
    device: str
    tier: str
    precision: Precision
    boxes: int  # devices or instances this stage needs for the fleet
    share: float  # fraction of requests it serves
    compute_ms: Estimate
    fits: bool
    fit_detail: str
    unsupported_ops: list[str] = []


class Rejection(BaseModel):
    constraint: Constraint
    message: str  # says the binding number: "RTT floor 40 ms for 4,000 km > 10 ms SLO"


class Candidate(BaseModel):
    name: str
    kind: str  # the name of a registered PlacementKind (tierml.plan.kinds)
    summary: str
    stages: list[Stage]
    links: list[str]  # links used at inference time
    raw_data_crosses: list[str]  # links the raw input (or data derived from it) travels over
    offline: Offline
    latency_p50: Estimate
    latency_p99: Estimate
    latency_parts_ms: dict[str, float]  # p50 breakdown: network, queue, compute per stage
    rtt_floor_ms: float
    energy_per_inference: Estimate | None = None  # mJ on the data-source device
    onsite_power: Estimate | None = None  # W drawn on site per data source (source + its share of edge boxes)
    battery_hours: Estimate | None = None
    capex: Estimate
    annual_cost: Estimate
    horizon_cost: Estimate
    cost_parts: dict[str, float]  # USD per year
    upstream_bytes_per_day: Estimate  # leaving the data sources, whole fleet
    uplink_mbps: dict[str, float] = {}  # peak upstream demand per link (per source on access links)
    wide_area_bytes_per_day: Estimate  # over links that leave the site
    notes: list[str] = []
    rejections: list[Rejection] = []
    score: float | None = None
    rank: int | None = None

    @property
    def feasible(self) -> bool:
        return not self.rejections

    @property
    def binding(self) -> Rejection | None:
        """The first violated constraint in the framework's order."""
        ordered = sorted(self.rejections, key=lambda r: FRAMEWORK_ORDER.index(r.constraint))
        return ordered[0] if ordered else None

    @property
    def uses_cloud(self) -> bool:
        return any(s.position == "cloud" for s in self.stages if s.role != "fallback")

    @property
    def cloud_only(self) -> bool:
        return all(s.position == "cloud" for s in self.stages if s.role != "fallback")

    @property
    def local_only(self) -> bool:
        return all(s.position == "source" for s in self.stages)
