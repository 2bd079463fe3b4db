"""Desired-state polls against one registry server: how many a second it answers, how fast, and how many are 304s.

One `tierml registry serve` process (uvloop) holds a release pair and a group; N simulated devices (each its own
keep-alive connection, many per client process, asyncio) poll GET /v1/devices/<id>/desired with If-None-Match.
Two phases:
- saturation: every device polls again as soon as it has its answer (closed loop: the server's capacity); halfway
  through, an operator moves the group to the other release, so each device gets one 200 with the new document;
- paced: every device polls once per --interval-s at a random phase (an agent's cadence, far shorter than a real
  one's); latency from the scheduled send, so a slow answer is not hidden by the next send waiting for it.

    flock /work/bench.lock python benchmarks/registry_polls.py                  # 200 devices, about 30 s
    flock /work/bench.lock python benchmarks/registry_polls.py --devices 1000 --client-procs 2
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from common import print_table, write_results

from tests.support.cli import TIERML
from tests.support.registry import TOKENS, bearer, publish, registry_files, signed_release
from tests.support.serving import call, free_port

GROUP = "fleet"
DEVICE_CLASS = "raspberry-pi-5"


def _request(device: str, etag: str | None) -> bytes:
    lines = [f"GET /v1/devices/{device}/desired?group={GROUP}&class={DEVICE_CLASS} HTTP/1.1", "host: 127.0.0.1",
             f"authorization: Bearer {TOKENS['device']}"]
    if etag:
        lines.append(f"if-none-match: {etag}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _answer(reader: asyncio.StreamReader) -> tuple[int, str | None]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:] if line)}
    await reader.readexactly(int(headers.get("content-length", "0")))
    return int(head[0].split()[1]), headers.get("etag")


async def _devices(port: int, names: list[str], seconds: float, interval_s: float | None
                   ) -> list[tuple[int, float, float]]:
    """Each device polls for `seconds`: back to back (interval None) or once per interval. (status, start s,
    latency s) per poll, after one unmeasured first poll that gives each device its ETag."""
    outcomes: list[tuple[int, float, float]] = []

    async def device(name: str, begin: float) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(_request(name, None))
        _, etag = await _answer(reader)
        await asyncio.sleep(max(0.0, begin - time.perf_counter()))
        phase = random.uniform(0, interval_s) if interval_s else 0.0
        tick = 0
        while True:
            due = begin + phase + tick * (interval_s or 0.0)
            if interval_s:
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
            sent = time.perf_counter()
            if sent - begin >= seconds:
                break
            writer.write(_request(name, etag))
            status, tag = await _answer(reader)
            done = time.perf_counter()
            etag = tag or etag
            outcomes.append((status, sent - begin, done - (due if interval_s else sent)))
            tick += 1
        writer.close()

    begin = time.perf_counter() + 1.0 + len(names) / 500  # every device connected and primed before the clock starts
    await asyncio.gather(*(device(n, begin) for n in names))
    return outcomes


def _client(port: int, names: list[str], seconds: float, interval_s: float | None,
            results: multiprocessing.Queue) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    results.put(asyncio.run(_devices(port, names, seconds, interval_s)))


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_phase(port: int, server_pid: int, devices: int, procs: int, seconds: float, interval_s: float | None,
              change_at_s: float | None) -> dict:
    cpu_before, wall_before = cpu_seconds(server_pid), time.perf_counter()
    names = [f"dev-{i:05d}" for i in range(devices)]
    queue: multiprocessing.Queue = multiprocessing.Queue()
    workers = [multiprocessing.Process(target=_client, args=(port, names[i::procs], seconds, interval_s, queue))
               for i in range(procs)]
    for worker in workers:
        worker.start()
    if change_at_s is not None:
        time.sleep(1.0 + devices / 500 + change_at_s)
        status = call(port, "PUT", f"/v1/groups/{GROUP}/desired", {"model": "digits", "version": 2},
                      bearer("operator"))[0]
        assert status == 200  # the group was on v1: every device's next poll is a 200 with v2
    outcomes = [o for _ in workers for o in queue.get(timeout=seconds + 120)]
    for worker in workers:
        worker.join(30)
    server_cpu, wall = cpu_seconds(server_pid) - cpu_before, time.perf_counter() - wall_before
    statuses = np.array([o[0] for o in outcomes])
    latencies = np.array([o[2] for o in outcomes]) * 1e3
    return {"devices": devices, "client_procs": procs, "seconds": seconds, "interval_s": interval_s,
            "requests": len(outcomes), "requests_per_s": len(outcomes) / seconds,
            "p50_ms": float(np.percentile(latencies, 50)), "p99_ms": float(np.percentile(latencies, 99)),
            "max_ms": float(latencies.max()), "share_304": float((statuses == 304).mean()),
            "statuses": {str(s): int((statuses == s).sum()) for s in sorted(set(statuses.tolist()))},
            # the server's own CPU over the whole phase (priming polls included): its share of one core, and per poll
            "server_cpu_share_of_one_core": server_cpu / wall,
            "server_cpu_us_per_request": server_cpu / (len(outcomes) + devices) * 1e6}


def start_server(folder: Path) -> tuple[subprocess.Popen, int]:
    files = registry_files(folder)
    port = free_port()
    process = subprocess.Popen([*TIERML, "registry", "serve", str(files.root), "--key", str(files.key), "--trust",
                                files.publisher_public, "--tokens", str(files.tokens), "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=(folder / "server.log").open("w"))
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None and time.monotonic() < deadline, (folder / "server.log").read_text()
        try:
            if call(port, "GET", "/v1/health")[0] == 200:
                break
        except OSError:
            time.sleep(0.1)
    for version in (1, 2):
        publish(port, signed_release(port, files.publisher_key, version, devices=(DEVICE_CLASS,)))
    assert call(port, "PUT", f"/v1/groups/{GROUP}/desired", {"model": "digits", "version": 1},
                bearer("operator"))[0] == 200
    return process, port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--client-procs", type=int, default=1, help="client processes the devices are spread over")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    parser.add_argument("--interval-s", type=float, default=1.0, help="paced phase: each device's poll interval")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="tierml-registry-polls-") as scratch:
        process, port = start_server(Path(scratch))
        try:
            saturation = run_phase(port, process.pid, args.devices, args.client_procs, args.seconds, None,
                                   args.seconds / 2)
            paced = run_phase(port, process.pid, args.devices, args.client_procs, args.seconds, args.interval_s, None)
        finally:
            process.send_signal(signal.SIGTERM)
            drained = process.wait(60)
    rows = [[name, r["devices"], r["requests"], r["requests_per_s"], r["p50_ms"], r["p99_ms"], r["max_ms"],
             f"{r['share_304'] * 100:.2f} %", " ".join(f"{k}:{v}" for k, v in r["statuses"].items()),
             f"{r['server_cpu_share_of_one_core'] * 100:.0f} %", r["server_cpu_us_per_request"]]
            for name, r in (("saturation (back to back)", saturation),
                            (f"paced (1 poll / {args.interval_s:g} s each)", paced))]
    print_table(f"desired-state polls, one registry server, {args.devices} devices in {args.client_procs} client "
                "process(es)",
                ["phase", "devices", "requests", "req/s", "p50 ms", "p99 ms", "max ms", "304s", "statuses",
                 "server CPU", "server µs/req"], rows)
    path = write_results("registry_polls", {"saturation": saturation, "paced": paced,
                                            "server_exit_code_on_sigterm": drained})
    print(f"results: {path}")


if __name__ == "__main__":
    main()
