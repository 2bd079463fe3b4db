"""Triton's dynamic batcher: rows-counted batches, preferred sizes, queue delay, priorities, bounded queues.

Requests wait in one FIFO queue per priority level (level 1 first). When an instance is free, it takes
the longest prefix of the queue whose requests share their non-batch shapes and fit in
`max_batch_size` rows; it runs that at once if the prefix reaches a preferred size (the largest one)
or the maximum, and otherwise waits until the oldest request has waited `max_queue_delay_us`.
Inference runs on the instances' own threads, never on the event loop; results go back through
`loop.call_soon_threadsafe`. A batch that fails is retried request by request, so one bad request
never fails its neighbours.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from tierml.serve.config import Batching, ModelConfig
from tierml.serve.errors import ServeError, bad_request, overloaded
from tierml.serve.protocol import InferRequest
from tierml.serve.runner import Runner
from tierml.serve.stats import ModelStats

Result = dict[str, np.ndarray]


@dataclass(eq=False)
class _Pending:
    request: InferRequest
    shapes: tuple[tuple[int, ...], ...]  # non-batch shapes: only equal ones share a batch
    enqueued_ns: int
    deadline_ns: int  # 0 = none
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future


class Batcher:
    """Queues requests of one model version and runs them in batches on its instances' threads."""

    def __init__(self, config: ModelConfig, runners: list[Runner], stats: ModelStats, reject_status: int = 503
                 ) -> None:
        self.config = config
        self.stats = stats
        self.reject_status = reject_status
        self.batching = config.batching or Batching()
        levels = max(1, self.batching.priority_levels)
        self._queues: list[deque[_Pending]] = [deque() for _ in range(levels)]
        self._queued = 0
        self._with_deadline = 0  # queued requests that carry a timeout (the queue is scanned only then)
        self._cond = threading.Condition()
        self._closed = False
        self._threads = [threading.Thread(target=self._work, args=(r,), name=f"{config.name}-instance-{i}",
                                          daemon=True) for i, r in enumerate(runners)]
        for thread in self._threads:
            thread.start()

    def submit(self, request: InferRequest) -> asyncio.Future:
        """Queue a request; the future resolves to its outputs. Rejects at once when the queue is full."""
        level = self._level(request.priority)
        policy = self.batching.policy(level + 1)
        now = time.perf_counter_ns()
        timeout_us = self._timeout_us(request.timeout_us, policy.default_timeout_us, policy.allow_timeout_override)
        loop = asyncio.get_running_loop()
        pending = _Pending(request, _shapes(request, self.config), now, now + timeout_us * 1000 if timeout_us else 0,
                           loop, loop.create_future())
        with self._cond:
            if self._closed:
                raise ServeError(503, f"model '{self.config.name}' version {self.stats.version} is being unloaded; "
                                 "retry to reach the version now serving", {"retry-after": "1"})
            queue = self._queues[level]
            if policy.max_queue_size and len(queue) >= policy.max_queue_size:
                self.stats.record_reject()
                raise overloaded(self.reject_status, f"model '{self.config.name}' is overloaded: its queue holds "
                                 f"{len(queue)} requests (max_queue_size {policy.max_queue_size}); retry later", 1)
            queue.append(pending)
            self._queued += 1
            self._with_deadline += 1 if pending.deadline_ns else 0
            self._cond.notify()
        return pending.future

    def close(self, timeout_s: float = 30.0) -> None:
        """Stop taking requests, finish every queued one, and stop the instance threads."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout_s)

    def queued(self) -> int:
        return self._queued

    def _level(self, priority: int) -> int:
        levels = self.batching.priority_levels
        if not levels:
            return 0
        if priority > levels:
            raise bad_request(f"priority {priority} is out of range for model '{self.config.name}': use 1 (highest) "
                              f"to {levels}, or 0 for the default level {self.batching.default_priority_level}")
        return (priority or self.batching.default_priority_level) - 1

    @staticmethod
    def _timeout_us(requested: int, default: int, override: bool) -> int:
        if requested and (override or not default):
            return min(requested, default) if default else requested
        return default

    def _work(self, runner: Runner) -> None:
        while True:
            with self._cond:
                batch = self._next_batch()
            if batch is None:
                return
            self._run(runner, batch)

    def _next_batch(self) -> list[_Pending] | None:
        """Wait for (and take) the next batch, with the condition's lock held; None once closed and empty."""
        delay_ns = self.batching.max_queue_delay_us * 1000
        while True:
            self._expire(time.perf_counter_ns())
            if not self._queued:
                if self._closed:
                    return None
                self._cond.wait()
                continue
            size, complete = self._form()
            oldest = min(q[0].enqueued_ns for q in self._queues if q)
            wait_ns = oldest + delay_ns - time.perf_counter_ns()
            if complete or wait_ns <= 0 or self._closed:
                return self._take(size)
            self._cond.wait(wait_ns / 1e9)

    def _form(self) -> tuple[int, bool]:
        """How many queued requests the next batch takes, and whether it is complete (max or preferred size)."""
        limit = self.config.max_batch_size
        if not limit or self.config.batching is None:
            return 1, True
        rows = 0
        taken = 0
        best_preferred = 0
        shapes = None
        for queue in self._queues:
            for pending in queue:
                if rows + pending.request.rows > limit or (shapes is not None and pending.shapes != shapes):
                    return (best_preferred or taken), True
                shapes = pending.shapes
                rows += pending.request.rows
                taken += 1
                if rows in self.batching.preferred_batch_sizes:
                    best_preferred = taken
        if rows == limit:
            return taken, True
        return (best_preferred, True) if best_preferred else (taken, False)

    def _take(self, count: int) -> list[_Pending]:
        batch = []
        for queue in self._queues:
            while queue and len(batch) < count:
                batch.append(queue.popleft())
        self._queued -= len(batch)
        self._with_deadline -= sum(1 for p in batch if p.deadline_ns)
        return batch

    def _expire(self, now: int) -> None:
        if not self._with_deadline:
            return
        for queue in self._queues:
            expired = [p for p in queue if p.deadline_ns and p.deadline_ns <= now]
            for pending in expired:
                queue.remove(pending)
                self._queued -= 1
                self._with_deadline -= 1
                self.stats.record_reject()
                waited_ms = (now - pending.enqueued_ns) / 1e6
                _deliver(pending, overloaded(self.reject_status, f"request timed out after {waited_ms:.1f} ms in the "
                                             f"queue of model '{self.config.name}'; retry later or raise its timeout",
                                             1))

    def _run(self, runner: Runner, batch: list[_Pending]) -> None:
        start = time.perf_counter_ns()
        try:
            results = run_batch(runner, [p.request.inputs for p in batch], [p.request.rows for p in batch])
        except Exception as exc:  # a model failure: isolate the request(s) that caused it
            if len(batch) > 1:
                for pending in batch:
                    self._run(runner, [pending])
                return
            _deliver(batch[0], _model_error(self.config.name, exc))
            return
        compute_ns = time.perf_counter_ns() - start
        self.stats.record_batch(sum(p.request.rows for p in batch), [start - p.enqueued_ns for p in batch],
                                compute_ns)
        _deliver_all(batch, results)

