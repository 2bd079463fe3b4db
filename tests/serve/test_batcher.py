"""The dynamic batcher's Triton semantics, observed through a real server and its statistics."""

from __future__ import annotations

import asyncio
import functools
import json
import threading
import time

import numpy as np
import pytest

from tests.support.openloop import no_gc_pauses
from tests.support.serving import call, mlp, write_model
from tests.support.serving import slow_model as build_slow_model
from tierml.serve.client import InferenceClient
from tierml.serve.errors import ServeError
from tierml.serve.server import BackgroundServer, ServeOptions


@functools.cache
def slow_model(width: int, layers: int):
    return build_slow_model(width, layers)


def serve_mlp(tmp_path, batching: str, max_batch: int = 8, model=None) -> BackgroundServer:
    write_model(tmp_path, "m", model or mlp(), f"max_batch_size: {max_batch}\ndynamic_batching {{ {batching} }}\n"
                "parameters { key: \"intra_op_thread_count\" value { string_value: \"1\" } }\n")
    return BackgroundServer(ServeOptions(tmp_path, port=0))


async def burst(port: int, rows: list[int], parameters: list[dict] | None = None, width: int = 64
                ) -> list[tuple[int, dict]]:
    """Send requests of the given batch sizes at once, each on its own connection; (status, body) in
    the order the answers came."""
    finished: list[tuple[int, dict]] = []

    async def one(i: int, n: int) -> None:
        header = {"inputs": [{"name": "x", "shape": [n, width], "datatype": "FP32", "data": [0.1] * (n * width)}]}
        if parameters:
            header["parameters"] = parameters[i]
        body = json.dumps(header).encode()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /v2/models/m/infer HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: %d\r\n\r\n"
                     % len(body) + body)
        data = await reader.read()
        writer.close()
        head, _, payload = data.partition(b"\r\n\r\n")
        finished.append((int(head.split()[1]), {**json.loads(payload), "index": i}))

    await asyncio.gather(*(one(i, n) for i, n in enumerate(rows)))
    return finished


def batch_sizes(port: int) -> dict[int, int]:
    stats = json.loads(call(port, "GET", "/v2/models/m/stats")[2])["model_stats"][0]
    return {b["batch_size"]: b["compute_infer"]["count"] for b in stats["batch_stats"]}


def test_delay_gathers_a_full_batch_counted_in_rows(tmp_path) -> None:
    with serve_mlp(tmp_path, "max_queue_delay_microseconds: 2000000") as server:
        results = asyncio.run(burst(server.port, [2, 2, 4]))
        assert [status for status, _ in results] == [200, 200, 200]
        assert batch_sizes(server.port) == {8: 1}  # three requests, one execution of 8 rows
        shapes = {r["index"]: r["outputs"][0]["shape"] for _, r in results}
        assert shapes == {0: [2, 10], 1: [2, 10], 2: [4, 10]}


def test_preferred_size_fires_without_waiting(tmp_path) -> None:
    with serve_mlp(tmp_path, "preferred_batch_size: [ 3 ] max_queue_delay_microseconds: 5000000") as server:
        start = time.monotonic()
        asyncio.run(burst(server.port, [1, 1, 1]))
        assert time.monotonic() - start < 3.0
        assert batch_sizes(server.port) == {3: 1}


def test_queue_delay_expires_with_a_partial_batch(tmp_path) -> None:
    with serve_mlp(tmp_path, "max_queue_delay_microseconds: 200000") as server:
        start = time.monotonic()
        asyncio.run(burst(server.port, [1, 2]))
        elapsed = time.monotonic() - start
        assert 0.15 < elapsed < 3.0
        assert batch_sizes(server.port) == {3: 1}


def test_full_queue_rejects_fast_with_retry_after(tmp_path) -> None:
    batching = "default_queue_policy { max_queue_size: 2 }"
    with serve_mlp(tmp_path, batching, max_batch=1, model=slow_model(1024, 24)) as server:
        results = asyncio.run(burst(server.port, [1] * 48, width=1024))
        statuses = sorted(s for s, _ in results)
        assert statuses.count(200) >= 3 and statuses.count(503) >= 3, statuses
        rejected = [r for s, r in results if s == 503]
        assert all("overloaded" in r["error"] for r in rejected)
        with InferenceClient(server.url) as client:
            metrics = call(server.port, "GET", "/metrics")[2].decode()
            assert 'tierml_inference_rejected_total{model="m",version="1"}' in metrics
            assert client.ready()


