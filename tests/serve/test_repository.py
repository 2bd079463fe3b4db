"""The model repository: version policies, explicit and poll control, failed reloads, swaps under load."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

import numpy as np
import pytest

from tests.support.serving import ServerProcess, call, mlp, slow_model, write_model
from tierml.serve.client import InferenceClient, decode_response, encode_request
from tierml.serve.errors import ServeError
from tierml.serve.server import BackgroundServer, ServeOptions

X = np.ones((1, 64), np.float32)


def versions(client: InferenceClient, name: str = "m") -> list[str]:
    return client.metadata(name)["versions"]


def wait_for(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    """Poll `condition` every 0.1 s until it holds or `timeout_s` passes (the caller asserts afterwards)."""
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.1)


def index_entry(port: int, name: str) -> dict:
    """The model's first entry in the repository index."""
    return next(e for e in json.loads(call(port, "POST", "/v2/repository/index")[2]) if e["name"] == name)


def test_version_policies(tmp_path) -> None:
    for v in (1, 2, 3):
        write_model(tmp_path, "m", mlp(seed=v), version=v)
    (tmp_path / "m" / "config.pbtxt").write_text("version_policy: { specific: { versions: [1, 3] } }")
    with BackgroundServer(ServeOptions(tmp_path, port=0)) as server, InferenceClient(server.url) as client:
        assert versions(client) == ["1", "3"]
        one = client.infer("m", {"x": X}, version=1)["y"]
        latest = client.infer("m", {"x": X})["y"]
        np.testing.assert_array_equal(latest, client.infer("m", {"x": X}, version=3)["y"])
        assert not np.allclose(one, latest)
        with pytest.raises(ServeError, match="no version 2"):
            client.infer("m", {"x": X}, version=2)


def test_explicit_mode_loads_only_what_it_is_told(tmp_path) -> None:
    write_model(tmp_path, "a", mlp())
    write_model(tmp_path, "b", mlp())
    options = ServeOptions(tmp_path, port=0, control="explicit", load_models=["a"])
    with BackgroundServer(options) as server, InferenceClient(server.url) as client:
        assert client.model_ready("a") and not client.model_ready("b")
        assert call(server.port, "POST", "/v2/repository/models/b/load")[0] == 200
        assert client.model_ready("b")


def test_failed_reload_keeps_the_last_good_version(tmp_path) -> None:
    path = write_model(tmp_path, "m", mlp())
    options = ServeOptions(tmp_path, port=0, control="explicit", load_models=["*"])
    with BackgroundServer(options) as server, InferenceClient(server.url) as client:
        before = client.infer("m", {"x": X})["y"]
        path.write_bytes(b"not an onnx model")
        status, _, body = call(server.port, "POST", "/v2/repository/models/m/load")
        assert status == 400 and b"previous version keeps serving" in body
        np.testing.assert_array_equal(client.infer("m", {"x": X})["y"], before)
        assert client.model_ready("m") and client.ready()
        entry = index_entry(server.port, "m")
        assert entry["state"] == "READY" and entry["version"] == "1" and "model.onnx" in entry["reason"], entry
        (tmp_path / "m" / "config.pbtxt").write_text("max_batch_size: 4\n")
        path.write_bytes(mlp(seed=5).SerializeToString())
        assert call(server.port, "POST", "/v2/repository/models/m/load")[0] == 200
        assert not np.allclose(client.infer("m", {"x": X})["y"], before)
        assert "reason" not in index_entry(server.port, "m")


def test_poll_mode_keeps_the_last_good_version_when_a_new_one_is_broken(tmp_path) -> None:
    write_model(tmp_path, "m", mlp())
    options = ServeOptions(tmp_path, port=0, control="poll", poll_seconds=0.2)
    with BackgroundServer(options) as server, InferenceClient(server.url) as client:
        before = client.infer("m", {"x": X})["y"]
        (tmp_path / "m" / "2").mkdir()
        (tmp_path / "m" / "2" / "model.onnx").write_bytes(b"half-copied junk")
        wait_for(lambda: "reason" in index_entry(server.port, "m"))
        entry = index_entry(server.port, "m")
        assert entry["state"] == "READY" and entry["version"] == "1" and "reason" in entry, entry
        np.testing.assert_array_equal(client.infer("m", {"x": X})["y"], before)
        assert versions(client) == ["1"] and client.ready()
        write_model(tmp_path, "m", mlp(seed=2), version=2)
        wait_for(lambda: versions(client) == ["2"])
        assert versions(client) == ["2"] and "reason" not in index_entry(server.port, "m")
        assert not np.allclose(client.infer("m", {"x": X})["y"], before)


