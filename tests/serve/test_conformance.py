"""The server against the real Triton client (tritonclient.http, sync and aio): the protocol as users see it."""

from __future__ import annotations

import asyncio
import gzip

import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.http as triton
import tritonclient.http.aio as triton_aio
from tritonclient.utils import InferenceServerException

from tests.support.serving import DATATYPES, call, make_repo, mlp
from tierml.serve.server import BackgroundServer, ServeOptions


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    repo = make_repo(tmp_path_factory.mktemp("repo"))
    with BackgroundServer(ServeOptions(repo, port=0, control="explicit", load_models=["*"])) as running:
        yield running


@pytest.fixture
def client(server: BackgroundServer):
    with triton.InferenceServerClient(f"127.0.0.1:{server.port}") as c:
        yield c


def reference(x: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(mlp().SerializeToString()).run(None, {"x": x})[0]


def test_health_and_server_metadata(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live() and client.is_server_ready()
    meta = client.get_server_metadata()
    assert meta["name"] == "tierml"
    assert set(meta["extensions"]) == {"binary_tensor_data", "model_repository", "model_configuration", "statistics",
                                       "schedule_policy", "parameters"}


def test_model_metadata_and_config(client: triton.InferenceServerClient) -> None:
    assert client.is_model_ready("mlp") and client.is_model_ready("mlp", "1")
    assert not client.is_model_ready("nope")
    meta = client.get_model_metadata("mlp")
    assert meta == {"name": "mlp", "versions": ["1"], "platform": "onnxruntime_onnx",
                    "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 64]}],
                    "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, 10]}]}
    assert client.get_model_metadata("mlp", "1") == meta
    config = client.get_model_config("mlp")
    assert config["max_batch_size"] == 8
    assert config["input"] == [{"name": "x", "data_type": "TYPE_FP32", "dims": [64]}]
    assert config["dynamic_batching"]["max_queue_delay_microseconds"] == 500
    assert config["instance_group"][0]["count"] == 1
    digits = client.get_model_config("digits")  # no config file: completed from the ONNX graph
    assert digits["input"][0]["dims"] == [1, 8, 8] and digits["max_batch_size"] > 0


@pytest.mark.parametrize("binary_in", [False, True])
@pytest.mark.parametrize("named", [None, False, True])
def test_infer_json_and_binary(client: triton.InferenceServerClient, binary_in: bool, named: bool | None) -> None:
    x = np.random.default_rng(0).standard_normal((3, 64)).astype(np.float32)
    tensor = triton.InferInput("x", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x, binary_data=binary_in)
    outputs = None if named is None else [triton.InferRequestedOutput("y", binary_data=named)]
    result = client.infer("mlp", [tensor], outputs=outputs, request_id="abc")
    np.testing.assert_allclose(result.as_numpy("y"), reference(x), rtol=1e-5, atol=1e-5)
    response = result.get_response()
    assert response["id"] == "abc" and response["model_name"] == "mlp" and response["model_version"] == "1"


def test_every_datatype_round_trips(client: triton.InferenceServerClient) -> None:
    rng = np.random.default_rng(1)
    values = {}
    for name in DATATYPES:
        if name == "BYTES":
            values[name] = np.array([[b"a", b"", "\u00e9".encode()], [b"x" * 70, b"\x00\x01", b"z"]], dtype=object)
        elif name == "BOOL":
            values[name] = rng.random((2, 3)) > 0.5
        else:
            values[name] = (rng.random((2, 3)) * 100).astype(triton.triton_to_np_dtype(name))
    for binary in (False, True):
        tensors = []
        for name, value in values.items():
            tensor = triton.InferInput(f"in_{name}", [2, 3], name)
            tensor.set_data_from_numpy(value, binary_data=binary or name == "FP16")
            tensors.append(tensor)
        outputs = [triton.InferRequestedOutput(f"out_{n}", binary_data=binary or n == "FP16") for n in values]
        result = client.infer("identity", tensors, outputs=outputs)
        for name, value in values.items():
            got = result.as_numpy(f"out_{name}")
            assert got.shape == value.shape, name
            if name == "BYTES" and not binary:
                value = np.vectorize(lambda b: b.decode())(value).astype(object)
                got = np.vectorize(lambda b: b.decode() if isinstance(b, bytes) else b)(got)
            assert (got == value).all(), name


def test_statistics(client: triton.InferenceServerClient) -> None:
    x = np.ones((2, 64), np.float32)
    tensor = triton.InferInput("x", [2, 64], "FP32")
    tensor.set_data_from_numpy(x)
    client.infer("mlp", [tensor])
    stats = client.get_inference_statistics("mlp")["model_stats"][0]
    assert stats["name"] == "mlp" and stats["inference_count"] >= 2 and stats["execution_count"] >= 1
    assert stats["inference_stats"]["success"]["count"] >= 1
    assert stats["inference_stats"]["queue"]["count"] >= 1 and stats["inference_stats"]["queue"]["ns"] > 0
    assert any(b["batch_size"] >= 2 for b in stats["batch_stats"])
    everything = client.get_inference_statistics()["model_stats"]
    assert {s["name"] for s in everything} == {"mlp", "digits", "identity"}


def test_load_unload_and_index(client: triton.InferenceServerClient) -> None:
    index = {(m["name"], m.get("state")) for m in client.get_model_repository_index()}
    assert ("digits", "READY") in index
    client.unload_model("digits")
    assert not client.is_model_ready("digits")
    assert ("digits", "UNLOADED") in {(m["name"], m.get("state")) for m in client.get_model_repository_index()}
    with pytest.raises(InferenceServerException, match="unknown model 'digits'"):
        client.get_model_metadata("digits")
    client.load_model("digits")
    assert client.is_model_ready("digits")
    with pytest.raises(InferenceServerException, match="no folder"):
        client.load_model("absent")


def test_compressed_request_and_response(server: BackgroundServer) -> None:
    x = np.arange(64, dtype=np.float32).reshape(1, 64) / 64
    with triton.InferenceServerClient(f"127.0.0.1:{server.port}") as client:
        tensor = triton.InferInput("x", [1, 64], "FP32")
        tensor.set_data_from_numpy(x)
        for algorithm in ("gzip", "deflate"):
            result = client.infer("mlp", [tensor], request_compression_algorithm=algorithm,
                                  response_compression_algorithm=algorithm)
            np.testing.assert_allclose(result.as_numpy("y"), reference(x), rtol=1e-5, atol=1e-5)
    body = gzip.compress(b'{"inputs":[{"name":"x","shape":[1,64],"datatype":"FP32","data":' +
                         str([0.5] * 64).encode() + b"}]}")
    status, headers, _ = call(server.port, "POST", "/v2/models/mlp/infer", body,
                              {"content-encoding": "gzip", "accept-encoding": "gzip"})
    assert status == 200 and headers["content-encoding"] == "gzip"


def test_raw_binary_request(server: BackgroundServer) -> None:
    x = np.linspace(0, 1, 64, dtype=np.float32)
    status, headers, body = call(server.port, "POST", "/v2/models/mlp/infer", x.tobytes(),
                                 {"inference-header-content-length": "0"})
    assert status == 200
    length = int(headers["inference-header-content-length"])
    y = np.frombuffer(body[length:], np.float32).reshape(1, 10)
    np.testing.assert_allclose(y, reference(x[None]), rtol=1e-5, atol=1e-5)


def test_aio_client_concurrent_requests_are_batched(server: BackgroundServer) -> None:
    async def main() -> list[np.ndarray]:
        async with triton_aio.InferenceServerClient(f"127.0.0.1:{server.port}") as client:
            assert await client.is_server_ready()
            assert (await client.get_model_metadata("mlp"))["name"] == "mlp"

            async def one(i: int) -> np.ndarray:
                tensor = triton_aio.InferInput("x", [1, 64], "FP32")
                tensor.set_data_from_numpy(np.full((1, 64), i / 64, np.float32), binary_data=i % 2 == 0)
                return (await client.infer("mlp", [tensor])).as_numpy("y")

            return await asyncio.gather(*(one(i) for i in range(40)))

    results = asyncio.run(main())
    for i, y in enumerate(results):
        np.testing.assert_allclose(y, reference(np.full((1, 64), i / 64, np.float32)), rtol=1e-5, atol=1e-5)
