"""Candidate placements and their scores.

Every candidate is a path from the data source outwards through the fleet's tiers (source -> edge ->
cloud) and a few stages along it that run (part of) the model. Which paths exist is each placement
kind's to say (`tierml.plan.kinds`: single tiers, cascade, split, offload with fallback); the kind
also answers what differs between kinds (capacity, costs, the split's cut, offline behaviour).
Scores follow from the stages: latency (network + queueing + compute, p50 and p99), energy and power
on site, what the fleet costs, how many bytes leave the devices, and which links raw data crosses.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from tierml.hardware.assessment import DeviceEstimate
from tierml.hardware.catalog import Link
from tierml.hardware.estimate import Estimate, Method, weakest
from tierml.plan.candidate import Candidate, Rejection, Stage
from tierml.plan.context import Context
from tierml.plan.economics import Costs, bandwidth_costs
from tierml.plan.kinds import registered
from tierml.plan.layout import Layout, Work
from tierml.plan.network import Hop, path_latency
from tierml.plan.topology import Topology

# ----------------------------------------------------------------------------------------------- enumeration


def layouts(ctx: Context) -> list[Layout]:
    """Every layout of every registered kind the fleet allows, listed by the sites they use."""
    topology = Topology.of(ctx)
    found = [layout for kind in registered() for layout in kind.enumerate(topology, ctx)]
    return sorted(found, key=topology.order)  # a stable sort: kinds over the same sites keep the registry's order


# ----------------------------------------------------------------------------------------------- scoring


@dataclass
class Scored:
    """Per-stage results while a candidate is assembled."""

    stage: Stage
    estimate: DeviceEstimate
    hops: list[Hop]
    routed: bool
    queue_p50_ms: float = 0.0  # with cold starts and batch windows
    queue_p99_ms: float = 0.0


def score(ctx: Context, layout: Layout) -> Candidate:
    """Score one layout (constraints are checked afterwards)."""
    notes = list(layout.notes)
    cut = layout.kind.cut(ctx, layout, notes)
    scored = [_score_stage(ctx, work, layout, notes) for work in layout.stages]
    active = [(s, w) for s, w in zip(scored, layout.stages, strict=True) if not w.fallback]

    p50 = p99 = floor = 0.0
    parts: dict[str, float] = {}
    methods: list[Method] = ["catalogue"]
    for s, work in active:
        network = path_latency(s.hops) if s.hops else None
        net50 = network.p50_ms if network else 0.0
        net99 = network.p99_ms if network else 0.0
        floor = max(floor, network.floor_ms if network else 0.0)
        compute = s.stage.compute_ms.value
        methods.append(s.stage.compute_ms.method)
        if work.share >= 0.5:
            p50 += net50 + s.queue_p50_ms + compute
            parts[f"network to {work.site.label}"] = parts.get(f"network to {work.site.label}", 0.0) + net50
            parts[f"queue at {work.site.label}"] = s.queue_p50_ms
            parts[f"compute on {work.site.label}"] = compute
        if work.share >= 0.01:
            p99 += net99 + s.queue_p99_ms + compute
    method = weakest(*methods)
    latency_basis = "network (catalogue links, RTT >= speed-of-light floor) + queueing (M/D/c) + compute"

    links = sorted({hop.link.name for s, _ in active for hop in s.hops})
    raw_links = sorted({hop.link.name for s, w in active if w.raw for hop in s.hops})
    candidate = Candidate(
        name=layout.name, kind=layout.kind.name, summary=layout.summary, stages=[s.stage for s in scored],
        links=links, raw_data_crosses=raw_links, offline=layout.kind.offline(layout, links),
        latency_p50=Estimate(value=p50, unit="ms", method=method, basis=latency_basis),
        latency_p99=Estimate(value=p99, unit="ms", method=method, basis=latency_basis),
        latency_parts_ms={k: v for k, v in parts.items() if v >= 1e-3}, rtt_floor_ms=floor,
        capex=Estimate(value=0, unit="USD", method="catalogue"),
        annual_cost=Estimate(value=0, unit="USD/year", method="catalogue"),
        horizon_cost=Estimate(value=0, unit="USD", method="catalogue"), cost_parts={},
        upstream_bytes_per_day=Estimate(value=0, unit="B/day", method="catalogue"),
        wide_area_bytes_per_day=Estimate(value=0, unit="B/day", method="catalogue"),
        notes=notes,
    )
    if cut is not None:
        candidate.notes.append(f"best cut after node {cut.after}: {len(cut.tensors)} tensor(s), {cut.bytes:,} B "
                               f"(chain scan; head {cut.head_ms:.3g} ms, transfer {cut.network_ms:.3g} ms, "
                               f"tail {cut.tail_ms:.3g} ms)")
    _traffic_energy_and_cost(ctx, layout, scored, candidate, method)
    for s, work in active:
        if not s.routed:
            candidate.rejections.append(Rejection(
                constraint="connectivity", message=f"no link from the data source to {work.site.label}: give "
                "fleet.source.link (and fleet.edge[].link to reach the cloud through the site)"))
    return candidate


def _score_stage(ctx: Context, work: Work, layout: Layout, notes: list[str]) -> Scored:
    device = work.site.device
    estimate = ctx.best_fit(work.profile, device)
    compute = estimate.latency
    if work.compute_ms is not None:
        compute = compute.model_copy(update={"value": work.compute_ms})
    if work.slowdown != 1.0:
        compute = compute.model_copy(update={"value": compute.value * work.slowdown,
                                             "basis": compute.basis + f"; x{work.slowdown:g} for WASM in a browser"})
    variant = ctx.variants.get(device.name) if work.profile is ctx.model else None
    if variant is not None:
        notes.append(f"{device.name}: runs the measured variant {variant.name} ({variant.precision}"
                     + (f", {variant.metric} {variant.quality:.4f}" if variant.quality is not None else "") + ")")
    elif estimate.precision == "int8" and device.tier != "mcu":
        notes.append(f"{device.name}: fp32 does not fit, int8 sizes estimated (1 byte per weight); accuracy of the "
                     "int8 variant not measured yet")
    capacity = layout.kind.capacity(ctx, work, compute.value / 1e3, notes)
    hops = _hops(ctx, work, layout)
    tier = "browser" if work.slowdown != 1.0 else device.tier
    unsupported = sorted({u.op_type for u in work.profile.tier(tier).unsupported})
    stage = Stage(role=work.role, position=work.site.position, device=device.name, tier=tier,
                  precision=estimate.precision, boxes=capacity.boxes, share=work.share, compute_ms=compute,
                  fits=estimate.fits, fit_detail=f"RAM {estimate.ram.what} of {estimate.ram.have_bytes:,.0f} B"
                  + (f"; storage {estimate.storage.need_bytes:,} of {estimate.storage.have_bytes:,.0f} B"
                     if estimate.storage else ""),
                  unsupported_ops=unsupported)
    return Scored(stage, estimate, hops or [], hops is not None, capacity.queue_p50_ms, capacity.queue_p99_ms)


def _hops(ctx: Context, work: Work, layout: Layout) -> list[Hop] | None:
    """The network from wherever the previous stage left the data to this stage."""
    if work.site.position == "source" or work.fallback:
        return []
    previous = next((w for w in layout.stages if w is not work and not w.fallback
                     and w.site.tier < work.site.tier), None)
    start = previous.site.position if previous else "source"
    down = ctx.output_bytes
    if start == "source":
        return ctx.hops_to(work.site.position, work.up_bytes, down, work.site.edge)
    return ctx.hops_between(start, work.site.position, work.up_bytes, down)


# ----------------------------------------------------------------------------------------------- traffic, energy, cost


def _traffic_energy_and_cost(ctx: Context, layout: Layout, scored: list[Scored], candidate: Candidate,
                             latency_method: Method) -> None:
    spec, assumptions = ctx.spec, ctx.spec.assumptions
    source = spec.fleet.source
    per_day = spec.requirements.throughput.requests_per_day
    works = layout.stages
    link_bytes: dict[str, tuple[float, float]] = {}  # link -> (up, down) bytes per day, whole fleet
    links: dict[str, Link] = {}

    def carry(link: Link, up: float, down: float) -> None:
        before = link_bytes.get(link.name, (0.0, 0.0))
        link_bytes[link.name] = (before[0] + up, before[1] + down)
        links[link.name] = link

    streams = bool(source.stream_mbps)
    for s, work in zip(scored, works, strict=True):
        if work.fallback:
            continue
        # A stage that takes every raw frame from streaming sources needs the whole stream, all day long.
        whole_stream = streams and work.raw and work.share >= 1
        for hop in s.hops:
            up = hop.up_bytes * per_day * work.share
            peak_bits = ctx.peak_rps * work.share * hop.up_bytes * 8
            if whole_stream:
                up = (source.stream_mbps or 0) * 1e6 / 8 * 86_400 * ctx.sources
                peak_bits = (source.stream_mbps or 0) * 1e6 * ctx.sources
            carry(hop.link, up, hop.down_bytes * per_day * work.share)
            demand = peak_bits if hop.shared else peak_bits / ctx.sources  # each source has its own access link
            candidate.uplink_mbps[hop.link.name] = max(candidate.uplink_mbps.get(hop.link.name, 0.0), demand / 1e6)
    source_link = ctx.source_link()
    report = _results_link(ctx, layout)
    if report is not None:  # an on-site placement still reports its results (metadata) upstream
        carry(report, ctx.result_bytes * per_day, 0.0)
    upstream = link_bytes.get(source_link.name, (0.0, 0.0))[0] if source_link else 0.0
    wide = sum(up + down for name, (up, down) in link_bytes.items() if links[name].scope == "wide")
    candidate.upstream_bytes_per_day = Estimate(value=upstream, unit="B/day", method="catalogue",
                                                basis="input/result bytes x requests per day (or the raw stream)")
    candidate.wide_area_bytes_per_day = Estimate(value=wide, unit="B/day", method="catalogue",
                                                 basis="bytes over links that leave the site")

    energy_j, radio_w = _source_energy(ctx, layout, scored, link_bytes)
    device = ctx.source_device
    if energy_j is not None:
        idle = device.power_idle_w.value if device.power_idle_w else 0.0
        onsite = idle + energy_j * ctx.rps_per_source + radio_w + _edge_power_share(ctx, scored, works)
        candidate.energy_per_inference = Estimate(
            value=energy_j * 1e3, unit="mJ", method=weakest(latency_method, "catalogue"),
            basis="active power x compute time + radio energy per bit (+ tail) on the data source")
        candidate.onsite_power = Estimate(value=onsite, unit="W", method=weakest(latency_method, "catalogue"),
                                          basis="source idle + its inference energy x rate + radio + share of "
                                                "edge boxes")
        battery = _battery_wh(ctx)
        if battery:
            own = idle + energy_j * ctx.rps_per_source + radio_w
            candidate.battery_hours = Estimate(value=battery / own if own > 0 else float("inf"), unit="h",
                                               method=weakest(latency_method, "catalogue"),
                                               basis=f"{battery:g} Wh / the source's average power")

    costs = _costs(ctx, layout, scored, link_bytes, links, energy_j)
    horizon = spec.requirements.horizon_years
    candidate.capex = Estimate(value=costs.capex, unit="USD", method="catalogue", basis="devices bought")
    candidate.annual_cost = Estimate(value=costs.per_year(assumptions), unit="USD/year", method="catalogue",
                                     basis=f"capex / {assumptions.amortisation_years:g} years + operating costs")
    candidate.horizon_cost = Estimate(value=costs.over(horizon, assumptions), unit="USD", method="catalogue",
                                      basis=f"over {horizon:g} years, hardware replaced every "
                                            f"{assumptions.amortisation_years:g} years")
    candidate.cost_parts = {**({"capex (amortised)": costs.capex / assumptions.amortisation_years}
                               if costs.capex else {}), **costs.annual}
    candidate.notes.extend(costs.notes)


def _source_energy(ctx: Context, layout: Layout, scored: list[Scored], link_bytes: dict[str, tuple[float, float]]
                   ) -> tuple[float | None, float]:
    """(J per inference on the data source, continuous radio W for a raw stream)."""
    device = ctx.source_device
    if device.power_active_w is None:
        return None, 0.0
    joules = 0.0
    for s, work in zip(scored, layout.stages, strict=True):
        if work.site.position == "source" and not work.fallback:
            joules += device.power_active_w.value * s.stage.compute_ms.value / 1e3 * work.share
    link = ctx.source_link()
    radio_w = 0.0
    if link is not None and link.name in link_bytes and link.energy_nj_per_bit_up is not None:
        up, down = (daily / ctx.sources for daily in link_bytes[link.name])  # per source per day
        down_nj = link.energy_nj_per_bit_down.value if link.energy_nj_per_bit_down else 0.0
        day_j = (up * link.energy_nj_per_bit_up.value + down * down_nj) * 8 * 1e-9
        if ctx.spec.fleet.source.stream_mbps and any(w.raw and w.site.position != "source"
                                                     for w in layout.stages if not w.fallback):
            radio_w = day_j / 86_400  # a continuous stream: the radio's power, whatever the request rate
        else:
            joules += day_j / max(ctx.rps_per_source * 86_400, 1e-12)
            if link.tail_energy_j and not _local_only(layout):  # a local placement can batch its result uploads
                joules += link.tail_energy_j.value * _radio_share(layout)
    return joules, radio_w


def _results_link(ctx: Context, layout: Layout) -> Link | None:
    """Where an on-site placement sends its results: the site's uplink from the edge, else the source's link."""
    positions = {w.site.position for w in layout.stages if not w.fallback}
    if "cloud" in positions:
        return None
    if "edge" in positions:
        return ctx.edge_link()
    return ctx.source_link()


def _local_only(layout: Layout) -> bool:
    return all(w.site.position == "source" for w in layout.stages)


def _radio_share(layout: Layout) -> float:
    """Share of requests that switch the radio on (and pay its tail)."""
    remote = [w for w in layout.stages if not w.fallback and w.site.position != "source"]
    return max((w.share for w in remote), default=1.0)


def _edge_power_share(ctx: Context, scored: list[Scored], works: list[Work]) -> float:
    """Per data source: its share of the edge boxes' average power, as compute or as the relay to the cloud."""
    watts = 0.0
    computes_at_edge = False
    for s, work in zip(scored, works, strict=True):
        if work.site.position != "edge" or work.fallback:
            continue
        computes_at_edge = True
        device = work.site.device
        idle = device.power_idle_w.value if device.power_idle_w else 0.0
        active = device.power_active_w.value if device.power_active_w else idle
        watts += s.stage.boxes * (idle + (active - idle) * work.busy(ctx, s.stage))
    relays = any(hop.shared for s, w in zip(scored, works, strict=True) if not w.fallback for hop in s.hops)
    site = ctx.spec.fleet.edge[0] if ctx.spec.fleet.edge else None
    if relays and site is not None and not computes_at_edge:  # the site gateway must stay on to forward data
        gateway = ctx.catalog.device(site.device)
        watts += site.count * (gateway.power_idle_w.value if gateway.power_idle_w else 0.0)
    return watts / ctx.sources