def test_poll_mode_picks_up_new_versions_and_models(tmp_path) -> None:
    write_model(tmp_path, "m", mlp())
    options = ServeOptions(tmp_path, port=0, control="poll", poll_seconds=0.2)
    with BackgroundServer(options) as server, InferenceClient(server.url) as client:
        assert versions(client) == ["1"]
        write_model(tmp_path, "m", mlp(seed=2), version=2)
        write_model(tmp_path, "n", mlp())
        wait_for(lambda: versions(client) == ["2"] and client.model_ready("n"))
        assert versions(client) == ["2"] and client.model_ready("n")


def test_swapping_versions_drops_no_in_flight_request(tmp_path) -> None:
    write_model(tmp_path, "m", mlp())
    options = ServeOptions(tmp_path, port=0, control="explicit", load_models=["*"])
    with BackgroundServer(options) as server:
        failures: list[str] = []
        answered = [0]
        stop = threading.Event()

        def hammer() -> None:
            with InferenceClient(server.url) as client:
                while not stop.is_set():
                    try:
                        client.infer("m", {"x": X})
                        answered[0] += 1
                    except Exception as exc:
                        failures.append(repr(exc))

        threads = [threading.Thread(target=hammer) for _ in range(4)]
        for t in threads:
            t.start()
        for version in (2, 3, 4):
            write_model(tmp_path, "m", mlp(seed=version), version=version)
            assert call(server.port, "POST", "/v2/repository/models/m/load")[0] == 200
            time.sleep(0.2)
        stop.set()
        for t in threads:
            t.join(30)
        assert failures == [] and answered[0] > 50
        with InferenceClient(server.url) as client:
            assert versions(client) == ["4"]


def test_requests_queued_at_a_swap_are_answered_by_the_old_version(tmp_path) -> None:
    """Requests waiting on version 1 when version 2 replaces it are answered by version 1, after the swap;
    requests sent after it go to version 2."""
    config = ('max_batch_size: 64\ndynamic_batching { }\n'
              'parameters { key: "intra_op_thread_count" value { string_value: "1" } }\n')
    write_model(tmp_path, "m", slow_model(1024, 24), config)
    body, length = encode_request({"x": np.full((64, 1024), 0.1, np.float32)})  # one request = one execution
    headers = {"inference-header-content-length": str(length)}
    answers: list[tuple[int, str, float, float]] = []  # (status, model_version, sent at, answered at)
    stop = threading.Event()

    def keep_sending() -> None:
        while not stop.is_set():
            sent = time.monotonic()
            status, reply_headers, payload = call(server.port, "POST", "/v2/models/m/infer", body, headers)
            json_length = reply_headers.get("inference-header-content-length")  # absent on an error
            version = decode_response(payload, int(json_length))[0]["model_version"] if json_length else ""
            answers.append((status, version, sent, time.monotonic()))

    with ServerProcess(tmp_path, "--model-control-mode", "explicit", "--load-model", "*") as server:
        senders = [threading.Thread(target=keep_sending) for _ in range(4)]  # v1's queue is never empty
        for t in senders:
            t.start()
        time.sleep(0.5)
        write_model(tmp_path, "m", slow_model(1024, 24), version=2)
        assert call(server.port, "POST", "/v2/repository/models/m/load")[0] == 200
        swapped = time.monotonic()
        time.sleep(0.5)
        stop.set()
        for t in senders:
            t.join(60)
    assert answers and all(a[0] == 200 for a in answers), [a for a in answers if a[0] != 200][:3]
    assert all(a[1] == "2" for a in answers if a[2] > swapped), "a request sent after the swap reached version 1"
    late = [a for a in answers if a[1] == "1" and a[3] > swapped]
    assert late, f"no version 1 answer came after the swap: {[(a[1], round(a[3] - swapped, 2)) for a in answers]}"
    assert any(a[1] == "2" for a in answers)
