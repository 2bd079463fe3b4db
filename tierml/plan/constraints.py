"""Hard constraints, in the deployment decision framework's order: privacy, latency, connectivity, compute, power.

Each violated constraint becomes a Rejection that quotes the binding number; a candidate is feasible
only with none. All are recorded (not only the first), so the report can say everything that rules a
candidate out; `Candidate.binding` is the first in the framework's order.
"""

from __future__ import annotations

from tierml.plan.candidate import Candidate, Rejection
from tierml.plan.context import Context


def check(ctx: Context, candidate: Candidate) -> list[Rejection]:
    return [*privacy(ctx, candidate), *latency(ctx, candidate), *connectivity(ctx, candidate),
            *compute(ctx, candidate), *power(ctx, candidate)]


def privacy(ctx: Context, c: Candidate) -> list[Rejection]:
    level = ctx.spec.requirements.privacy
    if level == "cloud" or not c.raw_data_crosses:
        return []
    if level == "device":
        return [Rejection(constraint="privacy", message=f"raw data would leave the device over "
                          f"{', '.join(c.raw_data_crosses)}; the spec keeps it on the device (privacy: device)")]
    wide = _wide(ctx, c.raw_data_crosses)
    if wide:
        return [Rejection(constraint="privacy", message=f"raw data would leave the site over {', '.join(wide)}; "
                          "the spec allows the local network only (privacy: local-network)")]
    return []


def _wide(ctx: Context, links: list[str]) -> list[str]:
    """The links that leave the site (internet, carrier, satellite)."""
    return [name for name in links if ctx.catalog.link(name).scope == "wide"]


def latency(ctx: Context, c: Candidate) -> list[Rejection]:
    slo = ctx.spec.requirements.latency
    if slo is None:
        return []
    distance = ctx.spec.fleet.cloud.distance_km if ctx.spec.fleet.cloud else 0.0
    missed = slo.miss(c.latency_p50.value, c.latency_p99.value)
    if missed is None:
        return []
    quantile, value, bound = missed
    if c.rtt_floor_ms > bound:
        where = f" for {distance:,.0f} km" if c.uses_cloud and distance else ""
        return [Rejection(constraint="latency", message=f"RTT floor {c.rtt_floor_ms:.0f} ms{where} > "
                          f"{bound:g} ms SLO ({quantile})")]
    parts = ", ".join(f"{k} {v:.3g} ms" for k, v in c.latency_parts_ms.items())
    return [Rejection(constraint="latency", message=f"{quantile} {value:.3g} ms > {bound:g} ms SLO ({parts})")]


def connectivity(ctx: Context, c: Candidate) -> list[Rejection]:
    found = [Rejection(constraint="connectivity", message=f"needs {demand:,.3g} Mbit/s upstream over {name}, which "
                       f"carries {ctx.catalog.link(name).up_mbps.value:g} Mbit/s")
             for name, demand in c.uplink_mbps.items() if demand > ctx.catalog.link(name).up_mbps.value]
    return found + _network_availability(ctx, c)


def _network_availability(ctx: Context, c: Candidate) -> list[Rejection]:
    mode = ctx.spec.requirements.connectivity
    if mode == "always" or not c.links:
        return []
    if mode == "offline":
        return [Rejection(constraint="connectivity", message=f"needs {', '.join(c.links)} at inference time; "
                          "the spec says there is no network (connectivity: offline)")]
    wide = _wide(ctx, c.links)
    if wide and c.offline == "fails":
        return [Rejection(constraint="connectivity", message=f"needs {', '.join(wide)} at inference time with no "
                          "local fallback; the spec says the network comes and goes (connectivity: intermittent)")]
    return []


def compute(ctx: Context, c: Candidate) -> list[Rejection]:
    found = []
    for stage in c.stages:
        where = f"{stage.role} on {stage.device}" if stage.role != "all" else stage.device
        if not stage.fits:
            found.append(Rejection(constraint="compute", message=f"{where} ({stage.precision}) does not fit: "
                                   f"{stage.fit_detail}"))
        if stage.unsupported_ops:
            found.append(Rejection(constraint="compute", message=f"{where}: the {stage.tier} runtime cannot run "
                                   f"{', '.join(stage.unsupported_ops)}"))
        if stage.position == "source" and stage.role != "fallback":
            busy = ctx.rps_per_source * stage.share * stage.compute_ms.value / 1e3
            if busy > 1:
                found.append(Rejection(constraint="compute", message=f"{where} would need {busy:.2f} s of compute "
                                       "per second at the stated request rate"))
    need = ctx.spec.requirements.min_accuracy
    for stage in c.stages:
        variant = ctx.variants.get(stage.device)
        if need is not None and variant is not None and variant.quality is not None and variant.quality < need:
            found.append(Rejection(constraint="compute", message=f"{stage.device}'s variant {variant.name} has "
                                   f"{variant.metric} {variant.quality:.4f} (measured) < {need:g} required"))
    if need is not None and ctx.accuracy is not None and ctx.accuracy.value < need:
        found.append(Rejection(constraint="compute", message=f"the model's accuracy {ctx.accuracy.value:.4f} "
                               f"(measured on the eval set) < {need:g} required"))
    return found


def power(ctx: Context, c: Candidate) -> list[Rejection]:
    spec = ctx.spec.requirements.power
    if spec is None:
        return []
    found = []
    if spec.budget_w is not None:
        if c.onsite_power is None:
            found.append(Rejection(constraint="power", message=f"{ctx.source_device.name} has no catalogued power "
                                   f"draw to check against the {spec.budget_w:g} W budget"))
        elif c.onsite_power.value > spec.budget_w:
            found.append(Rejection(constraint="power", message=f"draws {_watts(c.onsite_power.value)} on site per "
                                   f"data source > {_watts(spec.budget_w)} budget"))
    if spec.target_hours is not None and c.battery_hours is not None and c.battery_hours.value < spec.target_hours:
        found.append(Rejection(constraint="power", message=f"battery lasts {c.battery_hours.value:.3g} h < "
                               f"{spec.target_hours:g} h target"))
    return found


def _watts(value: float) -> str:
    if value >= 1:
        return f"{value:.3g} W"
    return f"{value * 1e3:.3g} mW" if value >= 1e-3 else f"{value * 1e6:.3g} uW"
