"""tierml's own OIP client: binary by default, JSON on request, errors as ServeError."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from tests.support.serving import make_repo, mlp
from tierml.serve.client import InferenceClient, decode_response, encode_request
from tierml.serve.errors import ServeError
from tierml.serve.server import BackgroundServer, ServeOptions


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    with BackgroundServer(ServeOptions(make_repo(tmp_path_factory.mktemp("repo")), port=0, token="t")) as running:
        yield running


def test_binary_and_json_paths_agree(server: BackgroundServer) -> None:
    x = np.random.default_rng(3).standard_normal((4, 64)).astype(np.float32)
    expected = ort.InferenceSession(mlp().SerializeToString()).run(None, {"x": x})[0]
    with InferenceClient(server.url, token="t") as client:
        assert client.live() and client.ready() and client.model_ready("mlp")
        np.testing.assert_allclose(client.infer("mlp", {"x": x})["y"], expected, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(client.infer("mlp", {"x": x}, outputs=["y"], binary_data=False)["y"], expected,
                                   rtol=1e-5, atol=1e-5)
        text = np.array([["a", "bé", ""], ["x", "y", "z"]], dtype=object)
        feeds = {"in_BYTES": text, **{f"in_{t}": np.zeros((2, 3), d) for t, d in [
            ("BOOL", bool), ("UINT8", np.uint8), ("UINT16", np.uint16), ("UINT32", np.uint32), ("UINT64", np.uint64),
            ("INT8", np.int8), ("INT16", np.int16), ("INT32", np.int32), ("INT64", np.int64),
            ("FP16", np.float16), ("FP32", np.float32), ("FP64", np.float64)]}}
        out = client.infer("identity", feeds, outputs=["out_BYTES", "out_FP16"])
        assert out["out_BYTES"].tolist() == [[s.encode() for s in row] for row in text.tolist()]
        assert out["out_FP16"].dtype == np.float16


def test_errors_carry_status_and_message(server: BackgroundServer) -> None:
    with InferenceClient(server.url, token="t") as client, pytest.raises(ServeError, match="unexpected input") as e:
        client.infer("mlp", {"q": np.zeros((1, 64), np.float32)})
    assert e.value.status == 400
    with InferenceClient(server.url) as client, pytest.raises(ServeError) as e:
        client.metadata("mlp")
    assert e.value.status == 401


def test_codec_round_trip_without_a_server() -> None:
    x = np.arange(6, dtype=np.int32).reshape(2, 3)
    body, length = encode_request({"x": x}, request_id="r")
    assert length is not None and body[length:] == x.tobytes()
    response = (b'{"model_name":"m","outputs":[{"name":"y","datatype":"INT32","shape":[2,3],'
                b'"parameters":{"binary_data_size":24}}]}')
    header, arrays = decode_response(response + x.tobytes(), len(response))
    assert header["model_name"] == "m"
    np.testing.assert_array_equal(arrays["y"], x)
