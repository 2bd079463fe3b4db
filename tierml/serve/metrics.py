"""Prometheus text exposition of the served models' counters, named like Triton's where they overlap."""

from __future__ import annotations

from collections.abc import Iterable

from tierml.serve.stats import Histogram, ModelStats

_COUNTERS = (
    ("nv_inference_request_success", "Number of successful inference requests", lambda s: s.success.count),
    ("nv_inference_request_failure", "Number of failed inference requests (rejections included)",
     lambda s: s.fail.count),
    ("nv_inference_count", "Number of inferences performed (a batch of n rows counts n)", lambda s: s.inference_count),
    ("nv_inference_exec_count", "Number of model executions (batches)", lambda s: s.execution_count),
    ("nv_inference_request_duration_us", "Cumulative successful request duration in microseconds",
     lambda s: s.success.ns // 1000),
    ("nv_inference_queue_duration_us", "Cumulative time requests spent queued in microseconds",
     lambda s: s.queue.ns // 1000),
    ("nv_inference_compute_infer_duration_us", "Cumulative model execution time in microseconds",
     lambda s: s.compute_infer.ns // 1000),
    ("tierml_inference_rejected_total", "Requests rejected because the queue was full or their timeout expired",
     lambda s: s.rejected),
)

_HISTOGRAMS = (
    ("tierml_request_duration_seconds", "Successful request latency from parse to response", "request_seconds"),
    ("tierml_queue_duration_seconds", "Time a request waited in the batcher queue", "queue_seconds"),
    ("tierml_batch_size", "Rows per model execution", "batch_rows"),
)


def render(stats: Iterable[ModelStats]) -> str:
    """The exposition text (format 0.0.4) for every served model version."""
    stats = list(stats)
    lines: list[str] = []
    for name, help_text, value in _COUNTERS:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} counter"]
        lines += [f"{name}{{{_labels(s)}}} {value(s)}" for s in stats]
    for name, help_text, attr in _HISTOGRAMS:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
        for s in stats:
            lines += _histogram(name, _labels(s), getattr(s, attr))
    return "\n".join(lines) + "\n"


def _labels(s: ModelStats) -> str:
    return f'model="{_escape(s.name)}",version="{s.version}"'


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _histogram(name: str, labels: str, h: Histogram) -> list[str]:
    lines = []
    running = 0
    for bound, count in zip((*h.bounds, float("inf")), h.counts, strict=True):
        running += count
        le = "+Inf" if bound == float("inf") else f"{bound:g}"
        lines.append(f'{name}_bucket{{{labels},le="{le}"}} {running}')
    lines += [f"{name}_sum{{{labels}}} {h.total:.9g}", f"{name}_count{{{labels}}} {h.count}"]
    return lines
