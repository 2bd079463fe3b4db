"""Accuracy-aware int8: search the cheap format space, measure, and keep the most sensitive nodes in fp32.

The idea of NNCF's accuracy control and Intel Neural Compressor's tuning, on ONNX Runtime:
1. Candidate formats, measured on this host: ORT's two defaults (static S8S8 per-tensor QDQ on every
   op; dynamic) as baselines, and the forms that were fast and accurate on real models here — U8S8
   per-channel QDQ or QOperator restricted to compute ops (Conv, ConvTranspose, MatMul, Gemm), U8S8 on
   every op, S8S8 on compute ops, dynamic on MatMul/Gemm only.
2. The quality floor: the user's (accuracy with labels, agreement with fp32 without), raised to the best
   default's quality so the result never loses to a default on accuracy.
3. The pick: of the candidates that meet the floor and are faster than fp32 on this host, the most
   accurate of those within 10% of the fastest (then the smaller). Never an int8 model slower than
   fp32 when speed is required.
4. If none meets the floor: rank the quantized nodes by how much their outputs drift from fp32 (SQNR of
   matched activations), and move them back to fp32 one at a time, keeping each move that helps, until
   the floor is met, the model stops being faster than fp32, or the time budget runs out.
If nothing qualifies, the fp32 model is returned unchanged, with the reason.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import onnx
import onnxruntime as ort
from pydantic import BaseModel, Field

from tierml.data.dataset import Dataset
from tierml.data.metrics import quality
from tierml.data.scoring import run
from tierml.model.load import serialize
from tierml.model.measure import time_runs
from tierml.model.session import make_session
from tierml.model.shapes import with_outputs
from tierml.optimize.evaluate import vnni_note
from tierml.optimize.passes import ModelState, Pass, PassConfig, Workspace
from tierml.optimize.quantize import QuantizeDynamic, QuantizeStatic, prepare
from tierml.optimize.simplify import shorten_names, strip

# name -> (pass, its config); the two "ort-" entries are ONNX Runtime's documented defaults.
CANDIDATES: dict[str, tuple[type[Pass], dict]] = {
    "ort-static-default": (QuantizeStatic, {}),
    "ort-dynamic-default": (QuantizeDynamic, {}),
    "u8s8-qdq-channel-compute": (QuantizeStatic, {"activation_type": "uint8", "per_channel": True,
                                                  "op_types": "compute"}),
    "u8s8-qoperator-channel-compute": (QuantizeStatic, {"activation_type": "uint8", "per_channel": True,
                                                        "op_types": "compute", "format": "qoperator"}),
    "u8s8-qdq-channel-all": (QuantizeStatic, {"activation_type": "uint8", "per_channel": True}),
    "s8s8-qdq-channel-compute": (QuantizeStatic, {"per_channel": True, "op_types": "compute"}),
    "dynamic-matmul": (QuantizeDynamic, {"op_types": ["MatMul", "Gemm"], "per_channel": True}),
}
DEFAULTS = ("ort-static-default", "ort-dynamic-default")
# Of the candidates that clear the bar, those within 10% of the fastest count as equally fast (timing on a
# shared machine wobbles by a few percent) and the most accurate of them wins.
SPEED_TOLERANCE = 1.10


class AccuracyAwareConfig(PassConfig):
    min_quality: float | None = None  # accuracy (labels) or agreement (no labels); None: the workspace's
    beat_defaults: bool = True  # the floor is at least the best ORT default's quality
    require_speedup: bool = True  # only int8 that runs faster than fp32 on this host
    candidates: list[str] = Field(default_factory=lambda: list(CANDIDATES))
    calibration_samples: int = 32
    eval_samples: int = 64
    max_fallbacks: int = 24
    seconds: float = 240.0


class Trial(BaseModel):
    """One measured candidate."""

    name: str
    quality: float
    metric: str
    median_ms: float
    size_bytes: int
    excluded: list[str] = []
    error: str = ""

    def describe(self) -> str:
        if self.error:
            return f"{self.name}: failed ({self.error})"
        return (f"{self.name}: {self.metric} {self.quality:.4f}, {self.median_ms:.3g} ms, {self.size_bytes:,} B"
                + (f", {len(self.excluded)} nodes in fp32" if self.excluded else ""))


@dataclass
class Probe:
    """What each trial is measured on."""

    data: Dataset
    reference: np.ndarray
    threads: int
    deadline: float
    fp32: ort.InferenceSession | None = None  # timed beside every candidate
    fp32_ms: float = 0.0

    def measure(self, name: str, model: onnx.ModelProto, excluded: list[str] | None = None) -> Trial:
        outputs = run(model, self.data.x, self.threads)
        measured = quality(outputs, self.reference, self.data.y)
        shipped = model if name in DEFAULTS else compact(model)  # the defaults as plain ORT writes them
        return Trial(name=name, quality=measured.value, metric=measured.metric, median_ms=median_ms(model, self),
                     size_bytes=len(serialize(shipped)), excluded=excluded or [])

    @property
    def time_left(self) -> float:
        return self.deadline - time.perf_counter()


def median_ms(model: onnx.ModelProto, probe: Probe, rounds: int = 3) -> float:
    """Host latency at batch 1, corrected for what else the machine was doing.

    Each round times the candidate and the fp32 model back to back; each keeps the lowest of its round
    medians (other work only ever slows a round down). The candidate's time is reported relative to fp32
    in the same window, scaled by fp32's first measurement, so a busy spell during one candidate's turn
    does not make it look slower than one measured in a quiet spell.
    """
    session = make_session(model, probe.threads)
    feeds = {session.get_inputs()[0].name: probe.data.x[:1]}

    def lowest(s: ort.InferenceSession, times: list[float]) -> None:
        times.append(float(np.median(time_runs(s, feeds, runs=7, warmup=0, min_seconds=0.15))) * 1e3)

    time_runs(session, feeds, runs=3, warmup=0)
    own: list[float] = []
    reference: list[float] = []
    for _ in range(rounds):
        lowest(session, own)
        if probe.fp32 is not None:
            lowest(probe.fp32, reference)
    if probe.fp32 is None:
        probe.fp32, probe.fp32_ms = session, min(own)
        return min(own)
    return min(own) / min(reference) * probe.fp32_ms


def compact(model: onnx.ModelProto) -> onnx.ModelProto:
    """What the variant ships as: the quantizer's long tensor names shortened, doc strings, default
    attributes and zero zero-points dropped (outputs unchanged)."""
    shipped = onnx.ModelProto()
    shipped.CopyFrom(model)
    strip(shipped)
    shorten_names(shipped)
    return shipped


class AccuracyAwareQuantize(Pass):
    name = "quantize-accuracy-aware"
    Config = AccuracyAwareConfig

    def apply(self, state: ModelState, workspace: Workspace) -> tuple[ModelState, list[str]]:
        config: AccuracyAwareConfig = self.config  # type: ignore[assignment]
        calibration = workspace.require(self.name, workspace.calibration, "calibration data")
        evaluation = workspace.eval or calibration
        data = evaluation.head(config.eval_samples)
        fp32 = prepare(state.proto)
        probe = Probe(data, run(state.proto, data.x, workspace.threads), workspace.threads,
                      time.perf_counter() + config.seconds)
        baseline = probe.measure("fp32", fp32)
        baseline_quality = baseline.quality if data.y is not None and baseline.metric == "accuracy" else 1.0
        floor = config.min_quality if config.min_quality is not None else workspace.min_quality
        if floor is None:
            floor = baseline_quality - 0.01 if baseline.metric == "accuracy" else 0.99
        workspace.scratch()  # the calibration-range cache is shared by every trial
        sub = Workspace(calibration=calibration.head(config.calibration_samples), threads=workspace.threads,
                        _scratch=workspace._scratch)
        trials: dict[str, tuple[Trial, ModelState | None]] = {}
        for index, name in enumerate(config.candidates):
            if probe.time_left <= 0 and trials:
                skipped = [n for n in config.candidates if n not in trials]
                workspace.report("time budget spent", index, len(config.candidates))
                trials.update({n: (Trial(name=n, quality=0.0, metric="", median_ms=math.inf, size_bytes=0,
                                         error=f"skipped: the {config.seconds:g} s budget was spent"), None)
                               for n in skipped})
                break
            workspace.report(f"trying {name}", index, len(config.candidates) + config.max_fallbacks)
            trials[name] = self._try(name, state, sub, probe)
        bar = Bar(floor=floor, median_ms=baseline.median_ms if config.require_speedup else math.inf)
        defaults = [t for name, (t, _) in trials.items() if name in DEFAULTS and not t.error]
        if config.beat_defaults and defaults:
            best_default = max(defaults, key=lambda t: t.quality)  # never lose to it on any axis
            bar = Bar(floor=max(floor, best_default.quality), size_bytes=best_default.size_bytes,
                      median_ms=min(bar.median_ms, best_default.median_ms))
        notes = [f"fp32: {baseline.describe()}", *(t.describe() for t, _ in trials.values()), bar.describe()]
        chosen = _pick([(t, s) for t, s in trials.values() if s is not None], bar)
        if chosen is None:
            chosen = self._fallback(state, sub, probe, trials, bar, config, workspace, notes)
        if chosen is None:
            near = max((t for t, s in trials.values() if s is not None), key=lambda t: t.quality, default=None)
            notes.append("keeping fp32: no int8 form cleared the bar on this host"
                         + (f"; the most accurate, {near.name}, {bar.misses(near)}" if near else "")
                         + f" ({vnni_note()})")
            return ModelState(state.proto, state.precision, state.torch), notes
        trial, result = chosen
        notes.append(f"chose {trial.name}: {trial.metric} {trial.quality:.4f} (floor {bar.floor:.4f}), "
                     f"{baseline.median_ms / trial.median_ms:.2f}x fp32 speed on this host, {trial.size_bytes:,} B "
                     "(names shortened)")
        return ModelState(compact(result.proto), "mixed" if trial.excluded else result.precision, None), notes

    def _try(self, name: str, state: ModelState, workspace: Workspace, probe: Probe,
             excluded: list[str] | None = None) -> tuple[Trial, ModelState | None]:
        kind, options = CANDIDATES[name.split("+")[0]]
        try:
            settings = {**options, **({"nodes_to_exclude": excluded} if excluded else {})}
            result = kind(settings).apply(state, workspace)[0]
            return probe.measure(name, result.proto, excluded), result
        except Exception as exc:  # a format ORT cannot build for this model is a measured outcome, not a crash
            return Trial(name=name, quality=0.0, metric="", median_ms=math.inf, size_bytes=0,
                         error=str(exc).splitlines()[0][:160]), None

    def _fallback(self, state: ModelState, workspace: Workspace, probe: Probe, trials: dict, bar: Bar,
                  config: AccuracyAwareConfig, outer: Workspace, notes: list[str]) -> tuple[Trial, ModelState] | None:
        """Move the most drifting nodes back to fp32, one at a time, keeping the moves that help."""
        start = _fastest_qdq(trials, bar)
        if start is None:
            return None
        trial, result = start
        order = drift_order(state.proto, result.proto, probe)
        excluded: list[str] = []
        best = (trial, result)
        for step, node in enumerate(order[: config.max_fallbacks]):
            if probe.time_left <= 0:
                notes.append("fallback stopped: time budget spent")
                break
            outer.report(f"fp32 fallback {step + 1}: {node}", len(config.candidates) + step, len(config.candidates)
                         + config.max_fallbacks)
            attempt, attempt_state = self._try(f"{trial.name}+fallback", state, workspace, probe, [*excluded, node])
            if attempt_state is None or not bar.fast_and_small(attempt):
                continue
            if attempt.quality > best[0].quality:
                excluded.append(node)
                best = (attempt, attempt_state)
                if attempt.quality >= bar.floor:
                    notes.append(f"fallback reached the floor with {len(excluded)} nodes in fp32: "
                                 f"{', '.join(excluded)}")
                    return best
        notes.append(f"fallback ended at {best[0].metric} {best[0].quality:.4f} with {len(excluded)} nodes in fp32")
        return None


class Bar(BaseModel):
    """What a chosen int8 model must clear: a quality floor, a latency and (against a default) a size."""

    floor: float
    median_ms: float = math.inf
    size_bytes: float = math.inf

    def fast_and_small(self, trial: Trial) -> bool:
        return trial.median_ms < self.median_ms and trial.size_bytes <= self.size_bytes

    def clears(self, trial: Trial) -> bool:
        return trial.quality >= self.floor and self.fast_and_small(trial)

    def misses(self, trial: Trial) -> str:
        """Which part of the bar a trial fails, with the numbers."""
        missed = []
        if trial.quality < self.floor:
            missed.append(f"quality {trial.quality:.4f} < {self.floor:.4f}")
        if trial.median_ms >= self.median_ms:
            missed.append(f"{trial.median_ms:.3g} ms is not faster than {self.median_ms:.3g} ms")
        if trial.size_bytes > self.size_bytes:
            missed.append(f"{trial.size_bytes:,} B > {self.size_bytes:,.0f} B")
        return "misses: " + "; ".join(missed) if missed else "clears it"

    def describe(self) -> str:
        return (f"bar: quality >= {self.floor:.4f}, faster than {self.median_ms:.3g} ms"
                + (f", at most {self.size_bytes:,.0f} B" if math.isfinite(self.size_bytes) else ""))


def _pick(measured: list[tuple[Trial, ModelState]], bar: Bar) -> tuple[Trial, ModelState] | None:
    ok = [(t, s) for t, s in measured if bar.clears(t)]
    if not ok:
        return None
    fastest = min(t.median_ms for t, _ in ok)
    near = [(t, s) for t, s in ok if t.median_ms <= fastest * SPEED_TOLERANCE]
    return max(near, key=lambda pair: (pair[0].quality, -pair[0].size_bytes))


def _fastest_qdq(trials: dict, bar: Bar) -> tuple[Trial, ModelState] | None:
    """The fastest QDQ candidate that clears the bar but for quality (fallback needs QDQ's float node names)."""
    usable = [(t, s) for name, (t, s) in trials.items() if s is not None and bar.fast_and_small(t)
              and CANDIDATES[name][0] is QuantizeStatic and CANDIDATES[name][1].get("format", "qdq") == "qdq"]
    return min(usable, key=lambda pair: pair[0].median_ms) if usable else None


def drift_order(fp32: onnx.ModelProto, quantized: onnx.ModelProto, probe: Probe) -> list[str]:
    """Quantized compute nodes, those whose outputs drift most from fp32 (lowest SQNR) first."""
    targets = _quantized_nodes(quantized)
    names = {out: node for node, out in targets}
    if not names:
        return []
    x = probe.data.x[:8]
    reference = _outputs(fp32, list(names), x, probe.threads)
    drifted = _outputs(quantized, list(names), x, probe.threads)
    scores = []
    for tensor, node in names.items():
        ref, got = reference.get(tensor), drifted.get(tensor)
        if ref is None or got is None or ref.shape != got.shape:
            continue
        noise = float(np.sum((ref - got) ** 2))
        signal = float(np.sum(ref ** 2))
        scores.append((10 * math.log10(signal / noise) if noise > 0 and signal > 0 else math.inf, node))
    return [node for _, node in sorted(scores)]


def _quantized_nodes(model: onnx.ModelProto) -> list[tuple[str, str]]:
    """(node name, output tensor) of compute nodes that run quantized in a QDQ or QOperator model."""
    quantized_inputs = {o for n in model.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    found = []
    for node in model.graph.node:
        float_compute = node.op_type in ("Conv", "ConvTranspose", "MatMul", "Gemm")
        if node.op_type in ("QLinearConv", "QLinearMatMul") or (
                float_compute and any(i in quantized_inputs for i in node.input)):
            found.append((node.name, node.output[0]))
    return found


def _outputs(model: onnx.ModelProto, tensors: list[str], x: np.ndarray, threads: int) -> dict[str, np.ndarray]:
    """Values of named intermediate tensors (exposed as extra graph outputs) for inputs x."""
    produced = {o for n in model.graph.node for o in n.output}
    wanted = [t for t in tensors if t in produced]
    session = make_session(with_outputs(model, wanted), threads)
    feeds_name = session.get_inputs()[0].name
    collected: dict[str, list[np.ndarray]] = {name: [] for name in wanted}
    for row in x:
        values = session.run(wanted, {feeds_name: row[None]})
        for name, value in zip(wanted, values, strict=True):
            collected[name].append(np.asarray(value, np.float64))
    return {name: np.concatenate(parts) for name, parts in collected.items()}
