"""Where a model version's requests run: the interface the routes call, and the built-in engine's factory."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from tierml.serve.batcher import Batcher, Result
from tierml.serve.config import ModelConfig
from tierml.serve.protocol import InferRequest
from tierml.serve.runner import Runner
from tierml.serve.stats import ModelStats


class Executor(Protocol):
    """Runs checked requests of one model version; `close` answers what it holds, then releases it."""

    def submit(self, request: InferRequest) -> Awaitable[Result]: ...

    def close(self) -> None: ...


# (config, serialized ONNX model, counters, status for rejections) -> an executor
ExecutorFactory = Callable[[ModelConfig, bytes, ModelStats, int], Executor]


def builtin_executor(config: ModelConfig, model: bytes, stats: ModelStats, reject_status: int) -> Executor:
    """The dynamic batcher over `instance_count` ORT sessions, each with its share of the cores."""
    runners = [Runner(model, config.threads(), spin=False) for _ in range(config.instance_count)]
    return Batcher(config, runners, stats, reject_status)
