"""`tierml optimize MODEL_OR_SPEC --pass ...`: run the passes a user names, measure, write one variant."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from tierml.data.dataset import Dataset, load_dataset, model_input
from tierml.data.scoring import run
from tierml.errors import TiermlError
from tierml.files import sha256_bytes
from tierml.hardware.catalog import Catalog
from tierml.hardware.estimate import LatencyEstimator
from tierml.model.load import Shapes, load_model, serialize
from tierml.optimize.evaluate import evaluate
from tierml.optimize.ladder import Sources, load_sources
from tierml.optimize.passes import ModelState, Workspace, parse_pass
from tierml.optimize.twin import load_twin
from tierml.optimize.variant import Lineage, Variant, write_variant
from tierml.progress import Progress


class Optimized(BaseModel):
    parent: Variant
    variant: Variant
    notes: list[str] = []


@dataclass
class DataFiles:
    eval: Path | None = None
    calibration: Path | None = None
    train: Path | None = None
    torch: str | None = None
    weights: Path | None = None


def inputs_for(target: str, shapes: Shapes, files: DataFiles) -> Sources:
    """From a spec (model, data and PyTorch twin as it names them) or a model file plus data options."""
    if target.endswith((".yaml", ".yml")):
        from tierml.spec.app import load_spec

        return load_sources(load_spec(Path(target)))
    model = load_model(target, shapes)
    info = model_input(model.proto, shapes)
    dims = info.shape
    loaded = {role: load_dataset(path, info, role) for role, path in
              (("eval", files.eval), ("calibration", files.calibration), ("training", files.train)) if path}
    notes = []
    evaluation = loaded.get("eval") or loaded.get("calibration")
    if evaluation is None:
        rng = np.random.default_rng(0)
        evaluation = Dataset(rng.standard_normal((32, *dims[1:])).astype(np.float32), None, "random normal inputs")
        notes.append("no --eval or --calibration data: agreement with the parent is measured on 32 random normal "
                     "inputs, which says little about real accuracy")
    state = ModelState(model.proto)
    if files.torch:
        state.torch = load_twin(files.torch, str(files.weights) if files.weights else None, model.proto,
                                evaluation.x[:8])
    return Sources(state=state, source=model.source, sha256=model.sha256, eval=evaluation,
                  calibration=loaded.get("calibration") or evaluation, train=loaded.get("training"), notes=notes)


def optimize(target: str, passes: list[str], out: Path, shapes: Shapes, files: DataFiles, threads: int,
             catalog: Catalog, estimator: LatencyEstimator, devices: list[str], min_quality: float | None,
             name: str | None = None, progress: Progress | None = None) -> Optimized:
    if not passes:
        raise TiermlError("name at least one pass: --pass quantize-static:per_channel=true (see --list-passes)")
    steps = [parse_pass(text) for text in passes]
    inputs = inputs_for(target, shapes, files)
    workspace = Workspace(calibration=inputs.calibration, eval=inputs.eval, train=inputs.train, threads=threads,
                          min_quality=min_quality, estimator=estimator, catalog=catalog, progress=progress)
    state = inputs.state
    for index, step in enumerate(steps):
        workspace.report(f"pass {step.name}", index, len(steps))
        state = step.run(state, workspace)
    targets = [catalog.device(d) for d in devices]
    reference = run(inputs.state.proto, inputs.eval.x, threads)
    parent_metrics = evaluate(inputs.state.proto, inputs.eval, reference, threads, None, targets, estimator, "fp32")
    metrics = evaluate(state.proto, inputs.eval, reference, threads, parent_metrics.host_latency, targets, estimator,
                       state.precision)
    label = name or f"{Path(inputs.source).stem}-{'-'.join(s.name for s in steps)}"
    lineage = Lineage(parent=inputs.source, parent_sha256=inputs.sha256, passes=state.history)
    data = serialize(state.proto)
    variant = write_variant(Variant(name=label, precision=state.precision, sha256=sha256_bytes(data), lineage=lineage,
                                    metrics=metrics), state.proto, out)
    parent = Variant(name="parent", precision=inputs.state.precision, sha256=inputs.sha256,
                     lineage=Lineage(parent=inputs.source, parent_sha256=inputs.sha256, passes=[]),
                     metrics=parent_metrics)
    return Optimized(parent=parent, variant=variant, notes=inputs.notes)
