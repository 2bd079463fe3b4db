"""`tierml plan`: enumerate placements, score them, apply the hard constraints in order, rank, explain."""

from __future__ import annotations

import hashlib
import itertools
import math
from pathlib import Path

import numpy as np
import onnx
from pydantic import BaseModel

from tierml.errors import TiermlError
from tierml.hardware.calibrate import Progress
from tierml.hardware.catalog import Device, Source, load_catalog
from tierml.hardware.estimate import Estimate, LatencyEstimator
from tierml.model.load import load_model
from tierml.model.measure import make_session
from tierml.model.profile import ModelProfile, analyze
from tierml.plan.candidate import FRAMEWORK_ORDER, Candidate
from tierml.plan.constraints import check
from tierml.plan.context import Context, MeasuredVariant
from tierml.plan.fallacies import warnings
from tierml.plan.layout import Layout
from tierml.plan.placements import annual_cost_at, layouts, score
from tierml.plan.queueing import METHOD as QUEUEING_METHOD
from tierml.spec.app import AppSpec, Assumptions, LoadedSpec, PowerSpec, Ranking


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


def load_context(loaded: LoadedSpec, estimator: LatencyEstimator, extra_catalogs: list[Path] | None = None,
                 host: tuple[Device, Source] | None = None) -> Context:
    """Catalogue, model profile(s) and measured accuracy for a spec (errors point at the spec's lines)."""
    spec = loaded.spec
    catalog_files = [loaded.path(p, ("catalog", i), "catalog file") for i, p in enumerate(spec.catalog)]
    catalog = load_catalog([*catalog_files, *(extra_catalogs or [])])
    if host is not None:
        catalog = catalog.with_device(host[0], {"tierml-calibrate": host[1]})
    loaded.check_catalog(catalog.devices, catalog.links)
    shapes: dict[str | None, tuple[int, ...]] = {k: tuple(v) for k, v in spec.model.input_shapes.items()}
    loc = ("model", "path") if spec.model.path else ("model", "recipe")
    model = load_model(model_reference(loaded, spec.model.path or spec.model.recipe or "", loc), shapes)
    profile = analyze(model.proto, shapes, source=model.source, sha256=model.sha256)
    small = None
    if spec.model.small:
        small_model = load_model(model_reference(loaded, spec.model.small, ("model", "small")), shapes)
        small = analyze(small_model.proto, shapes, source=small_model.source, sha256=small_model.sha256)
    context = Context(spec, catalog, profile, estimator, small)
    if spec.data.eval:
        context.accuracy = measure_accuracy(loaded, model.proto, profile)
    return context


def use_ladder(context: Context, path: Path) -> None:
    """Plan with `tierml build`'s measured variants: each device with a rung runs its variant (profiled from
    the written model, with its measured quality) instead of the fp32 model or an int8 estimate."""
    from tierml.optimize.ladder import Ladder

    try:
        ladder = Ladder.model_validate_json(path.read_text())
    except FileNotFoundError:
        raise TiermlError(f"ladder '{path}' not found; run tierml build first (it writes OUT/ladder.json)") from None
    except ValueError as exc:
        first = str(exc).splitlines()[0]
        raise TiermlError(f"'{path}' is not a ladder.json written by tierml build: {first}") from None
    if ladder.app != context.spec.name:
        raise TiermlError(f"ladder '{path}' was built for app '{ladder.app}', not '{context.spec.name}'")
    variants = {v.name: v for v in ladder.variants}
    shapes = {t.name: t.shape for t in context.model.inputs}
    for rung in ladder.rungs:
        variant = variants.get(rung.variant or "")
        if variant is None:
            continue
        model = path.parent / variant.name / "1" / "model.onnx"  # beside ladder.json, wherever it was built from
        if not model.exists():
            raise TiermlError(f"ladder '{path}' names {model}, which is missing; run tierml build again")
        if hashlib.sha256(model.read_bytes()).hexdigest() != variant.sha256:
            raise TiermlError(f"{model} is not the file ladder '{path}' measured (sha256 differs); run tierml build "
                              "again")
        profile = analyze(load_model(str(model)).proto, shapes, source=str(model))
        quality = variant.metrics.quality
        context.variants[rung.device] = MeasuredVariant(
            name=variant.name, profile=profile, precision="int8" if variant.precision in ("int8", "mixed") else "fp32",
            quality=quality.value if quality else None, metric=quality.metric if quality else "")


def model_reference(loaded: LoadedSpec, reference: str, loc: tuple) -> str:
    """A model path or `file.py:factory` recipe from the spec, resolved against the spec's folder."""
    head, sep, factory = reference.rpartition(":")
    if sep and head.endswith(".py") and factory.isidentifier():
        return f"{loaded.path(head, loc, 'model recipe')}:{factory}"
    return str(loaded.path(reference, loc, "model"))


def measure_accuracy(loaded: LoadedSpec, model: onnx.ModelProto, profile: ModelProfile) -> Estimate:
    """Top-1 accuracy of the fp32 model on the eval set (.npz with x and y), run on this host."""
    path = loaded.path(loaded.spec.data.eval or "", ("data", "eval"), "eval set")
    try:
        data = np.load(path)
        x, y = data["x"], data["y"]
    except (OSError, ValueError, KeyError) as exc:
        raise loaded.doc.error(("data", "eval"), f"'{path.name}' must be an .npz with arrays x (inputs) and y "
                                                 f"(labels): {exc}") from exc
    session = make_session(model, threads=1)
    name = session.get_inputs()[0].name
    expected = tuple(profile.inputs[0].shape[1:])
    if tuple(x.shape[1:]) != expected:
        raise loaded.doc.error(("data", "eval"), f"eval x has samples of shape {tuple(x.shape[1:])} but input "
                                                 f"'{name}' takes {expected}")
    batch = profile.inputs[0].shape[0]
    predictions = []
    for start in range(0, len(x), batch):
        chunk = x[start:start + batch].astype(np.float32)
        if len(chunk) < batch:  # pad the last batch of a fixed-batch model
            chunk = np.concatenate([chunk, np.zeros((batch - len(chunk), *chunk.shape[1:]), np.float32)])
        scores = session.run(None, {name: chunk})[0]
        predictions.append(np.asarray(scores).reshape(len(chunk), -1).argmax(axis=1))
    predicted = np.concatenate(predictions)[: len(y)]
    accuracy = float((predicted == np.asarray(y).reshape(-1)).mean())
    return Estimate(value=accuracy, unit="top-1", method="measured",
                    basis=f"fp32 model on {len(y)} eval samples from {path.name}, ONNX Runtime on this host")


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

    With a p99 SLO the latency term compares (1 + p99 / SLO): candidates well inside the SLO differ
    little, so cost decides between them; without one it compares p99 itself.
    """
    if not feasible:
        return []
    weights = spec.ranking

    def floor(values: list[float], least: float) -> float:
        return max(min(values), least)

    cost0 = floor([c.annual_cost.value for c in feasible], 1.0)
    slo = spec.requirements.latency.p99_ms if spec.requirements.latency else None

    def latency(c: Candidate) -> float:
        return 1 + c.latency_p99.value / slo if slo else c.latency_p99.value

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
        "latency": ", ".join(f"{q} <= {v:g} ms" for q, v in (("p50", req.latency.p50_ms), ("p99", req.latency.p99_ms))
                             if v is not None) if req.latency else "no latency SLO",
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
