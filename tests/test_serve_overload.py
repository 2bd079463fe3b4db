"""Overload at about twice capacity: fast rejections with Retry-After, a bounded p99, flat memory."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest
from conftest import benchmarks_on_path
from serve_support import ServerProcess, rss_mb, slow_model, write_model

benchmarks_on_path()
from openloop import closed_loop, http_request, open_loop, summarize  # noqa: E402

CONFIG = """max_batch_size: 4
dynamic_batching { max_queue_delay_microseconds: 1000 default_queue_policy { max_queue_size: 8 } }
instance_group [ { count: 1 } ]
parameters { key: "intra_op_thread_count" value { string_value: "1" } }
"""


@pytest.mark.slow
def test_twice_capacity_is_shed_fast_with_bounded_latency(tmp_path) -> None:
    write_model(tmp_path, "m", slow_model(1024, 24), CONFIG)
    body = json.dumps({"inputs": [{"name": "x", "shape": [1, 1024], "datatype": "FP32", "data": [0.1] * 1024}]})
    request = http_request("/v2/models/m/infer", body.encode())
    with ServerProcess(tmp_path) as server:
        probe = summarize(asyncio.run(closed_loop("127.0.0.1", server.port, request, 6, 3.0)), 3.0)
        capacity = probe["ok_per_s"]
        assert capacity > 20, probe
        samples: list[float] = []
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.5):
                samples.append(rss_mb(server.process.pid))

        sampler = threading.Thread(target=sample)
        sampler.start()
        duration = 20.0
        start = time.monotonic()
        result = summarize(asyncio.run(open_loop("127.0.0.1", server.port, request, 2 * capacity, duration)),
                           duration)
        done.set()
        sampler.join()
        elapsed = time.monotonic() - start
    print(f"capacity {capacity:.0f} req/s; at 2x for {elapsed:.1f} s: {result}; RSS MB {samples[0]:.1f} -> "
          f"max {max(samples):.1f}, last {samples[-1]:.1f}")
    assert result["failed"] == 0 and result["other_status"] == 0, result
    # The load generator shares the 2 cores: when another job takes one, it can run out of free
    # connections and not send some requests. That is the client's limit, not a server failure.
    assert result["unsent"] <= 0.15 * result["sent"], result
    assert result["rejected"] > 0.25 * result["sent"], result
    assert result["ok_per_s"] > 0.6 * capacity, result
    assert result["rejected_without_retry_after"] == 0
    assert result["rejected_p99_ms"] < 100, result
    # queue of 8 requests = 2 batches of 4 ahead of a newcomer, plus the one running: about 3 batch times
    batch_ms = 4 * 1000 / capacity
    assert result["ok_p99_ms"] < 3 * batch_ms + 250, result
    settled = samples[len(samples) // 4:]
    assert max(settled) - min(settled) < 20, samples
