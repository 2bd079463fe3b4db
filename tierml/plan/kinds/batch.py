"""Overnight batch on cloud instances: requests wait for the window, the instances are billed while it runs."""

from __future__ import annotations

from tierml.plan.candidate import Stage
from tierml.plan.capacity import Capacity
from tierml.plan.context import Context
from tierml.plan.economics import Costs, batch_costs
from tierml.plan.kind import PlacementKind
from tierml.plan.kinds.cloud import Cloud
from tierml.plan.layout import Layout, Work
from tierml.plan.topology import Topology


class Batch(PlacementKind):
    name = "batch"
    family = "deferred"

    def enumerate(self, topology: Topology, ctx: Context) -> list[Layout]:
        return [Layout(self, f"batch:{site.label}",
                       f"overnight batch on {site.label} every {site.cloud.batch_window_hours:g} h",
                       [Work("all", site, ctx.model, 1.0, ctx.input_bytes, True)])
                for site in topology.sites()
                if Cloud().hosts(site) and site.cloud is not None and site.cloud.batch_window_hours]

    def capacity(self, ctx: Context, work: Work, service_s: float, notes: list[str]) -> Capacity:
        """A request waits for the next window: half of one on average, all of it at worst."""
        assert work.site.cloud is not None and work.site.cloud.batch_window_hours
        window_ms = work.site.cloud.batch_window_hours * 3600e3
        return Capacity(1, window_ms / 2, window_ms)

    def costs(self, ctx: Context, work: Work, stage: Stage) -> Costs:
        assert work.site.cloud is not None
        return batch_costs(work.site.cloud, work.site.device, ctx.requests_per_year * work.share,
                           stage.compute_ms.value / 1e3)
