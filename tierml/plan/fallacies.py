"""Warnings for when a spec walks into one of the deployment fallacies, each backed by the plan's own numbers."""

from __future__ import annotations

from tierml.plan.candidate import Candidate
from tierml.plan.context import Context
from tierml.plan.kind import Family, PlacementKind


def warnings(ctx: Context, candidates: list[Candidate], winner: Candidate | None) -> list[str]:
    found = [
        _edge_is_faster(candidates), _one_paradigm(candidates, winner), _phone_by_optimizing(ctx, candidates),
        _tinyml_is_small_mobile(candidates), _cheapest_hardware(candidates, winner),
    ]
    return [w for w in found if w]


def _edge_is_faster(candidates: list[Candidate]) -> str:
    cloud = [c for c in candidates if _family(c) == "cloud"]
    onsite = [c for c in candidates if _family(c) == "on-site"]
    if not cloud or not onsite:
        return ""
    best_cloud = min(cloud, key=lambda c: c.latency_p50.value)
    best_onsite = min(onsite, key=lambda c: c.latency_p50.value)
    if best_onsite.latency_p50.value <= best_cloud.latency_p50.value:
        return ""
    return (f"fallacy 'edge always reduces latency': {best_cloud.name} answers in "
            f"{best_cloud.latency_p50.value:.3g} ms (p50) but the fastest on-site option, {best_onsite.name}, needs "
            f"{best_onsite.latency_p50.value:.3g} ms: a weak device near the data can be slower than a distant "
            "datacentre")


def _one_paradigm(candidates: list[Candidate], winner: Candidate | None) -> str:
    if winner is None or _family(winner) == "hybrid":
        return ""
    for hybrid in (c for c in candidates if c.feasible and _family(c) == "hybrid"):
        for label, ours, theirs in (("cheaper", winner.annual_cost.value, hybrid.annual_cost.value),
                                    ("faster (p99)", winner.latency_p99.value, hybrid.latency_p99.value)):
            if theirs < 0.8 * ours:
                return (f"fallacy 'one paradigm fits all': the hybrid {hybrid.name} is {1 - theirs / ours:.0%} "
                        f"{label} than the single-tier winner {winner.name}; weigh it before committing to one tier")
    return ""


def _phone_by_optimizing(ctx: Context, candidates: list[Candidate]) -> str:
    slo = ctx.spec.requirements.latency
    for c in candidates:
        if not _on_device(c) or c.stages[0].tier not in ("mobile", "browser"):
            continue
        stage = c.stages[0]
        gaps = []
        bound = slo.budget_ms if slo else None
        if bound and stage.compute_ms.value > 2 * bound:
            gaps.append(f"{stage.compute_ms.value / bound:.1f}x over the {bound:g} ms SLO")
        if not stage.fits:
            gaps.append(f"does not fit ({stage.fit_detail})")
        if gaps and stage.precision == "int8":
            return (f"fallacy 'a desktop model just needs optimizing to run on a phone': even as int8, {c.name} "
                    f"{' and '.join(gaps)}; quantization buys 2-4x, so this needs a smaller architecture "
                    "(distillation or a mobile backbone)")
    return ""


def _tinyml_is_small_mobile(candidates: list[Candidate]) -> str:
    mcu = [c for c in candidates if _on_device(c) and c.stages[0].tier == "mcu"]
    phone_ok = any(_on_device(c) and c.stages[0].tier == "mobile" and c.stages[0].fits for c in candidates)
    for c in mcu:
        reasons = [r.message for r in c.rejections if r.constraint == "compute"]
        if reasons and (phone_ok or c.stages[0].unsupported_ops):
            return (f"fallacy 'TinyML is just smaller mobile ML': {reasons[0]}; a microcontroller needs a model "
                    "designed for its int8 op set and a static memory plan, not a shrunken phone model")
    return ""


def _cheapest_hardware(candidates: list[Candidate], winner: Candidate | None) -> str:
    feasible = [c for c in candidates if c.feasible]
    if winner is None or len(feasible) < 2:
        return ""
    leanest = min(feasible, key=lambda c: (c.capex.value, c.annual_cost.value))
    cheapest = min(feasible, key=lambda c: c.annual_cost.value)
    if leanest.name == cheapest.name or leanest.annual_cost.value < 1.2 * cheapest.annual_cost.value:
        return ""
    return (f"fallacy 'cost optimization = resource minimization': {leanest.name} buys the least hardware "
            f"(${leanest.capex.value:,.0f}) but costs ${leanest.annual_cost.value:,.0f}/year against "
            f"${cheapest.annual_cost.value:,.0f}/year for {cheapest.name} once operations, power and bandwidth "
            "are counted")


def _family(candidate: Candidate) -> Family:
    return PlacementKind.registry[candidate.kind].family


def _on_device(candidate: Candidate) -> bool:
    """Whether the whole model runs on the data-source device itself (natively or in its browser)."""
    return _family(candidate) == "on-site" and candidate.stages[0].position == "source"
