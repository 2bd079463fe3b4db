"""The model repository: version policies, explicit and poll control, failed reloads, swaps under load."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from serve_support import call, mlp, write_model

from tierml.serve.client import InferenceClient
from tierml.serve.errors import ServeError
from tierml.serve.server import BackgroundServer, ServeOptions

X = np.ones((1, 64), np.float32)


def versions(client: InferenceClient, name: str = "m") -> list[str]:
    return client.metadata(name)["versions"]


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
        (tmp_path / "m" / "config.pbtxt").write_text("max_batch_size: 4\n")
        path.write_bytes(mlp(seed=5).SerializeToString())
        assert call(server.port, "POST", "/v2/repository/models/m/load")[0] == 200
        assert not np.allclose(client.infer("m", {"x": X})["y"], before)


def test_poll_mode_picks_up_new_versions_and_models(tmp_path) -> None:
    write_model(tmp_path, "m", mlp())
    options = ServeOptions(tmp_path, port=0, control="poll", poll_seconds=0.2)
    with BackgroundServer(options) as server, InferenceClient(server.url) as client:
        assert versions(client) == ["1"]
        write_model(tmp_path, "m", mlp(seed=2), version=2)
        write_model(tmp_path, "n", mlp())
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (versions(client) != ["2"] or not client.model_ready("n")):
            time.sleep(0.1)
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