def test_reject_status_429(tmp_path) -> None:
    write_model(tmp_path, "m", slow_model(1024, 24), "max_batch_size: 1\ndynamic_batching { default_queue_policy "
                "{ max_queue_size: 1 } }\n")
    with BackgroundServer(ServeOptions(tmp_path, port=0, reject_status=429)) as server:
        results = asyncio.run(burst(server.port, [1] * 8, width=1024))
        assert 429 in [s for s, _ in results]


def test_request_timeout_parameter(tmp_path) -> None:
    with serve_mlp(tmp_path, "default_queue_policy { allow_timeout_override: true }",
                   max_batch=1, model=slow_model(1024, 24)) as server:
        params = [{}] * 6 + [{"timeout": 1}] * 6
        results = asyncio.run(burst(server.port, [1] * 12, params, width=1024))
        timed_out = [r["error"] for s, r in results if s == 503]
        assert timed_out and all("timed out" in e for e in timed_out)


def test_priority_levels(tmp_path) -> None:
    batching = "priority_levels: 2 default_priority_level: 2"
    with serve_mlp(tmp_path, batching, max_batch=1, model=slow_model(1024, 24)) as server:
        params = [{"priority": 2}] * 12 + [{"priority": 1}]
        results = asyncio.run(burst(server.port, [1] * 13, params, width=1024))
        assert all(s == 200 for s, _ in results)
        order = [r["index"] for _, r in results]
        assert order.index(12) < 6, order  # the urgent request overtakes most of the queue
        with pytest.raises(ServeError, match="priority 3 is out of range"), InferenceClient(server.url) as client:
            client.infer("m", {"x": np.zeros((1, 1024), np.float32)}, parameters={"priority": 3})


def test_bad_request_in_a_batch_does_not_fail_its_neighbours(tmp_path) -> None:
    """A model that fails on some inputs (Reshape to a fixed size) only fails that request."""
    from onnx import TensorProto, helper, numpy_helper

    shape = numpy_helper.from_array(np.array([-1, 4], np.int64), "shape")
    graph = helper.make_graph([helper.make_node("Reshape", ["x", "shape"], ["y"])], "r",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "n"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])], [shape])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    write_model(tmp_path, "m", model)
    with BackgroundServer(ServeOptions(tmp_path, port=0)) as server, InferenceClient(server.url) as client:
        np.testing.assert_array_equal(client.infer("m", {"x": np.ones((1, 4), np.float32)})["y"], np.ones((1, 4)))
        with pytest.raises(ServeError, match="could not run these inputs") as caught:
            client.infer("m", {"x": np.ones((1, 3), np.float32)})
        assert caught.value.status == 400


def test_inference_runs_off_the_event_loop(tmp_path) -> None:
    """While the instance runs long executions back to back, health probes are answered at once. The server
    shares this test's process, whose collector would pause both: it is kept out (no_gc_pauses)."""
    write_model(tmp_path, "m", slow_model(1024, 24), "max_batch_size: 256\ndynamic_batching { }\n"
                "parameters { key: \"intra_op_thread_count\" value { string_value: \"1\" } }\n")
    x = np.full((256, 1024), 0.1, np.float32)
    with no_gc_pauses(), BackgroundServer(ServeOptions(tmp_path, port=0)) as server:
        with InferenceClient(server.url) as client:
            start = time.perf_counter()
            client.infer("m", {"x": x})
            execution_s = time.perf_counter() - start
        busy = threading.Event()
        busy.set()

        def load() -> None:
            with InferenceClient(server.url) as client:
                for _ in range(max(3, int(1.5 / execution_s))):
                    client.infer("m", {"x": x})
            busy.clear()

        loaders = [threading.Thread(target=load) for _ in range(2)]
        for t in loaders:
            t.start()
        probes = []
        while busy.is_set():
            start = time.perf_counter()
            assert call(server.port, "GET", "/v2/health/live")[0] == 200
            probes.append(time.perf_counter() - start)
            time.sleep(0.005)
        for t in loaders:
            t.join(60)
    probes.sort()
    print(f"execution {execution_s * 1000:.0f} ms; {len(probes)} probes, median {probes[len(probes) // 2] * 1000:.1f} "
          f"ms, max {probes[-1] * 1000:.1f} ms")
    assert len(probes) >= 20 and execution_s > 0.05
    assert probes[len(probes) // 2] < execution_s / 10 and probes[-1] < execution_s / 2, (execution_s, probes[-5:])
