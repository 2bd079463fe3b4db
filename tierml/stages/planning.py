"""The `plan` verb: load what the spec names (catalogue, model profiles, the eval set, a build's ladder), then plan.

Everything that touches a file or a session is here; `tierml.plan` receives the loaded data and stays pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tierml.data.dataset import load_dataset, model_input
from tierml.data.scoring import score
from tierml.errors import TiermlError
from tierml.hardware.calibrate import Calibration
from tierml.hardware.catalog import Catalog
from tierml.hardware.estimate import Estimate, LatencyEstimator
from tierml.hardware.roofline import RooflineEstimator
from tierml.model.load import LoadedModel, load_model
from tierml.model.profile import ModelProfile, analyze
from tierml.plan.context import Context, MeasuredVariant
from tierml.plan.planner import Plan
from tierml.plan.planner import plan as plan_placements
from tierml.progress import Progress, silent
from tierml.spec.app import LoadedSpec, load_spec
from tierml.stages.building import read_ladder, variant_model
from tierml.stages.host import Notice, catalog_with_host, host_calibration


def plan(spec: str | Path | LoadedSpec, catalogs: Sequence[Path] = (), calibration: Path | Calibration | None = None,
         threads: int = 1, ladder: Path | None = None, progress: Progress = silent,
         notice: Notice | None = None) -> Plan:
    """Decide where the spec's model should run: every placement scored, the constraints applied in the
    framework's order, the feasible ones ranked, the choice explained (`Plan.winner` is None when nothing fits).

    With `ladder` (a build's OUT/ladder.json) each device runs its measured variant instead of an estimate.
    """
    loaded = spec if isinstance(spec, LoadedSpec) else load_spec(Path(spec))
    cal = host_calibration(calibration, threads, progress, notice)
    context = load_context(loaded, RooflineEstimator(cal), catalog_with_host(cal, [*loaded.catalog_files(),
                                                                                   *catalogs]))
    if ladder is not None:
        context.variants.update(ladder_variants(context, ladder))
    return plan_placements(context, cal.describe(), str(loaded.doc.path), progress)


def load_context(loaded: LoadedSpec, estimator: LatencyEstimator, catalog: Catalog) -> Context:
    """Catalogue, model profile(s) and the model's measured quality for a spec (errors point at the spec's lines)."""
    spec = loaded.spec
    loaded.check_catalog(catalog.devices, catalog.links)
    shapes: dict[str | None, tuple[int, ...]] = {k: tuple(v) for k, v in spec.model.input_shapes.items()}
    reference, loc = loaded.main_model
    model = load_model(reference, shapes)
    profile = analyze(model.proto, shapes, source=model.source, sha256=model.sha256)
    small = None
    if spec.model.small:
        small_model = load_model(loaded.model_reference(spec.model.small, ("model", "small")), shapes)
        small = analyze(small_model.proto, shapes, source=small_model.source, sha256=small_model.sha256)
    context = Context(spec, catalog, profile, estimator, small)
    if spec.data.eval:
        context.accuracy = measured_quality(loaded, model, shapes, loc)
    return context


def measured_quality(loaded: LoadedSpec, model: LoadedModel, shapes: dict[str | None, tuple[int, ...]],
                     loc: tuple) -> Estimate:
    """The fp32 model's quality on the spec's eval set, loaded and scored exactly as `tierml build` does."""
    try:
        info = model_input(model.proto, shapes)
    except TiermlError as exc:
        raise loaded.doc.error(loc, str(exc)) from None
    path = loaded.path(loaded.spec.data.eval or "", ("data", "eval"), "eval set")
    try:
        dataset = load_dataset(path, info, "eval", need_labels=loaded.spec.requirements.min_accuracy is not None)
    except TiermlError as exc:
        raise loaded.doc.error(("data", "eval"), str(exc)) from None
    quality, _ = score(model.proto, dataset)
    return Estimate(value=quality.value, unit=quality.metric, method="measured",
                    basis=f"fp32 model on {quality.samples} eval samples from {path.name}, ONNX Runtime on this host")


def ladder_variants(context: Context, path: Path) -> dict[str, MeasuredVariant]:
    """`tierml build`'s measured variants by device: each profiled from the written model (its sha256 checked)
    with its measured quality."""
    ladder = read_ladder(path)
    if ladder.app != context.spec.name:
        raise TiermlError(f"ladder '{path}' was built for app '{ladder.app}', not '{context.spec.name}'")
    variants = {v.name: v for v in ladder.variants}
    shapes = {t.name: t.shape for t in context.model.inputs}
    found: dict[str, MeasuredVariant] = {}
    for rung in ladder.rungs:
        variant = variants.get(rung.variant or "")
        if variant is None:
            continue
        model = variant_model(path, variant)
        profile: ModelProfile = analyze(load_model(str(model)).proto, shapes, source=str(model))
        quality = variant.quality_on(rung.device)  # an MCU's is its int8 C's, not ONNX Runtime's
        found[rung.device] = MeasuredVariant(
            name=variant.name, profile=profile, precision="int8" if variant.precision in ("int8", "mixed") else "fp32",
            quality=quality.value if quality else None, metric=quality.metric if quality else "")
    return found
