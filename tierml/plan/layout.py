"""A placement before it is scored: its kind, and the stages that run (part of) the model at sites."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tierml.model.profile import ModelProfile
from tierml.plan.candidate import Stage
from tierml.plan.context import Context
from tierml.plan.topology import Site

if TYPE_CHECKING:
    from tierml.plan.kind import PlacementKind


@dataclass
class Work:
    """One stage of a placement before it is scored."""

    role: str
    site: Site
    profile: ModelProfile
    share: float  # of requests
    up_bytes: int  # what arrives over the network from the previous position
    raw: bool  # whether what arrives is the raw input (or derived from it) rather than a result
    slowdown: float = 1.0  # browser WASM
    fallback: bool = False
    compute_ms: float | None = None  # set for split stages (their part of the model)

    def busy(self, ctx: Context, stage: Stage) -> float:
        """Share of the time the stage's boxes compute, at the fleet's mean rate."""
        capacity = stage.boxes * self.site.device.units
        return min(1.0, ctx.fleet_rps * self.share * stage.compute_ms.value / 1e3 / capacity) if capacity else 1.0


@dataclass
class Layout:
    kind: PlacementKind
    name: str
    summary: str
    stages: list[Work]
    notes: list[str] = field(default_factory=list)

    @property
    def on_source(self) -> bool:
        """Whether a stage (or a fallback copy) runs on the data source itself."""
        return any(work.site.position == "source" for work in self.stages)
