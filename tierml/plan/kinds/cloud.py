"""The whole model on cloud instances billed by the hour: the data crosses the wide area, the instances queue it."""

from __future__ import annotations

from tierml.plan.candidate import Stage
from tierml.plan.capacity import Capacity, queued, servers_needed
from tierml.plan.context import Context
from tierml.plan.economics import Costs, instance_costs
from tierml.plan.kind import PlacementKind
from tierml.plan.layout import Layout, Work
from tierml.plan.topology import Site, Topology


class Cloud(PlacementKind):
    name = "cloud"
    family = "cloud"

    def enumerate(self, topology: Topology, ctx: Context) -> list[Layout]:
        return [Layout(self, f"{self.name}:{site.label}", f"whole model in the cloud ({site.label})",
                       [Work("all", site, ctx.model, 1.0, ctx.input_bytes, True)])
                for site in topology.sites() if self.hosts(site)]

    def hosts(self, site: Site) -> bool:
        return (site.cloud is not None and site.cloud.usd_per_request is None
                and site.device.usd_per_gb_second is None)

    def capacity(self, ctx: Context, work: Work, service_s: float, notes: list[str]) -> Capacity:
        return queued(ctx, work, service_s, servers_needed(ctx, work, service_s))

    def costs(self, ctx: Context, work: Work, stage: Stage) -> Costs:
        assert work.site.cloud is not None
        return instance_costs(work.site.cloud, work.site.device, stage.boxes)
