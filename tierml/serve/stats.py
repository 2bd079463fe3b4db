"""Per-model-version counters: Triton's statistics JSON and the data behind Prometheus `/metrics`."""

from __future__ import annotations

import bisect
import threading
import time
from dataclasses import dataclass, field
from typing import Any

# Histogram bucket upper bounds (seconds for durations, rows for batch sizes).
DURATION_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


@dataclass
class Histogram:
    """Cumulative-on-render histogram: one count per bucket plus sum and count."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value
        self.count += 1


@dataclass
class Duration:
    """Triton's StatisticDuration: how many and how many nanoseconds in all."""

    count: int = 0
    ns: int = 0

    def add(self, ns: int, count: int = 1) -> None:
        self.count += count
        self.ns += ns

    def to_dict(self) -> dict[str, int]:
        return {"count": self.count, "ns": self.ns}


class ModelStats:
    """Counters of one served model version. Workers record batches; the event loop records requests."""

    def __init__(self, name: str, version: int) -> None:
        self.name = name
        self.version = version
        self._lock = threading.Lock()
        self.success = Duration()
        self.fail = Duration()
        self.rejected = 0
        self.queue = Duration()
        self.compute_infer = Duration()
        self.inference_count = 0
        self.execution_count = 0
        self.last_inference_ms = 0
        self.batch_stats: dict[int, Duration] = {}
        self.request_seconds = Histogram(DURATION_BUCKETS)
        self.queue_seconds = Histogram(DURATION_BUCKETS)
        self.batch_rows = Histogram(BATCH_BUCKETS)

    def record_batch(self, rows: int, queue_ns: list[int], compute_ns: int) -> None:
        """One execution of `rows` rows made of requests that waited `queue_ns` each."""
        with self._lock:
            for ns in queue_ns:
                self.queue.add(ns)
                self.queue_seconds.observe(ns / 1e9)
            self.compute_infer.add(compute_ns, len(queue_ns))
            self.inference_count += rows
            self.execution_count += 1
            self.batch_stats.setdefault(rows, Duration()).add(compute_ns)
            self.batch_rows.observe(rows)
            self.last_inference_ms = int(time.time() * 1000)

    def record_request(self, ok: bool, ns: int) -> None:
        with self._lock:
            (self.success if ok else self.fail).add(ns)
            if ok:
                self.request_seconds.observe(ns / 1e9)

    def record_reject(self) -> None:
        """A request turned away by a full queue or an expired timeout (its failure is counted as a request)."""
        with self._lock:
            self.rejected += 1

    def to_triton(self) -> dict[str, Any]:
        """One entry of Triton's `model_stats` list."""
        with self._lock:
            zero = Duration().to_dict()
            return {
                "name": self.name, "version": str(self.version), "last_inference": self.last_inference_ms,
                "inference_count": self.inference_count, "execution_count": self.execution_count,
                "inference_stats": {
                    "success": self.success.to_dict(), "fail": self.fail.to_dict(), "queue": self.queue.to_dict(),
                    "compute_input": zero, "compute_infer": self.compute_infer.to_dict(), "compute_output": zero,
                    "cache_hit": zero, "cache_miss": zero,
                },
                "batch_stats": [{"batch_size": rows, "compute_input": zero, "compute_infer": d.to_dict(),
                                 "compute_output": zero} for rows, d in sorted(self.batch_stats.items())],
                "memory_usage": [],
            }
