"""`tierml build`: one model becomes a ladder of measured variants, and each target device gets its rung.

1. Variants: the simplified fp32 parent; fp16 when a target runs fp16 natively; int8 tuned on this host
   (accuracy-aware: kept only when it is faster than fp32 here); portable int8 (S8S8 per-channel QDQ,
   the form ARM/NPU runtimes and the microcontroller exporter consume); a structurally pruned and
   fine-tuned network and its int8 form; a distilled student from a small search, and its int8 form.
2. Every variant is measured: quality on the eval set, size, MACs, peak memory, host latency, and
   estimated latency/energy/fit on each target device. On a device whose runtime does not compute what ONNX
   Runtime does (an MCU runs int8 C), the quality is measured on that runtime's arithmetic (`runtime_quality`).
3. Each target device gets the most accurate variant it can run (its native precisions; int8 on an x86
   CPU only when measured faster than fp32 on this x86 host) that fits its RAM and storage, meets the
   latency SLO and the accuracy floor; among variants within half a point of the best, the fastest on
   that device, then the smallest. A device nothing fits is reported with its closest miss.
4. Every variant is written as `<out>/<app>-<variant>/1/model.onnx` + `lineage.json` (Triton's model
   repository layout, so `tierml serve OUT` serves them), each folder written to a temporary name and
   renamed, and `ladder.json` records the choice per device.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel

from tierml.errors import TiermlError
from tierml.hardware.catalog import Catalog, Device
from tierml.hardware.estimate import LatencyEstimator
from tierml.model.load import load_model, serialize
from tierml.model.measure import LatencyStats
from tierml.optimize.accuracy_aware import AccuracyAwareQuantize
from tierml.optimize.data import Dataset, load_dataset, model_input
from tierml.optimize.evaluate import evaluate
from tierml.optimize.fp16 import Fp16
from tierml.optimize.passes import ModelState, Pass, Workspace
from tierml.optimize.prune import StructuredPrune
from tierml.optimize.quantize import QuantizeStatic
from tierml.optimize.runtime_quality import RuntimeOutputs, measure_on_runtimes
from tierml.optimize.search import StudentSearch
from tierml.optimize.simplify import Simplify
from tierml.optimize.twin import load_twin
from tierml.optimize.variant import DeviceFigures, Lineage, Metrics, Variant, digest, swap_in, write_variant
from tierml.spec.app import LoadedSpec

Progress = Callable[[str, int, int], None]
NEAR_BEST = 0.005  # quality within half a point of the best counts as equal; speed decides
PORTABLE_INT8 = {"per_channel": True, "activation_type": "int8", "weight_type": "int8"}


def portable_int8() -> list[Pass]:
    """S8S8 per-channel QDQ (TFLite's scheme; what ARM/NPU runtimes and the MCU exporter take), then the
    quantizer's long tensor names shortened and zero zero-points dropped."""
    return [QuantizeStatic(PORTABLE_INT8), Simplify({"slim": False, "short_names": True})]


class Margin(BaseModel):
    """One constraint of a device: what the variant needs against what the device allows."""

    what: str  # "RAM" | "storage" | "latency" | "quality"
    need: float
    limit: float
    unit: str
    higher_is_better: bool = False  # quality: need >= limit; the rest: need <= limit

    @property
    def ok(self) -> bool:
        return self.need >= self.limit if self.higher_is_better else self.need <= self.limit

    @property
    def shortfall(self) -> float:
        """How far over the limit, relative to it (0 when within)."""
        if self.ok or self.limit == 0:
            return 0.0
        return (self.limit - self.need) / self.limit if self.higher_is_better else (self.need - self.limit) / self.limit

    def describe(self) -> str:
        if self.unit == "B":
            spare = self.limit - self.need
            word = "spare" if spare >= 0 else "over"
            return f"{self.what} {_bytes(self.need)} of {_bytes(self.limit)} ({_bytes(abs(spare))} {word})"
        if self.unit == "ms":
            return f"{self.what} {self.need:.3g} ms vs SLO {self.limit:g} ms ({self.limit - self.need:+.3g} ms)"
        return f"{self.what} {self.need:.4f} vs floor {self.limit:.4f} ({(self.need - self.limit) * 100:+.2f} pt)"


class Rung(BaseModel):
    """A target device and the variant it gets (or why none)."""

    device: str
    tier: str
    variant: str | None
    precision: str | None = None
    latency_ms: float | None = None
    latency_method: str = ""
    margins: list[Margin] = []
    reason: str
    rejected: dict[str, str] = {}  # variant -> why not
    closest_miss: str | None = None


class Ladder(BaseModel):
    app: str
    spec: str
    out: str
    host: str
    threads: int
    quality_floor: float
    quality_metric: str
    variants: list[Variant]
    rungs: list[Rung]
    notes: list[str] = []


def _bytes(value: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if value >= size:
            return f"{value / size:.3g} {unit}"
    return f"{value:,.0f} B"


# ---------------------------------------------------------------------------------------------- inputs
@dataclass
class Inputs:
    """What a build needs from the spec, loaded and checked."""

    state: ModelState
    source: str
    sha256: str
    eval: Dataset
    calibration: Dataset
    train: Dataset | None
    notes: list[str] = field(default_factory=list)


def load_inputs(loaded: LoadedSpec) -> Inputs:
    """The spec's model (with its PyTorch twin when given) and data sets, each checked against the model."""
    from tierml.plan.planner import model_reference

    spec = loaded.spec
    shapes: dict[str | None, tuple[int, ...]] = {k: tuple(v) for k, v in spec.model.input_shapes.items()}
    loc = ("model", "path") if spec.model.path else ("model", "recipe")
    model = load_model(model_reference(loaded, spec.model.path or spec.model.recipe or "", loc), shapes)
    try:
        info = model_input(model.proto, shapes)
    except TiermlError as exc:
        raise loaded.doc.error(loc, str(exc)) from None
    if not spec.data.eval:
        raise loaded.doc.error(("data",), "tierml build measures every variant on an eval set: add data.eval "
                                          "(an .npz with x, and y for accuracy)")
    labels = spec.requirements.min_accuracy is not None

    def dataset(field: str, role: str, need_labels: bool) -> Dataset:
        path = loaded.path(getattr(spec.data, field), ("data", field), f"{role} set")
        try:
            return load_dataset(path, info, role, need_labels)
        except TiermlError as exc:
            raise loaded.doc.error(("data", field), str(exc)) from None

    evaluation = dataset("eval", "eval", labels)
    calibration = dataset("calibration", "calibration", False) if spec.data.calibration else evaluation
    train = dataset("train", "training", False) if spec.data.train else None
    notes = [] if spec.data.calibration else ["no data.calibration: calibrating int8 on the eval set"]
    state = ModelState(model.proto)
    if spec.model.torch:
        head, _, factory = spec.model.torch.rpartition(":")
        recipe = f"{loaded.path(head, ('model', 'torch'), 'PyTorch recipe')}:{factory}"
        weights = str(loaded.path(spec.model.weights, ("model", "weights"), "weights")) if spec.model.weights else None
        state.torch = load_twin(recipe, weights, model.proto, evaluation.x[:8])
    else:
        notes.append("no model.torch: pruning and fine-tuning need the PyTorch network; skipped")
    return Inputs(state=state, source=model.source, sha256=model.sha256, eval=evaluation, calibration=calibration,
                  train=train, notes=notes)


# ---------------------------------------------------------------------------------------------- variants
@dataclass
class Recipe:
    """A variant to make: its name, the variant it starts from, and the passes."""

    name: str
    parent: str | None  # None: the loaded model
    passes: list[Pass]


def recipes(loaded: LoadedSpec, targets: list[Device], inputs: Inputs) -> tuple[list[Recipe], list[str]]:
    """Which variants are worth making for these targets, and notes on the ones left out."""
    build = loaded.spec.build
    wanted = {p for d in targets for p in d.precisions}
    chosen = [Recipe(name="fp32", parent=None, passes=[Simplify({"short_names": True})])]
    notes = []
    if "fp16" in wanted:
        chosen.append(Recipe(name="fp16", parent="fp32", passes=[Fp16()]))
    if "int8" in wanted:
        if any(d.arch == "x86_64" for d in targets):
            chosen.append(Recipe(name="int8", parent="fp32", passes=[AccuracyAwareQuantize(
                {"seconds": build.seconds_per_model})]))
        chosen.append(Recipe(name="int8-qdq", parent="fp32", passes=portable_int8()))
    trainable = inputs.state.torch is not None and inputs.train is not None
    if not trainable:
        notes.append("pruning and distillation need model.torch and data.train in the spec; not tried")
        return chosen, notes
    chosen.append(Recipe(name="pruned", parent="fp32", passes=[StructuredPrune(
        {"ratio": build.prune_ratio, "epochs": build.epochs})]))
    if "int8" in wanted:
        chosen.append(Recipe(name="pruned-int8-qdq", parent="pruned", passes=portable_int8()))
    if build.distill:
        smallest = min(targets, key=lambda d: d.ram_bytes)
        search = {"min_size_ratio": 4.0, "epochs": build.epochs}
        if smallest.tier == "mcu":
            search["device"] = smallest.name
        chosen.append(Recipe(name="student", parent="fp32", passes=[StudentSearch(search)]))
        if "int8" in wanted:
            chosen.append(Recipe(name="student-int8-qdq", parent="student", passes=portable_int8()))
    return chosen, notes


def make_variants(todo: list[Recipe], inputs: Inputs, workspace: Workspace, progress: Progress,
                  notes: list[str]) -> dict[str, ModelState]:
    """Run each recipe's passes from its parent's state. A recipe that fails is noted, not fatal —
    unless it is the fp32 parent every other variant starts from."""
    states: dict[str, ModelState] = {}
    for index, recipe in enumerate(todo):
        progress(f"making {recipe.name}", index, len(todo))
        parent = inputs.state if recipe.parent is None else states.get(recipe.parent)
        if parent is None:
            notes.append(f"{recipe.name}: skipped, its parent {recipe.parent} was not made")
            continue
        state = parent
        try:
            for step in recipe.passes:
                state = step.run(state, workspace)
        except Exception as exc:
            if recipe.parent is None:
                raise
            reason = str(exc) if isinstance(exc, TiermlError) else f"{type(exc).__name__}: {str(exc)[:200]}"
            notes.append(f"{recipe.name}: not made ({reason})")
            continue
        if recipe.name == "int8" and state.precision == "fp32":
            notes.append("int8: no int8 form was faster than fp32 on this host at the quality floor; "
                         + "; ".join(state.history[-1].notes[-1:]))
            continue
        states[recipe.name] = state
    return states


# ---------------------------------------------------------------------------------------------- choice
def _slo_ms(loaded: LoadedSpec) -> float | None:
    latency = loaded.spec.requirements.latency
    if latency is None:
        return None
    return latency.p99_ms if latency.p99_ms is not None else latency.p50_ms


def _runs_natively(variant: Variant, device: Device) -> str:
    """Why the device cannot run this variant's precision well ('' when it can)."""
    needs = {"fp32": {"fp32"}, "fp16": {"fp16"}, "int8": {"int8"}, "mixed": {"int8", "fp32"}}[variant.precision]
    missing = needs - set(device.precisions)
    if missing:
        return f"{device.name} does not run {'/'.join(sorted(missing))} natively"
    speedup = variant.metrics.speedup_vs_fp32
    if device.arch == "x86_64" and variant.precision in ("int8", "mixed") and speedup is not None and speedup < 1:
        return f"int8 ran {speedup:.2f}x of fp32 speed on this x86 host; never ship int8 slower than fp32"
    return ""


def margins(variant: Variant, figures: DeviceFigures, floor: float, slo_ms: float | None) -> list[Margin]:
    found = [Margin(what="RAM", need=figures.ram_need_bytes, limit=figures.ram_have_bytes, unit="B")]
    if figures.storage_need_bytes is not None and figures.storage_have_bytes is not None:
        found.append(Margin(what="storage", need=figures.storage_need_bytes, limit=figures.storage_have_bytes,
                            unit="B"))
    if slo_ms is not None:
        found.append(Margin(what="latency", need=figures.latency.value, limit=slo_ms, unit="ms"))
    quality = variant.quality_on(figures.device)
    if quality is not None:
        found.append(Margin(what="quality", need=quality.value, limit=floor, unit=quality.metric,
                            higher_is_better=True))
    return found


def choose(device: Device, variants: list[Variant], floor: float, slo_ms: float | None) -> Rung:
    """The rung for one device: the most accurate variant it runs within every budget (then the fastest)."""
    fitting: list[tuple[Variant, DeviceFigures, list[Margin]]] = []
    rejected: dict[str, str] = {}
    misses: list[tuple[float, str]] = []
    for variant in variants:
        figures = next((f for f in variant.metrics.devices if f.device == device.name), None)
        why = _runs_natively(variant, device) or (figures.refused if figures else "no estimate for this device")
        if why:
            rejected[variant.name] = why
            continue
        assert figures is not None
        checks = margins(variant, figures, floor, slo_ms)
        failed = [m for m in checks if not m.ok]
        if failed:
            rejected[variant.name] = "; ".join(m.describe() for m in failed)
            misses.append((max(m.shortfall for m in failed), f"{variant.name}: {rejected[variant.name]}"))
            continue
        fitting.append((variant, figures, checks))
    if not fitting:
        closest = min(misses)[1] if misses else None
        reason = ("no variant fits: closest miss " + closest) if closest else "no variant runs on this device"
        return Rung(device=device.name, tier=device.tier, variant=None, reason=reason, rejected=rejected,
                    closest_miss=closest)
    best_quality = max(_quality(v, device.name) for v, _, _ in fitting)
    near = [item for item in fitting if _quality(item[0], device.name) >= best_quality - NEAR_BEST]
    variant, figures, checks = min(near, key=lambda item: (item[1].latency.value, item[0].metrics.size_bytes))
    reason = (f"most accurate within budget ({_quality(variant, device.name):.4f}); fastest on {device.name} of the "
              f"{len(near)} within {NEAR_BEST * 100:g} pt of the best")
    return Rung(device=device.name, tier=device.tier, variant=variant.name, precision=figures.precision,
                latency_ms=figures.latency.value, latency_method=figures.latency.method, margins=checks,
                reason=reason, rejected=rejected)


def _quality(variant: Variant, device: str) -> float:
    quality = variant.quality_on(device)
    return quality.value if quality else 0.0


# ---------------------------------------------------------------------------------------------- build
def targets_of(loaded: LoadedSpec, catalog: Catalog, only: list[str] | None) -> list[Device]:
    """--target, else the spec's build.targets, else every device the fleet names."""
    spec = loaded.spec
    names = list(only or spec.build.targets)
    if not names:
        fleet = spec.fleet
        names = [fleet.source.device, *(e.device for e in fleet.edge),
                 *(o.device for o in (fleet.cloud.options if fleet.cloud else []))]
    for index, name in enumerate(names):
        if name not in catalog.devices:
            from tierml.errors import did_you_mean

            message = f"unknown device '{name}'; {did_you_mean(name, catalog.devices)}`tierml devices` lists them"
            if only:
                raise TiermlError(message)
            raise loaded.doc.error(("build", "targets", index), message)
    return [catalog.device(n) for n in dict.fromkeys(names)]


def build(loaded: LoadedSpec, out: Path, catalog: Catalog, estimator: LatencyEstimator, host: str,
          threads: int = 1, only: list[str] | None = None, progress: Progress | None = None,
          runtimes: Mapping[str, RuntimeOutputs] | None = None) -> Ladder:
    """The ladder for the spec's model; `runtimes` (by device tier) measure quality where ONNX Runtime's does not
    hold (`tierml.export.target.device_runtimes()`: the MCU's int8 C)."""
    progress = progress or (lambda stage, done, total: None)
    spec = loaded.spec
    targets = targets_of(loaded, catalog, only)
    inputs = load_inputs(loaded)
    todo, notes = recipes(loaded, targets, inputs)
    notes = [*inputs.notes, *notes]
    floor_given = spec.requirements.min_accuracy
    workspace = Workspace(calibration=inputs.calibration, eval=inputs.eval, train=inputs.train, threads=threads,
                          min_quality=floor_given,
                          estimator=estimator, catalog=catalog,
                          progress=lambda stage, done, total: progress(stage, done, total))
    states = make_variants(todo, inputs, workspace, progress, notes)
    fp32 = states["fp32"]
    reference = None
    variants: list[Variant] = []
    latencies: dict[str, LatencyStats | None] = {}
    parents = {r.name: r.parent for r in todo}
    for index, (name, state) in enumerate(states.items()):
        progress(f"measuring {name}", index, len(states))
        if reference is None:
            from tierml.optimize.evaluate import run

            reference = run(fp32.proto, inputs.eval.x, threads)
        # speed is judged against the variant's own float parent: pruned-int8 against pruned, not fp32
        parent = parents.get(name)
        metrics = evaluate(state.proto, inputs.eval, reference, threads, latencies.get(parent) if parent else None,
                           targets, estimator, state.precision)
        latencies[name] = metrics.host_latency
        variants.append(_variant(spec.name, name, state, metrics, inputs))
    assert reference is not None
    variants, measured = measure_on_runtimes(variants, [s.proto for s in states.values()], targets, runtimes or {},
                                             inputs.calibration, inputs.eval, reference)
    notes += measured
    quality = variants[0].metrics.quality
    assert quality is not None
    if floor_given is not None and quality.metric != "accuracy":
        raise loaded.doc.error(("requirements", "min_accuracy"), f"the model's output (shape "
                               f"{list(reference.shape) if reference is not None else '?'}) is not class scores, so "
                               "accuracy against labels cannot be measured; drop min_accuracy to compare variants "
                               "with the fp32 model instead")
    floor = floor_given if floor_given is not None and quality.metric == "accuracy" else (
        quality.value - 0.01 if quality.metric == "accuracy" else 0.99)
    slo = _slo_ms(loaded)
    rungs = [choose(device, variants, floor, slo) for device in targets]
    ladder = Ladder(app=spec.name, spec=str(loaded.base), out=str(out), host=host, threads=threads,
                    quality_floor=floor, quality_metric=quality.metric, variants=variants, rungs=rungs, notes=notes)
    return write_ladder(ladder, states, out)


def _variant(app: str, name: str, state: ModelState, metrics: Metrics, inputs: Inputs) -> Variant:
    data = serialize(state.proto)
    return Variant(name=f"{app}-{name}", precision=state.precision, sha256=digest(data),
                   lineage=Lineage(parent=inputs.source, parent_sha256=inputs.sha256, passes=state.history),
                   metrics=metrics)


def write_ladder(ladder: Ladder, states: dict[str, ModelState], out: Path) -> Ladder:
    """The whole repository — <variant>/1/{model.onnx,lineage.json} for every variant, and ladder.json —
    written into a temporary sibling folder, then swapped in for `out`: a failure leaves the previous
    build whole, and variants an earlier build made but this one did not never linger beside it."""
    if out.exists() and any(out.iterdir()) and not (out / "ladder.json").exists():
        raise TiermlError(f"{out} exists and is not a tierml build output (no ladder.json); give an empty or "
                          "new folder with --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-new-", dir=out.parent))
    try:
        written = []
        for variant, state in zip(ladder.variants, states.values(), strict=True):
            saved = write_variant(variant, serialize(state.proto), staging / variant.name / "1")
            written.append(saved.model_copy(update={"path": str(out / variant.name / "1")}))
        result = ladder.model_copy(update={"variants": written})
        (staging / "ladder.json").write_text(json.dumps(result.model_dump(mode="json"), indent=1) + "\n")
        swap_in(staging, out)
    except OSError as exc:
        raise TiermlError(f"cannot write the build to {out}: {exc.strerror or exc}; the previous build, if any, "
                          "is unchanged") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return result


def pareto(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both axes (x lower is better, y higher is better)."""
    front = []
    for i, (x, y) in enumerate(points):
        if not any((x2 <= x and y2 >= y) and (x2 < x or y2 > y) for j, (x2, y2) in enumerate(points) if j != i):
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])
