"""NAS-lite: pick the best student from a small family (widths x depths) under a size or device budget.

Every candidate architecture is built and profiled first (parameters, and on a target device: int8 fit
and estimated latency); the ones within budget are distilled briefly and scored on the eval set; the
best is distilled fully.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from tierml.data.metrics import quality
from tierml.data.scoring import run
from tierml.errors import TiermlError
from tierml.hardware.assessment import assess_device
from tierml.model.profile import analyze
from tierml.optimize.distill import DistillConfig, distill
from tierml.optimize.passes import ModelState, Pass, PassConfig, TorchModel, Workspace
from tierml.optimize.students import parameters, student
from tierml.optimize.twin import export


class SearchConfig(PassConfig):
    widths: list[int] = Field(default_factory=lambda: [2, 4, 6, 8, 12, 16])
    depths: list[int] = Field(default_factory=lambda: [2, 3, 4])
    min_size_ratio: float | None = None  # the student must have this many times fewer parameters
    device: str | None = None  # catalogue device the int8 student must fit (RAM, flash) and meet max_latency_ms on
    max_latency_ms: float | None = None
    search_epochs: int = 4
    epochs: int = 30
    temperature: float = 4.0
    alpha: float = 0.7


class StudentCandidate(BaseModel):
    width: int
    depth: int
    params: int
    latency_ms: float | None = None
    quality: float | None = None
    rejected: str = ""


class StudentSearch(Pass):
    name = "search-student"
    Config = SearchConfig

    def apply(self, state: ModelState, workspace: Workspace) -> tuple[ModelState, list[str]]:
        config: SearchConfig = self.config  # type: ignore[assignment]
        data = workspace.require(self.name, workspace.train, "training data")
        check = workspace.eval or data
        teacher_params = analyze(state.proto, {state.proto.graph.input[0].name: (1, *data.x.shape[1:])}).params
        classes = run(state.proto, data.x[:1], workspace.threads).shape[-1]
        candidates = [self._screen(width, depth, data.x.shape, classes, teacher_params, config, workspace)
                      for depth in config.depths for width in config.widths]
        fitting = [c for c in candidates if not c.rejected]
        if not fitting:
            reasons = "; ".join(f"w{c.width}d{c.depth}: {c.rejected}" for c in candidates[:6])
            raise TiermlError(f"no student in the family fits the budget ({reasons})")
        reference = run(state.proto, check.x, workspace.threads)
        for index, c in enumerate(fitting):
            workspace.report(f"student w{c.width} d{c.depth}", index, len(fitting) + 1)
            quick = distill(state, workspace, self._distill(config, c, config.search_epochs), self.name)
            c.quality = quality(run(quick.proto, check.x), reference, check.y).value
        best = max(fitting, key=lambda c: (c.quality or 0.0, -c.params))
        workspace.report(f"training w{best.width} d{best.depth}", len(fitting), len(fitting) + 1)
        result = distill(state, workspace, self._distill(config, best, config.epochs), self.name)
        notes = [f"w{c.width} d{c.depth}: {c.params:,} params" + (f", {c.latency_ms:.3g} ms" if c.latency_ms else "")
                 + (f", quick {c.quality:.4f}" if c.quality is not None else "") + (f" ({c.rejected})" if c.rejected
                                                                                  else "") for c in candidates]
        notes.append(f"chose width {best.width}, depth {best.depth} ({best.params:,} parameters, "
                     f"{teacher_params / best.params:.1f}x fewer than the teacher)")
        return result, notes

    def _screen(self, width: int, depth: int, shape: tuple, classes: int, teacher_params: int,
                config: SearchConfig, workspace: Workspace) -> StudentCandidate:
        sample = (1, *shape[1:])
        module = student(sample, classes, width, depth)
        found = StudentCandidate(width=width, depth=depth, params=parameters(module))
        if config.min_size_ratio and found.params * config.min_size_ratio > teacher_params:
            found.rejected = f"needs <= {teacher_params / config.min_size_ratio:,.0f} parameters"
            return found
        if config.device and workspace.estimator is not None and workspace.catalog is not None:
            proto = export(TorchModel(module, sample, "input"))
            profile = analyze(proto, {"input": sample})
            device = workspace.catalog.device(config.device)
            fit = assess_device(profile, device, workspace.estimator, "int8")
            found.latency_ms = fit.latency.value
            if not fit.fits:
                found.rejected = f"does not fit {device.name}: {fit.ram.what}"
            elif config.max_latency_ms and fit.latency.value > config.max_latency_ms:
                found.rejected = f"{fit.latency.value:.3g} ms > {config.max_latency_ms:g} ms on {device.name}"
        return found

    @staticmethod
    def _distill(config: SearchConfig, c: StudentCandidate, epochs: int) -> DistillConfig:
        return DistillConfig(width=c.width, depth=c.depth, temperature=config.temperature, alpha=config.alpha,
                             epochs=epochs)
