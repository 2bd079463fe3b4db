"""`tierml serve --engine ray`: the same routes, with each model version running as a Ray Serve deployment.

tierml's HTTP front end and protocol code stay as they are (so every client sees the same server); a
model version's requests go through a Ray Serve handle to `--replicas` replicas, which batch them with
Ray's `@serve.batch` (rows counted by `batch_size_fn`, limits from the model's dynamic_batching) and run
them with ONNX Runtime. Replicas can live anywhere in the Ray cluster. Differences from the built-in
engine: Ray's batcher has no priorities or per-request timeouts (those parameters are ignored), and
queue times are not reported (Ray does not expose them per request).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import Callable
from typing import Any

import ray
from ray import serve
from ray.serve.exceptions import BackPressureError

from tierml.serve.batcher import Result, run_batch
from tierml.serve.config import ModelConfig
from tierml.serve.errors import overloaded
from tierml.serve.executor import Executor, ExecutorFactory
from tierml.serve.protocol import InferRequest
from tierml.serve.routes import EXTENSIONS
from tierml.serve.runner import Runner
from tierml.serve.server import ServeOptions, Server
from tierml.serve.stats import ModelStats

Item = tuple[dict[str, Any], int]  # (inputs, rows)


def _rows_in(items: list[Item]) -> int:
    return sum(rows for _, rows in items)


class ModelReplica:
    """One Ray Serve replica of a model version: an ORT session behind Ray's batcher."""

    def __init__(self, model: bytes, threads: int, max_batch: int, wait_s: float) -> None:
        self.runner = Runner(model, threads, spin=False)
        self.batched = max_batch > 0
        if self.batched:
            self.run_batched.set_max_batch_size(max_batch)
            self.run_batched.set_batch_wait_timeout_s(wait_s)

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.0, batch_size_fn=_rows_in)
    async def run_batched(self, items: list[Item]) -> list[tuple[Result, dict | None]]:
        start = time.perf_counter_ns()
        results = run_batch(self.runner, [inputs for inputs, _ in items], [rows for _, rows in items])
        info = {"rows": _rows_in(items), "requests": len(items), "compute_ns": time.perf_counter_ns() - start}
        return [(result, info if i == 0 else None) for i, result in enumerate(results)]

    async def __call__(self, inputs: dict[str, Any], rows: int) -> tuple[Result, dict | None]:
        if self.batched:
            return await self.run_batched((inputs, rows))
        start = time.perf_counter_ns()
        result = self.runner.run(inputs)
        return result, {"rows": rows, "requests": 1, "compute_ns": time.perf_counter_ns() - start}


class RayExecutor:
    """The routes' side of a model version deployed on Ray Serve."""

    def __init__(self, handle: Any, app: str, config: ModelConfig, stats: ModelStats, reject_status: int) -> None:
        self.handle = handle
        self.app = app
        self.config = config
        self.stats = stats
        self.reject_status = reject_status

    def submit(self, request: InferRequest) -> asyncio.Future:
        return asyncio.ensure_future(self._call(request))

    async def _call(self, request: InferRequest) -> Result:
        try:
            result, info = await self.handle.remote(request.inputs, request.rows)
        except BackPressureError:
            self.stats.record_reject()
            raise overloaded(self.reject_status, f"model '{self.config.name}' is overloaded: its Ray Serve queue is "
                             "full; retry later", 1) from None
        if info is not None:
            self.stats.record_batch(info["rows"], [0] * info["requests"], info["compute_ns"])
        return result

    def close(self) -> None:
        serve.delete(self.app, _blocking=False)  # Ray drains the replicas; waiting here can hang


def ray_executor_factory(replicas: int) -> ExecutorFactory:
    """Deploy each model version as a Ray Serve application of `replicas` replicas."""
    cores = os.cpu_count() or 1

    def deploy(config: ModelConfig, model: bytes, stats: ModelStats, reject_status: int) -> Executor:
        threads = config.intra_op_threads or max(1, cores // replicas)
        batching = config.batching
        queue = batching.default_policy.max_queue_size if batching else 0
        app = f"{config.name}-v{stats.version}-{uuid.uuid4().hex[:8]}"
        deployment = serve.deployment(ModelReplica).options(
            name=app, num_replicas=replicas, ray_actor_options={"num_cpus": min(threads, cores)},
            max_ongoing_requests=max(2 * config.max_batch_size, 8), max_queued_requests=queue or -1)
        wait_s = (batching.max_queue_delay_us if batching else 0) / 1e6
        handle = serve.run(deployment.bind(model, threads, config.max_batch_size if batching else 0, wait_s),
                           name=app, route_prefix=None)
        return RayExecutor(handle, app, config, stats, reject_status)

    return deploy


def run(options: ServeOptions, replicas: int, on_ready: Callable[[int], None] | None = None) -> None:
    """Start a local Ray instance (or join RAY_ADDRESS), serve until SIGTERM/SIGINT, then shut Ray down."""
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level=logging.WARNING,
             configure_logging=True, log_to_driver=False)
    try:
        serve.start(proxy_location="Disabled")
        with asyncio.Runner() as runner:
            # Ray's batcher has no priorities or timeouts: the schedule_policy extension is not offered.
            extensions = tuple(e for e in EXTENSIONS if e != "schedule_policy")
            runner.run(Server(options, ray_executor_factory(replicas), extensions).run(on_ready))
    finally:
        serve.shutdown()
        ray.shutdown()
