"""The full model at a later tier; a copy on each data-source device answers when the link is down."""

from __future__ import annotations

from tierml.plan.candidate import Offline
from tierml.plan.context import Context
from tierml.plan.kind import PlacementKind
from tierml.plan.layout import Layout, Work
from tierml.plan.topology import Topology


class Offload(PlacementKind):
    name = "offload"
    family = "hybrid"

    def enumerate(self, topology: Topology, ctx: Context) -> list[Layout]:
        return [Layout(self, f"offload:{first.label}->{second.label}",
                       f"whole model on {second.label}; a copy on each {first.label} answers when the link is down",
                       [Work("all", second, ctx.model, 1.0, ctx.input_bytes, True),
                        Work("fallback", first, ctx.small or ctx.model, 0.0, 0, False, fallback=True)])
                for first, second in topology.pairs() if first.position == "source"]

    def offline(self, layout: Layout, links: list[str]) -> Offline:
        """The copy on the data source answers while the link is down."""
        return "degraded" if links and layout.on_source else super().offline(layout, links)
