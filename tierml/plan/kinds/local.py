"""The whole model on each data-source device: it serves its own requests and needs no link."""

from __future__ import annotations

from tierml.plan.candidate import Stage
from tierml.plan.capacity import Capacity
from tierml.plan.context import Context
from tierml.plan.economics import Costs
from tierml.plan.kind import PlacementKind
from tierml.plan.layout import Layout, Work
from tierml.plan.topology import Site, Topology


class Local(PlacementKind):
    name = "local"
    family = "on-site"

    def enumerate(self, topology: Topology, ctx: Context) -> list[Layout]:
        return [Layout(self, f"local:{site.label}", f"whole model on each {site.device.name}",
                       [Work("all", site, ctx.model, 1.0, 0, False)])
                for site in topology.sites() if self.hosts(site)]

    def hosts(self, site: Site) -> bool:
        return site.position == "source"

    def capacity(self, ctx: Context, work: Work, service_s: float, notes: list[str]) -> Capacity:
        return Capacity(ctx.sources, 0.0, 0.0)  # each device serves only itself

    def costs(self, ctx: Context, work: Work, stage: Stage) -> Costs:
        return Costs()  # the data sources' purchase, operations and power are counted once per layout
