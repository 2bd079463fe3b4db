"""How many boxes a stage needs for its share of the fleet's peak load, and the queueing wait it adds."""

from __future__ import annotations

from dataclasses import dataclass

from tierml.plan.context import Context
from tierml.plan.layout import Work
from tierml.plan.queueing import md_c, servers_for


@dataclass(frozen=True)
class Capacity:
    boxes: int  # devices or instances the stage needs for the fleet
    queue_p50_ms: float  # waits before compute starts: queueing, cold starts, batch windows
    queue_p99_ms: float


def servers_needed(ctx: Context, work: Work, service_s: float) -> int:
    """Shared boxes that keep the stage's share of the peak rate under the target utilisation."""
    return servers_for(ctx.peak_rps * work.share, service_s, ctx.spec.assumptions.target_utilisation,
                       work.site.device.units)


def queued(ctx: Context, work: Work, service_s: float, boxes: int) -> Capacity:
    """`boxes` shared servers behind one queue (M/D/c) at the stage's share of the peak rate."""
    queue = md_c(ctx.peak_rps * work.share, service_s, boxes * work.site.device.units)
    return Capacity(boxes, queue.mean_wait_s * 1e3, queue.p99_wait_s * 1e3)
