"""An asyncio open-loop HTTP load generator: requests leave on a fixed schedule whether or not earlier
ones have been answered, so latency is measured from the scheduled send time (no coordinated omission).

    results = asyncio.run(open_loop("127.0.0.1", 8000, request_bytes, rate=500, duration_s=10))
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


@dataclass
class Outcome:
    scheduled: float  # seconds since the run started
    latency_s: float  # from the scheduled send to the last byte of the response
    status: int  # 0: connection failed or timed out; -1: not sent (every client connection was busy)
    retry_after: str | None = None


def http_request(path: str, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    """A keep-alive HTTP/1.1 POST as bytes on the wire."""
    lines = [f"POST {path} HTTP/1.1", "host: 127.0.0.1", f"content-length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    await reader.readexactly(int(headers.get("content-length", "0")))
    return int(lines[0].split()[1]), headers


@contextlib.contextmanager
def no_gc_pauses() -> Iterator[None]:
    """Keep the cyclic garbage collector out of a measurement. In a process with a large heap (a pytest run
    that has imported torch, say) one full collection takes 0.1-2 s, during which no request is sent or read:
    the load generator's own pause would be charged to the server. wrk has no collector; neither do we, while
    measuring."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


async def open_loop(host: str, port: int, request: bytes, rate: float, duration_s: float,
                    max_connections: int = 512, timeout_s: float = 30.0) -> list[Outcome]:
    """Send `request` at `rate` per second for `duration_s`, each on an idle keep-alive connection (a new
    one when none is idle, up to `max_connections`)."""
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    opened = [0]
    outcomes: list[Outcome] = []

    async def one(at: float) -> None:
        conn = idle.pop() if idle else None
        try:
            if conn is None:
                if opened[0] >= max_connections:
                    outcomes.append(Outcome(at, time.perf_counter() - start - at, -1))
                    return
                opened[0] += 1
                conn = await asyncio.open_connection(host, port)
            reader, writer = conn
            writer.write(request)
            status, headers = await asyncio.wait_for(_read_response(reader), timeout_s)
            outcomes.append(Outcome(at, time.perf_counter() - start - at, status, headers.get("retry-after")))
            if headers.get("connection") == "close":
                writer.close()
                opened[0] -= 1
            else:
                idle.append(conn)
        except (TimeoutError, OSError, asyncio.IncompleteReadError):
            outcomes.append(Outcome(at, time.perf_counter() - start - at, 0))
            if conn is not None:
                conn[1].close()
                opened[0] -= 1

    # only unfinished requests are held: gathering every task at the end would stall the loop for O(all sent)
    in_flight: set[asyncio.Future] = set()
    with no_gc_pauses():
        start = time.perf_counter()  # after the collection no_gc_pauses makes, so it is not timed
        for i in range(int(rate * duration_s)):
            at = i / rate
            delay = start + at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.ensure_future(one(at))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        await asyncio.gather(*in_flight)
    for _, writer in idle:
        writer.close()
    return outcomes


def summarize(outcomes: list[Outcome], duration_s: float) -> dict:
    """Rates and latency percentiles (ms) of answered, rejected (429/503) and failed requests."""
    def pct(values: list[float], q: float) -> float | None:
        return float(np.percentile(values, q) * 1e3) if values else None

    ok = [o.latency_s for o in outcomes if o.status == 200]
    rejected = [o for o in outcomes if o.status in (429, 503)]
    return {
        "sent": len(outcomes), "ok": len(ok), "rejected": len(rejected),
        "other_status": sum(1 for o in outcomes if o.status not in (-1, 0, 200, 429, 503)),
        "failed": sum(1 for o in outcomes if o.status == 0),
        "unsent": sum(1 for o in outcomes if o.status == -1),
        "ok_per_s": len(ok) / duration_s,
        "ok_p50_ms": pct(ok, 50), "ok_p99_ms": pct(ok, 99),
        "rejected_p50_ms": pct([o.latency_s for o in rejected], 50),
        "rejected_p99_ms": pct([o.latency_s for o in rejected], 99),
        "rejected_without_retry_after": sum(1 for o in rejected if not o.retry_after),
    }


async def closed_loop(host: str, port: int, request: bytes, connections: int, duration_s: float) -> list[Outcome]:
    """`connections` clients each sending the next request as soon as the last is answered."""
    outcomes: list[Outcome] = []

    async def client() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        while (sent := time.perf_counter() - start) < duration_s:
            writer.write(request)
            status, headers = await _read_response(reader)
            outcomes.append(Outcome(sent, time.perf_counter() - start - sent, status, headers.get("retry-after")))
        writer.close()

    with no_gc_pauses():
        start = time.perf_counter()  # after the collection no_gc_pauses makes, so it is not timed
        await asyncio.gather(*(client() for _ in range(connections)))
    return outcomes
