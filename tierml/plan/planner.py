"""`tierml plan`: enumerate placements, score them, apply the hard constraints in order, rank, explain."""

from __future__ import annotations

import itertools
import math

import numpy as np
from pydantic import BaseModel

from tierml.hardware.estimate import Estimate
from tierml.plan.candidate import FRAMEWORK_ORDER, Candidate
from tierml.plan.constraints import check
from tierml.plan.context import Context
from tierml.plan.fallacies import warnings
from tierml.plan.layout import Layout
from tierml.plan.placements import annual_cost_at, layouts, score
from tierml.plan.queueing import METHOD as QUEUEING_METHOD
from tierml.progress import Progress
from tierml.spec.app import AppSpec, Assumptions, PowerSpec, Ranking


class BreakEven(BaseModel):
    """Where the best all-cloud and the best all-on-site option cost the same."""

    cloud: str
    onsite: str
    requests_per_day: float | None  # None when the curves do not cross in the range examined
    payback_days: float | None  # how long the cloud's running cost takes to pay for the on-site purchase
    curve: list[tuple[float, float, float]]  # (requests/day, cloud USD/year, on-site USD/year)


class Plan(BaseModel):
    app: str
    spec: str
    model: str
    macs: int
    params: int
    input_bytes: int
    accuracy: Estimate | None
    calibration: str
    queueing: str = QUEUEING_METHOD
    assumptions: Assumptions
    ranking: Ranking
    candidates: list[Candidate]  # feasible ones first, best first; then the rejected ones
    winner: str | None
    break_even: BreakEven | None
    warnings: list[str]
    trace: list[str]

    @property
    def feasible(self) -> list[Candidate]:
        return [c for c in self.candidates if c.feasible]

    def candidate(self, name: str) -> Candidate:
        return next(c for c in self.candidates if c.name == name)


def plan(context: Context, calibration: str, spec_path: str, progress: Progress | None = None) -> Plan:
    """Score every placement, reject by the framework's constraints, rank the rest, explain."""
    spec = context.spec
    options = layouts(context)
    candidates: list[Candidate] = []
    for index, layout in enumerate(options):
        if progress:
            progress(layout.name, index, len(options))
        candidate = score(context, layout)
        candidate.rejections.extend(check(context, candidate))
        candidates.append(candidate)
    if progress:
        progress("ranking", len(options), len(options))
    feasible = _rank([c for c in candidates if c.feasible], spec)
    rejected = [c for c in candidates if not c.feasible]
    winner = feasible[0] if feasible else None
    by_name = {layout.name: layout for layout in options}
    break_even = _break_even(context, feasible, by_name)
    plan = Plan(app=spec.name, spec=spec_path, model=context.model.model, macs=context.model.macs,
                params=context.model.params, input_bytes=context.input_bytes, accuracy=context.accuracy,
                calibration=calibration, assumptions=spec.assumptions, ranking=spec.ranking,
                candidates=[*feasible, *rejected], winner=winner.name if winner else None, break_even=break_even,
                warnings=warnings(context, candidates, winner), trace=[])
    plan.trace = _trace(context, plan)
    return plan


def _rank(feasible: list[Candidate], spec: AppSpec) -> list[Candidate]:
    """Weighted sum of log-ratios to the best feasible value of each metric: cost, latency, energy.

    With an SLO the latency term compares (1 + the share of the SLO used, `LatencySLO.load`): candidates well
    inside the SLO differ little, so cost decides between them; without one it compares p99 itself.
    """
    if not feasible:
        return []
    weights = spec.ranking

    def floor(values: list[float], least: float) -> float:
        return max(min(values), least)

    cost0 = floor([c.annual_cost.value for c in feasible], 1.0)
    slo = spec.requirements.latency

    def latency(c: Candidate) -> float:
        return 1 + slo.load(c.latency_p50.value, c.latency_p99.value) if slo else c.latency_p99.value

    lat0 = floor([latency(c) for c in feasible], 1e-3)
    energies = [c.energy_per_inference.value for c in feasible if c.energy_per_inference]
    energy0 = floor(energies, 1e-6) if energies else 1.0
    for c in feasible:
        energy = c.energy_per_inference.value if c.energy_per_inference else energy0
        c.score = (weights.cost * math.log(max(c.annual_cost.value, cost0) / cost0)
                   + weights.latency * math.log(max(latency(c), lat0) / lat0)
                   + weights.energy * math.log(max(energy, energy0) / energy0))
    ordered = sorted(feasible, key=lambda c: (c.score, c.annual_cost.value))
    for rank, c in enumerate(ordered, start=1):
        c.rank = rank
    return ordered


