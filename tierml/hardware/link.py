"""Link emulation on loopback: an asyncio TCP proxy with one-way delay, jitter and a token-bucket rate per direction.

The kernel's netem qdisc is missing on these machines, so every test and benchmark that needs a
slow link goes through this proxy instead. Each direction is a token bucket (rate, burst) feeding a
fixed propagation delay (plus uniform jitter that never reorders the byte stream), like a router
queue in front of a long wire. Settings change at run time (`set`) to replay bandwidth traces.

    with BackgroundLinkProxy(("127.0.0.1", 8000), Direction(5.85, 20), Direction(20, 20)) as proxy:
        client = InferenceClient(f"http://127.0.0.1:{proxy.port}")

The proxy terminates TCP: endpoints see the proxy's socket, not the emulated RTT's effect on slow
start, so short transfers are a little faster than over a real path (checked against kernel tbf in
tests/hardware/test_link.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from dataclasses import dataclass, replace
from types import TracebackType

from tierml.hardware.catalog import Link

_CHUNK = 16384


@dataclass(frozen=True)
class Direction:
    """One direction of a link: rate in Mbit/s (None = unlimited), one-way delay and jitter in ms."""

    rate_mbps: float | None = None
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    burst_bytes: int = 4096  # token bucket depth (tbf's burst)


def directions(link: Link) -> tuple[Direction, Direction]:
    """Up and down directions for a catalogue link: its bandwidths, half its median RTT each way."""
    half = link.rtt_ms.p50 / 2
    jitter = max(0.0, (link.rtt_ms.p95 - link.rtt_ms.p50) / 4)
    return (Direction(link.up_mbps.value, half, jitter), Direction(link.down_mbps.value, half, jitter))


class _Pacer:
    """When each chunk of one direction leaves the bucket and when it arrives at the far end."""

    def __init__(self, shape: Direction, seed: int) -> None:
        self.shape = shape
        self._free_at = 0.0
        self._last_arrival = 0.0
        self._random = random.Random(seed)

    def arrival(self, size: int, now: float) -> float:
        shape = self.shape
        depart = now
        if shape.rate_mbps:
            rate = shape.rate_mbps * 1e6 / 8  # bytes per second
            self._free_at = max(self._free_at, now - shape.burst_bytes / rate) + size / rate
            depart = max(now, self._free_at)
        jitter = self._random.uniform(-shape.jitter_ms, shape.jitter_ms) if shape.jitter_ms else 0.0
        arrive = depart + max(0.0, shape.delay_ms + jitter) / 1e3
        self._last_arrival = max(arrive, self._last_arrival)  # a byte stream is never reordered
        return self._last_arrival


class LinkProxy:
    """Listens on 127.0.0.1 and relays every connection to `target` through the two shaped directions."""

    def __init__(self, target: tuple[str, int], up: Direction, down: Direction, port: int = 0, seed: int = 0) -> None:
        self.target = target
        self.up, self.down = up, down
        self.port = port
        self._server: asyncio.Server | None = None
        # one pair for all connections: they share the link, as they would a radio
        self._pacers = (_Pacer(up, seed), _Pacer(down, seed + 1))
        self._tasks: set[asyncio.Task[None]] = set()
        self.bytes_up = 0
        self.bytes_down = 0

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def set(self, up: Direction | None = None, down: Direction | None = None) -> None:
        """New settings for both directions of every open and future connection."""
        self.up, self.down = up or self.up, down or self.down
        self._pacers[0].shape, self._pacers[1].shape = self.up, self.down

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            far_reader, far_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        pumps = [asyncio.ensure_future(self._pump(reader, far_writer, self._pacers[0], True)),
                 asyncio.ensure_future(self._pump(far_reader, writer, self._pacers[1], False))]
        self._tasks.update(pumps)
        try:
            await asyncio.gather(*pumps, return_exceptions=True)
        finally:
            self._tasks.difference_update(pumps)
            for w in (writer, far_writer):
                w.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, pacer: _Pacer, up: bool
                    ) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        sender = asyncio.ensure_future(self._deliver(queue, writer))
        try:
            while data := await reader.read(_CHUNK):
                queue.put_nowait((pacer.arrival(len(data), time.monotonic()), data))
                if up:
                    self.bytes_up += len(data)
                else:
                    self.bytes_down += len(data)
            queue.put_nowait((0.0, b""))
            await sender
        finally:
            sender.cancel()
            with contextlib.suppress(OSError, RuntimeError):
                writer.close()

    @staticmethod
    async def _deliver(queue: asyncio.Queue[tuple[float, bytes]], writer: asyncio.StreamWriter) -> None:
        while True:
            due, data = await queue.get()
            if not data:
                with contextlib.suppress(OSError, RuntimeError):
                    writer.write_eof()
                return
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()


class BackgroundLinkProxy:
    """A `LinkProxy` on its own event-loop thread, for blocking callers (tests, benchmarks, the split runtime)."""

    def __init__(self, target: tuple[str, int], up: Direction, down: Direction, port: int = 0, seed: int = 0) -> None:
        self.proxy = LinkProxy(target, up, down, port, seed)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tierml-link", daemon=True)

    @property
    def port(self) -> int:
        return self.proxy.port

    def __enter__(self) -> BackgroundLinkProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.proxy.start(), self._loop).result(timeout=10)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self.proxy.stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def set(self, up: Direction | None = None, down: Direction | None = None) -> None:
        self._loop.call_soon_threadsafe(self.proxy.set, up, down)

    def set_rate(self, up_mbps: float | None = None, down_mbps: float | None = None) -> None:
        """Change only the rates (bandwidth-trace replay)."""
        up = replace(self.proxy.up, rate_mbps=up_mbps) if up_mbps is not None else None
        down = replace(self.proxy.down, rate_mbps=down_mbps) if down_mbps is not None else None
        self.set(up, down)
