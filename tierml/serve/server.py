"""The built-in engine: load the repository, serve the routes on loopback, drain on SIGTERM.

`until_signal`, `run_loop` and `BackgroundService` run any service with an async `start` (returning its port) and
`stop` the same way: in the foreground until SIGTERM, or on a thread of its own (tests, embedding).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
import logging
import signal
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Self

from tierml.errors import TiermlError
from tierml.serve.errors import ServeError
from tierml.serve.executor import ExecutorFactory, builtin_executor
from tierml.serve.http import HttpServer, Limits
from tierml.serve.repository import CONTROL_MODES, Repository
from tierml.serve.routes import EXTENSIONS, App, error_body

logger = logging.getLogger("tierml.serve")


class Service(Protocol):
    """Something that listens: `start` returns the bound port, `stop` drains and releases everything."""

    async def start(self) -> int: ...

    async def stop(self) -> None: ...


async def until_signal(service: Service, on_ready: Callable[[int], None] | None = None) -> None:
    """Start the service, serve until SIGTERM or SIGINT, then stop it (draining) and return."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    port = await service.start()
    # The process is ours: what start-up built (modules, sessions, configs) lives as long as the server, so
    # keep it out of the collector's full passes, which otherwise walk all of it while requests wait.
    gc.freeze()
    if on_ready:
        on_ready(port)
    await stopping.wait()
    await service.stop()


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run `main` to completion on a fresh event loop in this thread (uvloop when installed)."""
    factory = None
    with contextlib.suppress(ImportError):
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main)


@dataclass
class ServeOptions:
    """Everything `tierml serve` is told on the command line."""

    repository: Path
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    control: str = "none"  # none | explicit | poll
    load_models: list[str] = field(default_factory=list)  # explicit mode: loaded at start ("*" = all)
    poll_seconds: float = 5.0
    max_body_bytes: int = 64 * 1024 * 1024
    reject_status: int = 503
    access_log: bool = False
    drain_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if self.control not in CONTROL_MODES:
            raise TiermlError(f"--model-control-mode must be one of {', '.join(CONTROL_MODES)}, not '{self.control}'")
        if self.reject_status not in (429, 503):
            raise TiermlError(f"--reject-status must be 503 or 429, not {self.reject_status}")


class Server:
    """One built-in server: `start` loads the models and listens; `stop` drains and unloads."""

    def __init__(self, options: ServeOptions, executor_factory: ExecutorFactory = builtin_executor,
                 extensions: tuple[str, ...] = EXTENSIONS) -> None:
        self.options = options
        self.repository = Repository(options.repository, options.reject_status, executor_factory)
        self.app = App(self.repository, options.control, options.token, options.access_log, extensions)
        self.http = HttpServer(self.app.handle, error_body, Limits(max_body_bytes=options.max_body_bytes))
        self.port = 0
        self._poller: asyncio.Task | None = None

    async def start(self) -> int:
        """Load the models the control mode asks for, then listen; returns the bound port."""
        loop = asyncio.get_running_loop()
        for name in self._initial_models():
            try:
                await loop.run_in_executor(None, self.repository.load, name)
            except ServeError as exc:
                self.repository.close()
                raise TiermlError(str(exc)) from None
        try:
            self.port = await self.http.start(self.options.host, self.options.port)
        except OSError as exc:
            self.repository.close()
            raise TiermlError(f"cannot listen on {self.options.host}:{self.options.port} ({exc.strerror}); choose "
                              "another --port (or --port 0 for any free one)") from None
        if self.options.control == "poll":
            self._poller = loop.create_task(self._poll())
        return self.port

    def _initial_models(self) -> list[str]:
        names = self.repository.names()
        if self.options.control != "explicit" or "*" in self.options.load_models:
            return names
        missing = [n for n in self.options.load_models if n not in names]
        if missing:
            raise TiermlError(f"--load-model {', '.join(missing)}: no such model folder in '{self.repository.root}' "
                              f"(it has: {', '.join(names) or 'nothing'})")
        return list(self.options.load_models)

    async def stop(self) -> None:
        """Stop accepting, answer every accepted request, then unload."""
        self.app.draining = True
        if self._poller is not None:
            self._poller.cancel()
        await self.http.drain(self.options.drain_timeout_s)
        await asyncio.get_running_loop().run_in_executor(None, self.repository.close)

    async def run(self, on_ready: Callable[[int], None] | None = None) -> None:
        """Serve until SIGTERM or SIGINT, then drain and return."""
        await until_signal(self, on_ready)

    async def _poll(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.options.poll_seconds)
            for problem in await loop.run_in_executor(None, self.repository.poll):
                logger.warning("%s", problem)


def run(options: ServeOptions, on_ready: Callable[[int], None] | None = None) -> None:
    """Run the built-in server in this thread until SIGTERM/SIGINT (uvloop when installed)."""
    run_loop(Server(options).run(on_ready))


class BackgroundService:
    """A service on its own event-loop thread, for tests and for embedding in a Python process."""

    def __init__(self, service: Service, host: str, start_timeout_s: float = 120.0, name: str = "tierml-serve"
                 ) -> None:
        self.loop = asyncio.new_event_loop()
        self.service = service
        started: concurrent.futures.Future[int] = concurrent.futures.Future()
        self.thread = threading.Thread(target=self._main, args=(started,), name=name, daemon=True)
        self.thread.start()
        self.port = started.result(timeout=start_timeout_s)
        self.url = f"http://{host}:{self.port}"

    def _main(self, started: concurrent.futures.Future[int]) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            started.set_result(self.loop.run_until_complete(self.service.start()))
        except BaseException as exc:
            started.set_exception(exc)
            self.loop.close()
            return
        self.loop.run_forever()
        self.loop.close()

    def stop(self, timeout_s: float = 60.0) -> None:
        """Drain and stop (idempotent)."""
        if self.loop.is_closed() or not self.thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self.service.stop(), self.loop).result(timeout_s)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout_s)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class BackgroundServer(BackgroundService):
    """A built-in inference server on its own event-loop thread."""

    def __init__(self, options: ServeOptions, start_timeout_s: float = 120.0) -> None:
        self.server = Server(options)
        super().__init__(self.server, options.host, start_timeout_s)
