"""The variants of `tierml build`: one model becomes a ladder of measured variants (steps 1, 2 and 4 below); the
choice of a rung per device (step 3) is a planning decision and lives in `tierml.plan.variants`; the build stage
(`tierml.stages.building`) runs them in that order.

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

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tierml.data.dataset import Dataset, load_dataset, model_input
from tierml.data.scoring import run
from tierml.errors import TiermlError
from tierml.files import sha256_bytes, staged_dir, write_synced
from tierml.hardware.catalog import Catalog, Device
from tierml.hardware.estimate import LatencyEstimator
from tierml.model.load import load_model, serialize
from tierml.model.measure import LatencyStats
from tierml.optimize.accuracy_aware import AccuracyAwareQuantize
from tierml.optimize.evaluate import evaluate
from tierml.optimize.fp16 import Fp16
from tierml.optimize.passes import ModelState, Pass, Workspace
from tierml.optimize.prune import StructuredPrune
from tierml.optimize.quantize import QuantizeStatic
from tierml.optimize.runtime_quality import RuntimeOutputs, measure_on_runtimes
from tierml.optimize.search import StudentSearch
from tierml.optimize.simplify import Simplify
from tierml.optimize.twin import load_twin
from tierml.optimize.variant import Lineage, Metrics, Variant, write_variant
from tierml.progress import Progress
from tierml.spec.app import LoadedSpec

PORTABLE_INT8 = {"per_channel": True, "activation_type": "int8", "weight_type": "int8"}


def portable_int8() -> list[Pass]:
    """S8S8 per-channel QDQ (TFLite's scheme; what ARM/NPU runtimes and the MCU exporter take), then the
    quantizer's long tensor names shortened and zero zero-points dropped."""
    return [QuantizeStatic(PORTABLE_INT8), Simplify({"slim": False, "short_names": True})]


# ---------------------------------------------------------------------------------------------- inputs
@dataclass
class Sources:
    """What a build starts from: the model (with its PyTorch twin) and the data sets, loaded and checked."""

    state: ModelState
    source: str
    sha256: str
    eval: Dataset
    calibration: Dataset
    train: Dataset | None
    notes: list[str] = field(default_factory=list)


def load_sources(loaded: LoadedSpec) -> Sources:
    """The spec's model (with its PyTorch twin when given) and data sets, each checked against the model."""
    spec = loaded.spec
    shapes: dict[str | None, tuple[int, ...]] = {k: tuple(v) for k, v in spec.model.input_shapes.items()}
    reference, loc = loaded.main_model
    model = load_model(reference, shapes)
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
    return Sources(state=state, source=model.source, sha256=model.sha256, eval=evaluation, calibration=calibration,
                  train=train, notes=notes)


# ---------------------------------------------------------------------------------------------- variants
@dataclass
class Recipe:
    """A variant to make: its name, the variant it starts from, and the passes."""

    name: str
    parent: str | None  # None: the loaded model
    passes: list[Pass]


def recipes(loaded: LoadedSpec, targets: list[Device], inputs: Sources) -> tuple[list[Recipe], list[str]]:
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


def make_variants(todo: list[Recipe], inputs: Sources, workspace: Workspace, progress: Progress,
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


# ---------------------------------------------------------------------------------------------- measure
@dataclass
class Measured:
    """The variants a build made, each measured on the eval set and estimated on every target device, and the
    quality floor they are held to (the spec's min_accuracy, else a point below the fp32 model)."""

    variants: list[Variant]
    states: dict[str, ModelState]  # by recipe name, in the order of `variants`
    quality_floor: float
    quality_metric: str
    notes: list[str]


def measure_variants(loaded: LoadedSpec, targets: list[Device], catalog: Catalog, estimator: LatencyEstimator,
                     threads: int = 1, progress: Progress | None = None,
                     runtimes: Mapping[str, RuntimeOutputs] | None = None) -> Measured:
    """Make every variant worth making for the targets and measure each one; `runtimes` (by device tier) measure
    quality where ONNX Runtime's does not hold (`tierml.export.target.device_runtimes()`: the MCU's int8 C)."""
    progress = progress or (lambda stage, done, total: None)
    spec = loaded.spec
    inputs = load_sources(loaded)
    todo, notes = recipes(loaded, targets, inputs)
    notes = [*inputs.notes, *notes]
    floor_given = spec.requirements.min_accuracy
    workspace = Workspace(calibration=inputs.calibration, eval=inputs.eval, train=inputs.train, threads=threads,
                          min_quality=floor_given, estimator=estimator, catalog=catalog, progress=progress)
    states = make_variants(todo, inputs, workspace, progress, notes)
    reference = run(states["fp32"].proto, inputs.eval.x, threads)
    variants: list[Variant] = []
    latencies: dict[str, LatencyStats | None] = {}
    parents = {r.name: r.parent for r in todo}
    for index, (name, state) in enumerate(states.items()):
        progress(f"measuring {name}", index, len(states))
        # speed is judged against the variant's own float parent: pruned-int8 against pruned, not fp32
        parent = parents.get(name)
        metrics = evaluate(state.proto, inputs.eval, reference, threads, latencies.get(parent) if parent else None,
                           targets, estimator, state.precision)
        latencies[name] = metrics.host_latency
        variants.append(_variant(spec.name, name, state, metrics, inputs))
    variants, measured = measure_on_runtimes(variants, [s.proto for s in states.values()], targets, runtimes or {},
                                             inputs.calibration, inputs.eval, reference)
    notes += measured
    quality = variants[0].metrics.quality
    assert quality is not None
    if floor_given is not None and quality.metric != "accuracy":
        raise loaded.doc.error(("requirements", "min_accuracy"), f"the model's output (shape {list(reference.shape)})"
                               " is not class scores, so accuracy against labels cannot be measured; drop "
                               "min_accuracy to compare variants with the fp32 model instead")
    floor = floor_given if floor_given is not None and quality.metric == "accuracy" else (
        quality.value - 0.01 if quality.metric == "accuracy" else 0.99)
    return Measured(variants=variants, states=states, quality_floor=floor, quality_metric=quality.metric, notes=notes)


def _variant(app: str, name: str, state: ModelState, metrics: Metrics, inputs: Sources) -> Variant:
    data = serialize(state.proto)
    return Variant(name=f"{app}-{name}", precision=state.precision, sha256=sha256_bytes(data),
                   lineage=Lineage(parent=inputs.source, parent_sha256=inputs.sha256, passes=state.history),
                   metrics=metrics)


def write_build(measured: Measured, out: Path, manifest: Callable[[list[Variant]], str]) -> list[Variant]:
    """The whole repository — <variant>/config.pbtxt and <variant>/1/{model.onnx,lineage.json} for every
    variant, and ladder.json (the text `manifest` makes of the written variants) — written into a temporary
    sibling folder, then swapped in for `out`: a failure leaves the previous build whole, and variants an earlier
    build made but this one did not never linger."""
    if out.exists() and any(out.iterdir()) and not (out / "ladder.json").exists():
        raise TiermlError(f"{out} exists and is not a tierml build output (no ladder.json); give an empty or "
                          "new folder with --out")
    try:
        with staged_dir(out) as staging:
            written = []
            for variant, state in zip(measured.variants, measured.states.values(), strict=True):
                saved = write_variant(variant, state.proto, staging)
                written.append(saved.model_copy(update={"path": str(out / Path(saved.path).relative_to(staging))}))
            write_synced(staging / "ladder.json", manifest(written).encode())
    except OSError as exc:
        raise TiermlError(f"cannot write the build to {out}: {exc.strerror or exc}; the previous build, if any, "
                          "is unchanged") from exc
    return written


def pareto(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both axes (x lower is better, y higher is better)."""
    front = []
    for i, (x, y) in enumerate(points):
        if not any((x2 <= x and y2 >= y) and (x2 < x or y2 > y) for j, (x2, y2) in enumerate(points) if j != i):
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])
