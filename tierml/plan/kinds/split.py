"""The first nodes at one tier, the rest at a later one, the tensors crossing the cut sent between them."""

from __future__ import annotations

from tierml.plan.context import Context
from tierml.plan.kind import PlacementKind
from tierml.plan.layout import Layout, Work
from tierml.plan.network import path_latency
from tierml.plan.split import Breakdown, best_cut
from tierml.plan.topology import Topology


class Split(PlacementKind):
    name = "split"
    family = "hybrid"

    def enumerate(self, topology: Topology, ctx: Context) -> list[Layout]:
        found = []
        for first, second in topology.pairs():
            remote = first.position != "source"
            found.append(Layout(self, f"split:{first.label}->{second.label}",
                                f"first layers on {first.label}, the rest on {second.label}",
                                [Work("head", first, ctx.model, 1.0, ctx.input_bytes if remote else 0, remote),
                                 Work("tail", second, ctx.model, 1.0, 0, True)]))
        return found

    def cut(self, ctx: Context, layout: Layout, notes: list[str]) -> Breakdown | None:
        """Choose the cut (`tierml.plan.split`) and give each split stage its part of the compute and the cut bytes."""
        head, tail = layout.stages
        head_fit = ctx.best_fit(head.profile, head.site.device)
        tail_fit = ctx.best_fit(tail.profile, tail.site.device)
        head_breakdown = ctx.estimator.latency(head.profile, head.site.device, head_fit.precision)
        tail_breakdown = ctx.estimator.latency(tail.profile, tail.site.device, tail_fit.precision)
        scale = 0.25 if head_fit.precision == "int8" else 1.0

        def network_ms(up: float, down: float) -> float:
            hops = ctx.hops_between(head.site.position, tail.site.position, int(up), int(down))
            return path_latency(hops).p50_ms if hops else float("inf")

        cut = best_cut(head.profile, head_breakdown, tail_breakdown, scale, network_ms, ctx.output_bytes,
                       head_fit.precision)
        if cut is None:
            notes.append("the model has a single node: nothing to split")
            return None
        head.compute_ms, tail.compute_ms, tail.up_bytes = cut.head_ms, cut.tail_ms, cut.up_bytes
        return cut