def _battery_wh(ctx: Context) -> float | None:
    power = ctx.spec.requirements.power
    if power and power.battery_wh:
        return power.battery_wh
    device = ctx.source_device
    return device.battery_wh.value if device.battery_wh else None


def _costs(ctx: Context, layout: Layout, scored: list[Scored], link_bytes: dict[str, tuple[float, float]],
           links: dict[str, Link], energy_j: float | None) -> Costs:
    spec, assumptions = ctx.spec, ctx.spec.assumptions
    source = spec.fleet.source
    device = ctx.source_device
    costs = Costs()
    if not source.existing:
        if device.price_usd is None:
            costs.notes.append(f"{device.name} has no catalogue price: buying the sources is counted as $0")
        else:
            costs.capex += device.price_usd.value * ctx.sources
    if layout.on_source and device.tier != "mobile":  # phones get models through app stores
        costs.annual["device operations"] = ctx.sources * assumptions.ops_usd_per_device_month * 12
    if layout.on_source and energy_j:
        costs.annual["device power"] = (energy_j * ctx.requests_per_year / 3.6e6
                                        * assumptions.electricity_usd_per_kwh)
    for s, work in zip(scored, layout.stages, strict=True):
        costs = costs.add(layout.kind.costs(ctx, work, s.stage))
    return costs.add(bandwidth_costs(link_bytes, links, assumptions))


def annual_cost_at(ctx: Context, layout: Layout, requests_per_day: float) -> float:
    """The layout's annual cost if the fleet served `requests_per_day` (for break-even curves)."""
    throughput = ctx.spec.requirements.throughput
    scale = requests_per_day / throughput.requests_per_day
    scaled_requirements = ctx.spec.requirements.model_copy(update={"throughput": throughput.model_copy(update={
        "requests_per_day": requests_per_day,
        "peak_rps": throughput.peak_rps * scale if throughput.peak_rps else None})})
    scaled = dataclasses.replace(ctx, spec=ctx.spec.model_copy(update={"requirements": scaled_requirements}))
    return score(scaled, layout).annual_cost.value

