"""Candidate placements and their scores.

Every candidate is a path from the data source outwards (source -> edge -> cloud) and a few stages
along it that run (part of) the model:
- single tier: the whole model at one position (on the device, in the browser, on an edge box, on a
  cloud instance / serverless function / managed API, or as an overnight batch);
- cascade: a first model on every input, the full model on the escalated share;
- split: the first nodes at one position, the rest at a later one, the cut tensors sent between;
- offload with fallback: the full model remote, a local copy that answers when the link is down.
Scores follow from the stages: latency (network + queueing + compute, p50 and p99), energy and power
on site, what the fleet costs, how many bytes leave the devices, and which links raw data crosses.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from tierml.hardware.assessment import DeviceEstimate
from tierml.hardware.catalog import Device, Link
from tierml.hardware.estimate import Estimate, Method, weakest
from tierml.model.profile import ModelProfile
from tierml.plan.candidate import Candidate, Kind, Rejection, Stage
from tierml.plan.context import Context
from tierml.plan.economics import Costs, bandwidth_costs, cloud_costs, edge_costs
from tierml.plan.network import Hop, path_latency
from tierml.plan.queueing import md_c, servers_for
from tierml.plan.split import Breakdown, best_cut
from tierml.spec.app import CloudOption, EdgeSpec

POSITIONS = ("source", "edge", "cloud")
_SERVERLESS_KEEPALIVE_S = 600.0  # an idle function instance is reclaimed after about ten minutes (assumption)


@dataclass
class Target:
    """A place a stage can run: the data source itself, an edge option or a cloud option."""

    position: str
    device: Device
    edge: EdgeSpec | None = None
    cloud: CloudOption | None = None

    @property
    def label(self) -> str:
        if self.cloud is not None:
            return self.cloud.name
        return self.edge.name if self.edge is not None else self.device.name


@dataclass
class Work:
    """One stage of a candidate before it is scored."""

    role: str
    target: Target
    profile: ModelProfile
    share: float  # of requests
    up_bytes: int  # what arrives over the network from the previous position
    raw: bool  # whether what arrives is the raw input (or derived from it) rather than a result
    slowdown: float = 1.0  # browser WASM
    batch: bool = False
    fallback: bool = False
    compute_ms: float | None = None  # set for split stages (their part of the model)


@dataclass
class Layout:
    kind: Kind
    name: str
    summary: str
    stages: list[Work]
    notes: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------------------------- enumeration


def targets(ctx: Context) -> dict[str, list[Target]]:
    fleet = ctx.spec.fleet
    found: dict[str, list[Target]] = {"source": [], "edge": [], "cloud": []}
    if fleet.source.runs_models:
        found["source"].append(Target("source", ctx.source_device))
    found["edge"] = [Target("edge", ctx.catalog.device(e.device), edge=e) for e in fleet.edge]
    if fleet.cloud:
        found["cloud"] = [Target("cloud", ctx.catalog.device(o.device), cloud=o) for o in fleet.cloud.options]
    return found


def _cloud_kind(target: Target) -> Kind:
    assert target.cloud is not None
    if target.cloud.usd_per_request is not None:
        return "api"
    return "serverless" if target.device.usd_per_gb_second is not None else "cloud"


def layouts(ctx: Context) -> list[Layout]:
    """Every single-tier and hybrid placement the fleet allows."""
    found = targets(ctx)
    model, first_model = ctx.model, ctx.small or ctx.model
    raw = ctx.input_bytes
    result: list[Layout] = []
    for target in found["source"]:
        result.append(Layout("local", f"local:{target.label}", f"whole model on each {target.device.name}",
                             [Work("all", target, model, 1.0, 0, False)]))
        if ctx.spec.fleet.source.browser:
            result.append(Layout("browser", f"browser:{target.label}",
                                 f"whole model in the browser (onnxruntime-web) on each {target.device.name}",
                                 [Work("all", target, model, 1.0, 0, False,
                                       slowdown=ctx.spec.assumptions.browser_slowdown)]))
    for target in found["edge"]:
        result.append(Layout("edge", f"edge:{target.label}", f"whole model on {target.device.name} edge boxes",
                             [Work("all", target, model, 1.0, raw, True)]))
    for target in found["cloud"]:
        kind = _cloud_kind(target)
        result.append(Layout(kind, f"{kind}:{target.label}", f"whole model in the cloud ({target.label})",
                             [Work("all", target, model, 1.0, raw, True)]))
        if target.cloud and target.cloud.batch_window_hours and kind == "cloud":
            result.append(Layout("batch", f"batch:{target.label}",
                                 f"overnight batch on {target.label} every {target.cloud.batch_window_hours:g} h",
                                 [Work("all", target, model, 1.0, raw, True, batch=True)]))
    escalation = ctx.spec.assumptions.escalation_rate
    for start, end in (("source", "edge"), ("source", "cloud"), ("edge", "cloud")):
        for first in found[start]:
            for second in found[end]:
                pair = f"{first.label}->{second.label}"
                result.append(Layout(
                    "cascade", f"cascade:{pair}",
                    f"{'small model' if ctx.small else 'model'} on {first.label}, {escalation:.0%} escalated to "
                    f"{second.label}",
                    [Work("first stage", first, first_model, 1.0, raw if start != "source" else 0, start != "source"),
                     Work("escalation", second, model, escalation, raw, True)]))
                result.append(Layout("split", f"split:{pair}", f"first layers on {first.label}, the rest on "
                                     f"{second.label}",
                                     [Work("head", first, model, 1.0, raw if start != "source" else 0,
                                           start != "source"),
                                      Work("tail", second, model, 1.0, 0, True)]))
                if start == "source":
                    result.append(Layout("offload", f"offload:{pair}",
                                         f"whole model on {second.label}; a copy on each {first.label} answers "
                                         "when the link is down",
                                         [Work("all", second, model, 1.0, raw, True),
                                          Work("fallback", first, first_model, 0.0, 0, False, fallback=True)]))
    return result


# ----------------------------------------------------------------------------------------------- scoring


@dataclass
class Scored:
    """Per-stage results while a candidate is assembled."""

    stage: Stage
    estimate: DeviceEstimate
    hops: list[Hop]
    routed: bool
    queue_p50_ms: float = 0.0
    queue_p99_ms: float = 0.0
    extra_ms: float = 0.0  # cold starts, batch windows


def evaluate(ctx: Context, layout: Layout) -> Candidate:
    """Score one layout (constraints are checked afterwards)."""
    notes = list(layout.notes)
    cut = _apply_split(ctx, layout, notes) if layout.kind == "split" else None
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
            p50 += net50 + s.queue_p50_ms + compute + s.extra_ms
            parts[f"network to {work.target.label}"] = parts.get(f"network to {work.target.label}", 0.0) + net50
            parts[f"queue at {work.target.label}"] = s.queue_p50_ms
            parts[f"compute on {work.target.label}"] = compute + s.extra_ms
        if work.share >= 0.01:
            p99 += net99 + s.queue_p99_ms + compute + s.extra_ms
    method = weakest(*methods)
    latency_basis = "network (catalogue links, RTT >= speed-of-light floor) + queueing (M/D/c) + compute"

    links = sorted({hop.link.name for s, _ in active for hop in s.hops})
    raw_links = sorted({hop.link.name for s, w in active if w.raw for hop in s.hops})
    candidate = Candidate(
        name=layout.name, kind=layout.kind, summary=layout.summary, stages=[s.stage for s in scored],
        links=links, raw_data_crosses=raw_links, offline=_offline(layout, links),
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
                constraint="connectivity", message=f"no link from the data source to {work.target.label}: give "
                "fleet.source.link (and fleet.edge[].link to reach the cloud through the site)"))
    return candidate


def _offline(layout: Layout, links: list[str]) -> str:
    if not links:
        return "works"
    has_local = any(w.target.position == "source" for w in layout.stages)
    return "degraded" if has_local and layout.kind in ("cascade", "offload") else "fails"


def _score_stage(ctx: Context, work: Work, layout: Layout, notes: list[str]) -> Scored:
    target = work.target
    device = target.device
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
    service_s = compute.value / 1e3
    boxes, queue50, queue99, extra = _capacity(ctx, work, service_s, notes)
    hops = _hops(ctx, work, layout)
    tier = "browser" if work.slowdown != 1.0 else device.tier
    unsupported = sorted({u.op_type for u in work.profile.tier(tier).unsupported})
    stage = Stage(role=work.role, position=target.position, device=device.name, tier=tier,
                  precision=estimate.precision, boxes=boxes, share=work.share, compute_ms=compute,
                  fits=estimate.fits, fit_detail=f"RAM {estimate.ram.what} of {estimate.ram.have_bytes:,.0f} B"
                  + (f"; storage {estimate.storage.need_bytes:,} of {estimate.storage.have_bytes:,.0f} B"
                     if estimate.storage else ""),
                  unsupported_ops=unsupported)
    return Scored(stage, estimate, hops or [], hops is not None, queue50, queue99, extra)


def _hops(ctx: Context, work: Work, layout: Layout) -> list[Hop] | None:
    """The network from wherever the previous stage left the data to this stage."""
    if work.target.position == "source" or work.fallback:
        return []
    previous = next((w for w in layout.stages if w is not work and not w.fallback
                     and POSITIONS.index(w.target.position) < POSITIONS.index(work.target.position)), None)
    start = previous.target.position if previous else "source"
    down = ctx.output_bytes
    if start == "source":
        return ctx.hops_to(work.target.position, work.up_bytes, down, work.target.edge)
    return ctx.hops_between(start, work.target.position, work.up_bytes, down)


def _capacity(ctx: Context, work: Work, service_s: float, notes: list[str]) -> tuple[int, float, float, float]:
    """(boxes, queue p50 ms, queue p99 ms, extra ms) for the stage's share of the fleet's load."""
    assumptions = ctx.spec.assumptions
    peak = ctx.peak_rps * work.share
    target = work.target
    if work.fallback:
        return ctx.sources, 0.0, 0.0, 0.0
    if target.position == "source":
        return ctx.sources, 0.0, 0.0, 0.0
    if work.batch and target.cloud and target.cloud.batch_window_hours:
        window_ms = target.cloud.batch_window_hours * 3600e3
        return 1, window_ms / 2, window_ms, 0.0
    kind = _cloud_kind(target) if target.cloud else "edge"
    if kind == "api":
        return 1, 0.0, 0.0, 0.0
    if kind == "serverless":
        return _serverless(ctx, work, notes)
    per_box = target.device.units
    boxes = servers_for(peak, service_s, assumptions.target_utilisation, per_box)
    if target.edge is not None and boxes < target.edge.count:
        boxes = target.edge.count
    elif target.edge is not None and boxes > target.edge.count:
        notes.append(f"{target.label}: the load needs {boxes} boxes, the spec lists {target.edge.count}")
    queue = md_c(peak, service_s, boxes * per_box)
    return boxes, queue.mean_wait_s * 1e3, queue.p99_wait_s * 1e3, 0.0


def _serverless(ctx: Context, work: Work, notes: list[str]) -> tuple[int, float, float, float]:
    """Functions scale out (no queue); a share of requests meets a cold start when traffic is sparse."""
    device = work.target.device
    cold_s = device.cold_start_s.value if device.cold_start_s else 0.0
    rate = ctx.fleet_rps * work.share
    cold_share = min(1.0, 1.0 / (rate * _SERVERLESS_KEEPALIVE_S)) if rate > 0 else 1.0
    if cold_s and cold_share >= 0.01:
        notes.append(f"{work.target.label}: about {cold_share:.1%} of requests meet a {cold_s:g} s cold start "
                     f"(instances idle for {_SERVERLESS_KEEPALIVE_S / 60:.0f} min are reclaimed)")
    p50_extra = cold_s * 1e3 if cold_share >= 0.5 else 0.0
    p99_extra = cold_s * 1e3 if cold_share >= 0.01 else 0.0
    return 1, p50_extra, p99_extra, 0.0


def _apply_split(ctx: Context, layout: Layout, notes: list[str]) -> Breakdown | None:
    """Choose the cut (`tierml.plan.split`) and give each split stage its part of the compute and the cut bytes."""
    head, tail = layout.stages
    head_fit = ctx.best_fit(head.profile, head.target.device)
    tail_fit = ctx.best_fit(tail.profile, tail.target.device)
    head_breakdown = ctx.estimator.latency(head.profile, head.target.device, head_fit.precision)
    tail_breakdown = ctx.estimator.latency(tail.profile, tail.target.device, tail_fit.precision)
    scale = 0.25 if head_fit.precision == "int8" else 1.0

    def network_ms(up: float, down: float) -> float:
        hops = ctx.hops_between(head.target.position, tail.target.position, int(up), int(down))
        return path_latency(hops).p50_ms if hops else float("inf")

    cut = best_cut(head.profile, head_breakdown, tail_breakdown, scale, network_ms, ctx.output_bytes,
                   head_fit.precision)
    if cut is None:
        notes.append("the model has a single node: nothing to split")
        return None
    head.compute_ms, tail.compute_ms, tail.up_bytes = cut.head_ms, cut.tail_ms, cut.up_bytes
    return cut


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
        if work.target.position == "source" and not work.fallback:
            joules += device.power_active_w.value * s.stage.compute_ms.value / 1e3 * work.share
    link = ctx.source_link()
    radio_w = 0.0
    if link is not None and link.name in link_bytes and link.energy_nj_per_bit_up is not None:
        up, down = (daily / ctx.sources for daily in link_bytes[link.name])  # per source per day
        down_nj = link.energy_nj_per_bit_down.value if link.energy_nj_per_bit_down else 0.0
        day_j = (up * link.energy_nj_per_bit_up.value + down * down_nj) * 8 * 1e-9
        if ctx.spec.fleet.source.stream_mbps and any(w.raw and w.target.position != "source"
                                                     for w in layout.stages if not w.fallback):
            radio_w = day_j / 86_400  # a continuous stream: the radio's power, whatever the request rate
        else:
            joules += day_j / max(ctx.rps_per_source * 86_400, 1e-12)
            if link.tail_energy_j and not _local_only(layout):  # a local placement can batch its result uploads
                joules += link.tail_energy_j.value * _radio_share(layout)
    return joules, radio_w


def _results_link(ctx: Context, layout: Layout) -> Link | None:
    """Where an on-site placement sends its results: the site's uplink from the edge, else the source's link."""
    positions = {w.target.position for w in layout.stages if not w.fallback}
    if "cloud" in positions:
        return None
    if "edge" in positions:
        return ctx.edge_link()
    return ctx.source_link()


def _local_only(layout: Layout) -> bool:
    return all(w.target.position == "source" for w in layout.stages)


def _radio_share(layout: Layout) -> float:
    """Share of requests that switch the radio on (and pay its tail)."""
    remote = [w for w in layout.stages if not w.fallback and w.target.position != "source"]
    return max((w.share for w in remote), default=1.0)


def _edge_power_share(ctx: Context, scored: list[Scored], works: list[Work]) -> float:
    """Per data source: its share of the edge boxes' average power, as compute or as the relay to the cloud."""
    watts = 0.0
    computes_at_edge = False
    for s, work in zip(scored, works, strict=True):
        if work.target.position != "edge" or work.fallback:
            continue
        computes_at_edge = True
        device = work.target.device
        idle = device.power_idle_w.value if device.power_idle_w else 0.0
        active = device.power_active_w.value if device.power_active_w else idle
        watts += s.stage.boxes * (idle + (active - idle) * _busy(ctx, work, s))
    relays = any(hop.shared for s, w in zip(scored, works, strict=True) if not w.fallback for hop in s.hops)
    site = ctx.spec.fleet.edge[0] if ctx.spec.fleet.edge else None
    if relays and site is not None and not computes_at_edge:  # the site gateway must stay on to forward data
        gateway = ctx.catalog.device(site.device)
        watts += site.count * (gateway.power_idle_w.value if gateway.power_idle_w else 0.0)
    return watts / ctx.sources


