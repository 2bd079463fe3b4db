"""Models as stage inputs: load any supported format, resolve its shapes, profile it; the `analyze` verb."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import BaseModel

from tierml.model.load import LoadedModel, Shapes, load_model
from tierml.model.measure import LatencyStats, measure_latency
from tierml.model.profile import ModelProfile
from tierml.model.profile import analyze as profile_model
from tierml.model.shapes import parse_input_shapes
from tierml.progress import Progress, silent

InputShapes = Sequence[str] | Mapping[str | None, Sequence[int]] | None


class Analysis(BaseModel):
    """`tierml analyze`: the profile and, when measured, the host latency."""

    profile: ModelProfile
    host_latency: LatencyStats | None = None


def shapes_of(input_shapes: InputShapes) -> dict[str | None, tuple[int, ...]]:
    """Input shapes as the CLI spells them (["x=1x3x224x224"]) or as a mapping {name: dims} (None: one input)."""
    if input_shapes is None:
        return {}
    if isinstance(input_shapes, Mapping):
        return {name: tuple(dims) for name, dims in input_shapes.items()}
    return parse_input_shapes(list(input_shapes))


def load(model: str, input_shapes: InputShapes = None) -> tuple[LoadedModel, Shapes]:
    """A model (.onnx, TorchScript .pt, scikit-learn .joblib, or `file.py:factory`) as ONNX, with its shapes."""
    shapes = shapes_of(input_shapes)
    return load_model(str(model), shapes), shapes


def profiled(model: str, input_shapes: InputShapes = None) -> tuple[LoadedModel, ModelProfile]:
    """A model loaded and profiled (params, MACs, bytes, peak memory, per-tier op support)."""
    loaded, shapes = load(model, input_shapes)
    return loaded, profile_model(loaded.proto, shapes, source=loaded.source, sha256=loaded.sha256)


def measure(loaded: LoadedModel, profile: ModelProfile, threads: int = 1, runs: int = 50, per_node: bool = False,
            progress: Progress = silent) -> LatencyStats:
    """Time the model with ONNX Runtime on this host (median/p90/p99; per node with the profiler)."""
    inputs = {t.name: t for t in profile.inputs}
    return measure_latency(loaded.proto, inputs, threads=threads, runs=runs, per_node=per_node,
                           progress=lambda done, total: progress("run", done, total))


def analyze(model: str, input_shapes: InputShapes = None, measure_latency: bool = False, threads: int = 1,
            runs: int = 50, per_node: bool = False, progress: Progress = silent) -> Analysis:
    """Profile a model: parameters, MACs/FLOPs, bytes, peak memory, per-tier op support (and host latency)."""
    loaded, profile = profiled(model, input_shapes)
    stats = measure(loaded, profile, threads, runs, per_node, progress) if measure_latency else None
    return Analysis(profile=profile, host_latency=stats)
