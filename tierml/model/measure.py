"""Latency of a model on this host through ONNX Runtime: whole model and per node."""

from __future__ import annotations

import json
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from pydantic import BaseModel

from tierml.model.session import CPU, make_session
from tierml.model.shapes import dummy_inputs
from tierml.model.tensors import TensorInfo

RunProgress = Callable[[int, int], None]  # (runs done, runs planned)


class NodeTiming(BaseModel):
    """Median kernel time of one node of the graph ORT actually runs (after its fusions)."""

    node: str
    op_type: str
    median_us: float


class LatencyStats(BaseModel):
    """Wall-clock latency of single requests, after warm-up."""

    runs: int
    warmup: int
    threads: int
    median_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    min_ms: float
    runtime: str
    per_node: list[NodeTiming] = []


def time_runs(session: ort.InferenceSession, feeds: Mapping[str, np.ndarray], runs: int, warmup: int,
              progress: RunProgress | None = None, min_seconds: float = 0.0, max_runs: int = 100_000) -> np.ndarray:
    """Seconds per `session.run`, one sample per run, after `warmup` untimed runs.

    At least `runs` runs, and more (up to `max_runs`) until `min_seconds` have been spent timing:
    a fast model's median needs many samples to be stable on a noisy machine.
    """
    for _ in range(warmup):
        session.run(None, dict(feeds))
    samples: list[float] = []
    spent = 0.0
    while len(samples) < runs or (spent < min_seconds and len(samples) < max_runs):
        start = time.perf_counter()
        session.run(None, dict(feeds))
        samples.append(time.perf_counter() - start)
        spent += samples[-1]
        if progress:
            progress(len(samples), max(runs, len(samples)))
    return np.array(samples)


def summarize(samples: np.ndarray, warmup: int, threads: int) -> LatencyStats:
    ms = samples * 1e3
    return LatencyStats(
        runs=len(samples), warmup=warmup, threads=threads,
        median_ms=float(np.median(ms)), p90_ms=float(np.percentile(ms, 90)),
        p99_ms=float(np.percentile(ms, 99)), mean_ms=float(ms.mean()), min_ms=float(ms.min()),
        runtime=f"onnxruntime {ort.__version__} {'+'.join(CPU)}, ORT_ENABLE_ALL",
    )


def measure_latency(
    model: onnx.ModelProto,
    inputs: Mapping[str, TensorInfo],
    threads: int = 1,
    runs: int = 50,
    warmup: int = 5,
    per_node: bool = False,
    progress: RunProgress | None = None,
    min_seconds: float = 0.5,
) -> LatencyStats:
    """Median / p90 / p99 of at least `runs` single-request runs (and at least `min_seconds` of them);
    with `per_node`, ORT profiler kernel times."""
    feeds = dummy_inputs(inputs)
    session = make_session(model, threads)
    stats = summarize(time_runs(session, feeds, runs, warmup, progress, min_seconds), warmup, threads)
    if per_node:
        stats.per_node = profile_nodes(model, feeds, threads, runs=min(runs, 20), warmup=warmup)
    return stats


def profile_nodes(model: onnx.ModelProto, feeds: Mapping[str, np.ndarray], threads: int, runs: int,
                  warmup: int) -> list[NodeTiming]:
    """Per-node kernel times from ORT's profiler (a separate session: profiling adds overhead)."""
    with tempfile.TemporaryDirectory(prefix="tierml-prof-") as tmp:
        session = make_session(model, threads, profile_dir=Path(tmp))
        for _ in range(warmup + runs):
            session.run(None, dict(feeds))
        events = json.loads(Path(session.end_profiling()).read_text())
    return node_timings(events, skip_runs=warmup)


def node_timings(events: list[dict], skip_runs: int = 0) -> list[NodeTiming]:
    """Median kernel time per node from ORT profiler events, skipping the first `skip_runs` runs."""
    runs = sorted((e["ts"], e["ts"] + e["dur"]) for e in events
                  if e.get("cat") == "Session" and e.get("name") == "model_run")
    start = runs[skip_runs - 1][1] if 0 < skip_runs <= len(runs) else 0
    per_run: dict[str, list[float]] = defaultdict(list)
    ops: dict[str, str] = {}
    for event in events:
        name = event.get("name", "")
        if event.get("cat") != "Node" or not name.endswith("_kernel_time") or event["ts"] < start:
            continue
        node = name[: -len("_kernel_time")]
        per_run[node].append(float(event["dur"]))
        ops[node] = event.get("args", {}).get("op_name", "")
    return [NodeTiming(node=node, op_type=ops[node], median_us=float(np.median(durs)))
            for node, durs in per_run.items()]
