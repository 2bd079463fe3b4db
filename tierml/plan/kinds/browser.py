"""The whole model in the browser (onnxruntime-web) on each data-source device, slower than native."""

from __future__ import annotations

from tierml.plan.context import Context
from tierml.plan.kind import PlacementKind
from tierml.plan.layout import Layout, Work
from tierml.plan.topology import Topology


class Browser(PlacementKind):
    name = "browser"
    family = "on-site"

    def enumerate(self, topology: Topology, ctx: Context) -> list[Layout]:
        if not ctx.spec.fleet.source.browser:
            return []
        slowdown = ctx.spec.assumptions.browser_slowdown
        return [Layout(self, f"browser:{site.label}",
                       f"whole model in the browser (onnxruntime-web) on each {site.device.name}",
                       [Work("all", site, ctx.model, 1.0, 0, False, slowdown=slowdown)])
                for site in topology.sites() if site.position == "source"]
