"""The whole model on an edge option's boxes: the data crosses the site's network, the boxes are bought and run."""

from __future__ import annotations

from tierml.plan.candidate import Stage
from tierml.plan.capacity import Capacity, queued, servers_needed
from tierml.plan.context import Context
from tierml.plan.economics import Costs, edge_costs
from tierml.plan.kind import PlacementKind
from tierml.plan.layout import Layout, Work
from tierml.plan.topology import Site, Topology


class Edge(PlacementKind):
    name = "edge"
    family = "on-site"

    def enumerate(self, topology: Topology, ctx: Context) -> list[Layout]:
        return [Layout(self, f"edge:{site.label}", f"whole model on {site.device.name} edge boxes",
                       [Work("all", site, ctx.model, 1.0, ctx.input_bytes, True)])
                for site in topology.sites() if self.hosts(site)]

    def hosts(self, site: Site) -> bool:
        return site.edge is not None

    def capacity(self, ctx: Context, work: Work, service_s: float, notes: list[str]) -> Capacity:
        """As many shared boxes as the load needs, and never fewer than the spec lists."""
        site = work.site
        assert site.edge is not None
        needed = servers_needed(ctx, work, service_s)
        if needed > site.edge.count:
            notes.append(f"{site.label}: the load needs {needed} boxes, the spec lists {site.edge.count}")
        return queued(ctx, work, service_s, max(needed, site.edge.count))

    def costs(self, ctx: Context, work: Work, stage: Stage) -> Costs:
        site = work.site
        assert site.edge is not None
        owned = site.edge.count if site.edge.existing else 0
        return edge_costs(site.device, stage.boxes, owned, work.busy(ctx, stage), ctx.spec.assumptions)
