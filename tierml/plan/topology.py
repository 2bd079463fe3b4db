"""The fleet as tiers in order from the data source outwards, each tier listing the sites that are alternatives there.

A placement runs its stages at sites. Hybrids pair a site with a site of any later tier (never two
alternatives of one tier). Today's spec gives at most three tiers: the data source, its edge
options, its cloud options.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tierml.hardware.catalog import Device
from tierml.plan.candidate import Position
from tierml.spec.app import CloudOption, EdgeSpec

if TYPE_CHECKING:
    from tierml.plan.context import Context
    from tierml.plan.layout import Layout


@dataclass
class Site:
    """A place a stage can run: the data source itself, an edge option or a cloud option."""

    position: Position
    device: Device
    edge: EdgeSpec | None = None
    cloud: CloudOption | None = None
    tier: int = 0  # index of its tier in the topology; set by Topology

    @property
    def label(self) -> str:
        if self.cloud is not None:
            return self.cloud.name
        return self.edge.name if self.edge is not None else self.device.name


@dataclass
class Topology:
    """Tiers in order from the data source outwards; the sites of one tier are alternatives."""

    tiers: list[list[Site]]

    def __post_init__(self) -> None:
        for index, tier in enumerate(self.tiers):
            for site in tier:
                site.tier = index

    @classmethod
    def of(cls, ctx: Context) -> Topology:
        """The spec's fleet: the data source (when it runs models), then the edge options, then the cloud options."""
        fleet = ctx.spec.fleet
        source = [Site("source", ctx.source_device)] if fleet.source.runs_models else []
        edge = [Site("edge", ctx.catalog.device(e.device), edge=e) for e in fleet.edge]
        options = fleet.cloud.options if fleet.cloud else []
        cloud = [Site("cloud", ctx.catalog.device(o.device), cloud=o) for o in options]
        return cls([tier for tier in (source, edge, cloud) if tier])

    def sites(self) -> list[Site]:
        """Every site, tier by tier."""
        return [site for tier in self.tiers for site in tier]

    def pairs(self) -> list[tuple[Site, Site]]:
        """Every site with every site of a later tier: tier pairs in order, then the sites within them."""
        return [(first, second) for index, tier in enumerate(self.tiers) for later in self.tiers[index + 1:]
                for first in tier for second in later]

    def order(self, layout: Layout) -> tuple[int, tuple[int, ...], tuple[int, ...]]:
        """Where a layout is listed: single sites before pairs, then by the tiers and the sites it uses."""
        flat = self.sites()
        index = {id(site): i for i, site in enumerate(flat)}
        used = sorted({index[id(work.site)] for work in layout.stages})  # tier by tier, as `flat` is
        return len(used), tuple(flat[i].tier for i in used), tuple(used)
