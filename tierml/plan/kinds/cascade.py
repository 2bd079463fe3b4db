"""A first model on every input at one tier; the full model, at a later tier, on the share it escalates."""

from __future__ import annotations

from tierml.plan.candidate import Offline
from tierml.plan.context import Context
from tierml.plan.kind import PlacementKind
from tierml.plan.layout import Layout, Work
from tierml.plan.topology import Topology


class Cascade(PlacementKind):
    name = "cascade"
    family = "hybrid"

    def enumerate(self, topology: Topology, ctx: Context) -> list[Layout]:
        escalation = ctx.spec.assumptions.escalation_rate
        found = []
        for first, second in topology.pairs():
            remote = first.position != "source"
            found.append(Layout(
                self, f"cascade:{first.label}->{second.label}",
                f"{'small model' if ctx.small else 'model'} on {first.label}, {escalation:.0%} escalated to "
                f"{second.label}",
                [Work("first stage", first, ctx.small or ctx.model, 1.0, ctx.input_bytes if remote else 0, remote),
                 Work("escalation", second, ctx.model, escalation, ctx.input_bytes, True)]))
        return found

    def offline(self, layout: Layout, links: list[str]) -> Offline:
        """A first stage on the data source keeps answering (the escalated share waits)."""
        return "degraded" if links and layout.on_source else super().offline(layout, links)
