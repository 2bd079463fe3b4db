"""The whole model behind a managed API priced per request: the provider scales it, so no queue of ours."""

from __future__ import annotations

from tierml.plan.candidate import Stage
from tierml.plan.capacity import Capacity
from tierml.plan.context import Context
from tierml.plan.economics import Costs, request_costs
from tierml.plan.kinds.cloud import Cloud
from tierml.plan.layout import Work
from tierml.plan.topology import Site


class Api(Cloud):
    name = "api"

    def hosts(self, site: Site) -> bool:
        return site.cloud is not None and site.cloud.usd_per_request is not None

    def capacity(self, ctx: Context, work: Work, service_s: float, notes: list[str]) -> Capacity:
        return Capacity(1, 0.0, 0.0)

    def costs(self, ctx: Context, work: Work, stage: Stage) -> Costs:
        assert work.site.cloud is not None
        return request_costs(work.site.cloud, ctx.requests_per_year * work.share)
