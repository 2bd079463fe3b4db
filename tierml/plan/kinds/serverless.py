"""The whole model in serverless functions billed per GB-second: no queue, but cold starts when traffic is sparse."""

from __future__ import annotations

from tierml.plan.candidate import Stage
from tierml.plan.capacity import Capacity
from tierml.plan.context import Context
from tierml.plan.economics import Costs, function_costs
from tierml.plan.kinds.cloud import Cloud
from tierml.plan.layout import Work
from tierml.plan.topology import Site

_SERVERLESS_KEEPALIVE_S = 600.0  # an idle function instance is reclaimed after about ten minutes (assumption)


class Serverless(Cloud):
    name = "serverless"

    def hosts(self, site: Site) -> bool:
        return (site.cloud is not None and site.cloud.usd_per_request is None
                and site.device.usd_per_gb_second is not None)

    def capacity(self, ctx: Context, work: Work, service_s: float, notes: list[str]) -> Capacity:
        """Functions scale out (no queue); a share of requests meets a cold start when traffic is sparse."""
        device = work.site.device
        cold_s = device.cold_start_s.value if device.cold_start_s else 0.0
        rate = ctx.fleet_rps * work.share
        cold_share = min(1.0, 1.0 / (rate * _SERVERLESS_KEEPALIVE_S)) if rate > 0 else 1.0
        if cold_s and cold_share >= 0.01:
            notes.append(f"{work.site.label}: about {cold_share:.1%} of requests meet a {cold_s:g} s cold start "
                         f"(instances idle for {_SERVERLESS_KEEPALIVE_S / 60:.0f} min are reclaimed)")
        p50_extra = cold_s * 1e3 if cold_share >= 0.5 else 0.0
        p99_extra = cold_s * 1e3 if cold_share >= 0.01 else 0.0
        return Capacity(1, p50_extra, p99_extra)

    def costs(self, ctx: Context, work: Work, stage: Stage) -> Costs:
        assert work.site.cloud is not None
        return function_costs(work.site.cloud, work.site.device, ctx.requests_per_year * work.share,
                              stage.compute_ms.value / 1e3)
