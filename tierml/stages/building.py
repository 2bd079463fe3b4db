"""The `build` verb (a ladder of measured variants, one chosen per target device; its output read back by the verbs
that use it) and the `optimize` verb (the passes a user names, measured, written with their lineage)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from tierml.errors import TiermlError, did_you_mean
from tierml.export.target import device_runtimes
from tierml.files import sha256_file
from tierml.hardware.calibrate import Calibration
from tierml.hardware.catalog import Catalog, Device
from tierml.hardware.roofline import RooflineEstimator
from tierml.optimize.direct import DataFiles, Optimized
from tierml.optimize.direct import optimize as run_passes
from tierml.optimize.ladder import measure_variants, write_build
from tierml.optimize.variant import Variant
from tierml.plan.variants import Ladder, choose_all
from tierml.progress import Progress, silent
from tierml.registry.layout import latest_model, model_dir
from tierml.spec.app import LoadedSpec, load_spec
from tierml.stages.host import Notice, catalog_with_host, host_calibration
from tierml.stages.models import InputShapes, shapes_of


def build(spec: str | Path | LoadedSpec, out: str | Path = "build", targets: Sequence[str] = (),
          catalogs: Sequence[Path] = (), calibration: Path | Calibration | None = None, threads: int = 1,
          progress: Progress = silent, notice: Notice | None = None) -> Ladder:
    """Compress the spec's model into a ladder of measured variants and pick one per target device.

    Writes <out>/<app>-<variant>/1/model.onnx + lineage.json (Triton's layout: `tierml serve OUT` serves them) and
    <out>/ladder.json. A rung whose `variant` is None says why nothing fits that device.
    """
    loaded = spec if isinstance(spec, LoadedSpec) else load_spec(Path(spec))
    out = Path(out)
    cal = host_calibration(calibration, threads, progress, notice)
    catalog = catalog_with_host(cal, [*loaded.catalog_files(), *catalogs])
    devices = targets_of(loaded, catalog, list(targets))
    measured = measure_variants(loaded, devices, catalog, RooflineEstimator(cal), threads, progress,
                                device_runtimes())
    rungs = choose_all(devices, measured.variants, measured.quality_floor, loaded.spec.requirements.latency)
    ladder = Ladder(app=loaded.spec.name, spec=str(loaded.base), out=str(out), host=cal.host.cpu, threads=threads,
                    quality_floor=measured.quality_floor, quality_metric=measured.quality_metric,
                    variants=measured.variants, rungs=rungs, notes=measured.notes)

    def manifest(written: list[Variant]) -> str:
        return json.dumps(ladder.model_copy(update={"variants": written}).model_dump(mode="json"), indent=1) + "\n"

    written = write_build(measured, out, manifest)
    return ladder.model_copy(update={"variants": written})


def read_ladder(path: Path) -> Ladder:
    """A build's OUT/ladder.json."""
    try:
        return Ladder.model_validate_json(path.read_text())
    except FileNotFoundError:
        raise TiermlError(f"ladder '{path}' not found; run tierml build first (it writes OUT/ladder.json)") from None
    except ValueError as exc:
        first = str(exc).splitlines()[0]
        raise TiermlError(f"'{path}' is not a ladder.json written by tierml build: {first}") from None


def variant_model(ladder_path: Path, variant: Variant) -> Path:
    """The model file of a ladder's variant, beside ladder.json wherever the build was made, checked to be the
    file the build measured."""
    model = latest_model(ladder_path.parent, variant.name)
    if model is None:
        raise TiermlError(f"ladder '{ladder_path}' names {model_dir(ladder_path.parent, variant.name)}, which holds "
                          "no model; run tierml build again")
    if sha256_file(model) != variant.sha256:
        raise TiermlError(f"{model} is not the file ladder '{ladder_path}' measured (sha256 differs); run tierml "
                          "build again")
    return model


def targets_of(loaded: LoadedSpec, catalog: Catalog, only: list[str]) -> list[Device]:
    """The devices given, else the spec's build.targets, else every device the fleet names."""
    spec = loaded.spec
    names = list(only or spec.build.targets)
    if not names:
        fleet = spec.fleet
        names = [fleet.source.device, *(e.device for e in fleet.edge),
                 *(o.device for o in (fleet.cloud.options if fleet.cloud else []))]
    for index, name in enumerate(names):
        if name not in catalog.devices:
            message = f"unknown device '{name}'; {did_you_mean(name, catalog.devices)}`tierml devices` lists them"
            if only:
                raise TiermlError(message)
            raise loaded.doc.error(("build", "targets", index), message)
    return [catalog.device(n) for n in dict.fromkeys(names)]


def optimize(model: str | Path, passes: Sequence[str], out: str | Path = "build", name: str | None = None,
             input_shapes: InputShapes = None, data: DataFiles | None = None, devices: Sequence[str] = (),
             min_quality: float | None = None, catalogs: Sequence[Path] = (),
             calibration: Path | Calibration | None = None, threads: int = 1, progress: Progress = silent,
             notice: Notice | None = None) -> Optimized:
    """Run the passes named (`NAME[:key=value,...]`, in order) on a model or a spec's model, measure the result
    against its parent, and write it with its lineage into the repository `out`."""
    cal = host_calibration(calibration, threads, progress, notice)
    catalog = catalog_with_host(cal, catalogs)
    return run_passes(str(model), list(passes), Path(out), shapes_of(input_shapes), data or DataFiles(), threads,
                      catalog, RooflineEstimator(cal), list(devices), min_quality, name, progress)