def _break_even(context: Context, feasible: list[Candidate], layouts_by_name: dict[str, Layout]) -> BreakEven | None:
    cloud = next((c for c in feasible if c.cloud_only), None)
    onsite = next((c for c in feasible if not c.uses_cloud), None)
    if cloud is None or onsite is None:
        return None
    today = context.spec.requirements.throughput.requests_per_day
    volumes = list(np.geomspace(today / 1000, today * 1000, 25))
    curve = [(float(v), annual_cost_at(context, layouts_by_name[cloud.name], v),
              annual_cost_at(context, layouts_by_name[onsite.name], v)) for v in volumes]
    crossing = None
    for (v1, c1, o1), (v2, c2, o2) in itertools.pairwise(curve):
        d1, d2 = c1 - o1, c2 - o2
        if d1 == 0 or (d1 < 0) != (d2 < 0):
            share = d1 / (d1 - d2) if d1 != d2 else 0.0
            crossing = float(math.exp(math.log(v1) + share * (math.log(v2) - math.log(v1))))
            break
    payback = None
    onsite_running = onsite.annual_cost.value - onsite.capex.value / context.spec.assumptions.amortisation_years
    saving = cloud.annual_cost.value - onsite_running
    if onsite.capex.value > 0 and saving > 0:
        payback = onsite.capex.value / saving * 365
    return BreakEven(cloud=cloud.name, onsite=onsite.name, requests_per_day=crossing, payback_days=payback,
                     curve=curve)


def _power_setting(power: PowerSpec | None) -> str:
    if power is None:
        return "no power requirement"
    parts = [f"budget {power.budget_w:g} W on site per data source"] if power.budget_w else []
    if power.battery_wh:
        parts.append(f"{power.battery_wh:g} Wh battery" + (f" for {power.target_hours:g} h" if power.target_hours
                                                            else ""))
    return ", ".join(parts)


def _trace(context: Context, plan: Plan) -> list[str]:
    spec = context.spec
    req = spec.requirements
    lines = [f"{len(plan.candidates)} candidates for {spec.name}: {spec.fleet.source.count} x "
             f"{spec.fleet.source.device}, {req.throughput.requests_per_day:,.0f} requests/day "
             f"(peak {context.peak_rps:.3g}/s), {req.horizon_years:g}-year horizon"]
    settings = {
        "privacy": f"raw data may reach: {req.privacy}",
        "latency": req.latency.describe() if req.latency else "no latency SLO",
        "connectivity": f"network at inference time: {req.connectivity}",
        "compute": "the model must fit, run on the tier's runtime and keep up"
                   + (f"; accuracy >= {req.min_accuracy:g}" if req.min_accuracy is not None else ""),
        "power": _power_setting(req.power),
    }
    for constraint in FRAMEWORK_ORDER:
        ruled = [c for c in plan.candidates if c.binding and c.binding.constraint == constraint]
        head = f"{constraint} ({settings[constraint]}): "
        if not ruled:
            lines.append(head + "rules out nothing")
            continue
        shown = "; ".join(f"{c.name}: {c.binding.message}" for c in ruled[:4])  # type: ignore[union-attr]
        more = f"; and {len(ruled) - 4} more" if len(ruled) > 4 else ""
        lines.append(head + f"rules out {len(ruled)}: {shown}{more}")
    weights = spec.ranking
    if plan.winner:
        best = plan.candidate(plan.winner)
        lines.append(f"ranked {len(plan.feasible)} feasible by cost (weight {weights.cost:g}), p99 latency "
                     f"({weights.latency:g}) and energy ({weights.energy:g}): {best.name} wins at "
                     f"${best.annual_cost.value:,.0f}/year, p99 {best.latency_p99.value:.3g} ms")
    else:
        lines.append("no candidate meets every constraint")
    if plan.break_even:
        b = plan.break_even
        where = (f"{b.requests_per_day:,.0f} requests/day" if b.requests_per_day
                 else "no crossing within 1/1000x to 1000x today's volume")
        payback = f"; the on-site purchase pays back in {b.payback_days:,.0f} days" if b.payback_days else ""
        lines.append(f"break-even between {b.cloud} and {b.onsite}: {where}{payback}")
    return lines
