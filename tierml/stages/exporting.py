"""The `export` verb: a model packaged for a tier by an export target (mcu: int8 C for microcontrollers)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import onnx

from tierml.data.dataset import load_samples
from tierml.errors import TiermlError
from tierml.export.mcu import McuExport, McuTarget, verify
from tierml.export.target import target_class
from tierml.hardware.catalog import load_catalog
from tierml.model.profile import analyze
from tierml.model.shapes import graph_inputs
from tierml.stages.models import InputShapes, load, shapes_of


def export(model: str | Path, calibration_inputs: Path, out: str | Path = "mcu_model", target: str = "mcu",
           input_shapes: InputShapes = None, devices: Sequence[str] = (), catalogs: Sequence[Path] = (),
           in_place: bool = True, verify_inputs: Path | None = None, verify_c: bool = False,
           board: str | None = None, sanitize: bool = False) -> McuExport:
    """Export the model for a tier: `mcu` writes int8 C (model.c/model.h) sized against each MCU (default: every
    catalogue MCU); `verify_c` builds it with gcc (and runs it on `board` under QEMU) against TFLite Micro."""
    target_class(target)  # an unknown target fails before any slow work
    if board is not None and not verify_c:
        raise TiermlError("a board runs the verification on that board: add --verify")
    catalog = load_catalog(list(catalogs))
    loaded, _ = load(str(model), input_shapes)
    shapes = shapes_of(input_shapes) or shapes_of(batch_one(loaded.proto))
    profile = analyze(loaded.proto, shapes, source=loaded.source, sha256=loaded.sha256)
    samples = load_samples(calibration_inputs)
    exporter = McuTarget(samples, catalog, list(devices) or None, in_place)
    result = exporter.export(loaded.proto, profile, Path(out))
    if verify_c and exporter.compiled is not None:
        inputs = load_samples(verify_inputs) if verify_inputs else samples[:64]
        result.verification = verify(loaded.proto, exporter.compiled, Path(out) / "verify", inputs, sanitize, board)
    return result


def batch_one(model: onnx.ModelProto) -> list[str]:
    """An MCU runs batch 1: fix a dynamic leading dimension when the others are static."""
    shapes = []
    for vi in graph_inputs(model):
        dims = [d.dim_value if d.HasField("dim_value") else 0 for d in vi.type.tensor_type.shape.dim]
        if dims and all(dims[1:]):
            shapes.append(f"{vi.name}=" + "x".join(map(str, [1, *dims[1:]])))
    return shapes