def _busy(ctx: Context, work: Work, s: Scored) -> float:
    capacity = s.stage.boxes * work.target.device.units
    return min(1.0, ctx.fleet_rps * work.share * s.stage.compute_ms.value / 1e3 / capacity) if capacity else 1.0


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
    runs_on_source = any(w.target.position == "source" for w in layout.stages)
    if runs_on_source and device.tier != "mobile":  # phones get models through app stores
        costs.annual["device operations"] = ctx.sources * assumptions.ops_usd_per_device_month * 12
    if runs_on_source and energy_j:
        costs.annual["device power"] = (energy_j * ctx.requests_per_year / 3.6e6
                                        * assumptions.electricity_usd_per_kwh)
    for s, work in zip(scored, layout.stages, strict=True):
        if work.fallback or work.target.position == "source":
            continue
        target = work.target
        if target.edge is not None:
            owned = target.edge.count if target.edge.existing else 0
            costs = costs.add(edge_costs(target.device, s.stage.boxes, owned, _busy(ctx, work, s), assumptions))
        elif target.cloud is not None:
            costs = costs.add(cloud_costs(target.cloud, target.device, ctx.requests_per_year * work.share,
                                          s.stage.compute_ms.value / 1e3, s.stage.boxes, batch=work.batch))
    return costs.add(bandwidth_costs(link_bytes, links, assumptions))


def annual_cost_at(ctx: Context, layout: Layout, requests_per_day: float) -> float:
    """The layout's annual cost if the fleet served `requests_per_day` (for break-even curves)."""
    throughput = ctx.spec.requirements.throughput
    scale = requests_per_day / throughput.requests_per_day
    scaled_requirements = ctx.spec.requirements.model_copy(update={"throughput": throughput.model_copy(update={
        "requests_per_day": requests_per_day,
        "peak_rps": throughput.peak_rps * scale if throughput.peak_rps else None})})
    scaled = dataclasses.replace(ctx, spec=ctx.spec.model_copy(update={"requirements": scaled_requirements}))
    return evaluate(scaled, layout).annual_cost.value