def run_batch(runner: Runner, inputs: list[dict[str, np.ndarray]], rows: list[int]) -> list[Result]:
    """Run several requests as one batch (concatenated along the batch dim) and split the outputs back."""
    if len(inputs) == 1:
        return [runner.run(inputs[0])]
    feeds = {name: np.concatenate([i[name] for i in inputs]) for name in inputs[0]}
    outputs = runner.run(feeds)
    total = sum(rows)
    results: list[Result] = []
    offset = 0
    for n in rows:
        results.append({name: _rows(name, array, offset, n, total) for name, array in outputs.items()})
        offset += n
    return results


def _rows(name: str, array: np.ndarray, offset: int, rows: int, total: int) -> np.ndarray:
    if array.ndim == 0 or array.shape[0] != total:
        raise RuntimeError(f"output '{name}' has shape {list(array.shape)}: its first dim is not the batch of {total}")
    return array[offset:offset + rows]


def _shapes(request: InferRequest, config: ModelConfig) -> tuple[tuple[int, ...], ...]:
    skip = 1 if config.max_batch_size else 0
    return tuple(t.shape[skip:] for t in request.inputs.values())


def _model_error(model: str, exc: Exception) -> ServeError:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return bad_request(f"model '{model}' could not run these inputs: {first[:300]}")


def _deliver(pending: _Pending, outcome: Result | Exception) -> None:
    pending.loop.call_soon_threadsafe(_resolve, pending.future, outcome)


def _deliver_all(batch: list[_Pending], results: list[Result]) -> None:
    loops: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future, Result]]] = {}
    for pending, result in zip(batch, results, strict=True):
        loops.setdefault(pending.loop, []).append((pending.future, result))
    for loop, items in loops.items():
        loop.call_soon_threadsafe(_resolve_many, items)


def _resolve(future: asyncio.Future, outcome: Result | Exception) -> None:
    if future.done():
        return
    if isinstance(outcome, Exception):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


def _resolve_many(items: list[tuple[asyncio.Future, Result]]) -> None:
    for future, result in items:
        _resolve(future, result)


