"""Every client mistake gets a 4xx with {"error": ...} naming the problem, and the server keeps serving."""

from __future__ import annotations

import gzip
import json
import socket

import numpy as np
import pytest

from tests.support.serving import call, infer_body, make_repo
from tierml.serve.server import BackgroundServer, ServeOptions

X = np.zeros((1, 64), np.float32)
INFER = "/v2/models/mlp/infer"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    repo = make_repo(tmp_path_factory.mktemp("repo"))
    options = ServeOptions(repo, port=0, max_body_bytes=64 * 1024, token=None)
    with BackgroundServer(options) as running:
        yield running


def tensor(**overrides: object) -> dict:
    item = {"name": "x", "shape": [1, 64], "datatype": "FP32", "data": [0.0] * 64}
    item.update(overrides)
    return {"inputs": [item]}


CASES = [
    ("bad JSON", INFER, b'{"inputs": [', {}, 400, "not valid JSON"),
    ("not an object", INFER, b"[1, 2]", {}, 400, "JSON object"),
    ("no inputs", INFER, b"{}", {}, 400, "needs \"inputs\""),
    ("unknown input", INFER, tensor(name="q"), {}, 400, "unexpected input 'q'"),
    ("wrong datatype", INFER, tensor(datatype="INT32"), {}, 400, "expects FP32"),
    ("unknown datatype", INFER, tensor(datatype="FP8"), {}, 400, "'FP8'"),
    ("shape/data mismatch", INFER, tensor(shape=[2, 64]), {}, 400, "needs 128 values"),
    ("wrong rank", INFER, tensor(shape=[64]), {}, 400, "expects [-1, 64]"),
    ("wrong dim", INFER, tensor(shape=[1, 63], data=[0.0] * 63), {}, 400, "expects [-1, 64]"),
    ("negative dim", INFER, tensor(shape=[-1, 64]), {}, 400, "non-negative integers"),
    ("batch above max", INFER, tensor(shape=[9, 64], data=[0.0] * 576), {}, 400, "max_batch_size 8"),
    ("zero batch", INFER, tensor(shape=[0, 64], data=[]), {}, 400, "batch size 0"),
    ("strings as FP32", INFER, tensor(data=["a"] * 64), {}, 400, "must be numbers"),
    ("ragged data", INFER, tensor(data=[[0.0] * 63, [0.0] * 65]), {}, 400, "ragged"),
    ("data not a list", INFER, tensor(data=5), {}, 400, "JSON array"),
    ("missing data", INFER, {"inputs": [{"name": "x", "shape": [1, 64], "datatype": "FP32"}]}, {}, 400, "no \"data\""),
    ("duplicate input", INFER, {"inputs": tensor()["inputs"] * 2}, {}, 400, "given twice"),
    ("unknown output", INFER, {**tensor(), "outputs": [{"name": "z"}]}, {}, 400, "unknown output 'z'"),
    ("classification", INFER, {**tensor(), "outputs": [{"name": "y", "parameters": {"classification": 2}}]}, {},
     400, "classification"),
    ("non-string id", INFER, {**tensor(), "id": 5}, {}, 400, "\"id\" must be a string"),
    ("sequence id", INFER, {**tensor(), "parameters": {"sequence_id": 3}}, {}, 400, "sequence"),
    ("bad priority", INFER, {**tensor(), "parameters": {"priority": -1}}, {}, 400, "priority"),
    ("bad header length", INFER, tensor(), {"inference-header-content-length": "abc"}, 400, "byte count"),
    ("header length past body", INFER, tensor(), {"inference-header-content-length": "99999"}, 400,
     "Inference-Header-Content-Length"),
    ("binary size wrong", INFER,
     json.dumps({"inputs": [{"name": "x", "shape": [1, 64], "datatype": "FP32",
                             "parameters": {"binary_data_size": 12}}]}).encode() + b"\0" * 12,
     "header", 400, "needs 256 bytes"),
    ("unclaimed binary", INFER, json.dumps(tensor()).encode() + b"\0" * 8, "header", 400, "no input claims"),
    ("bad gzip", INFER, b"not gzip", {"content-encoding": "gzip"}, 400, "not valid"),
    ("unsupported encoding", INFER, json.dumps(tensor()).encode(), {"content-encoding": "br"}, 415, "'br'"),
    ("oversized body", INFER, b"[" + b"0," * 40000 + b"0]", {}, 413, "exceeds the limit"),
    ("gzip bomb", INFER, gzip.compress(b" " * 1_000_000), {"content-encoding": "gzip"}, 413, "exceeds the limit"),
    ("unknown model", "/v2/models/nope/infer", tensor(), {}, 404, "unknown model 'nope'"),
    ("unknown version", "/v2/models/mlp/versions/7/infer", tensor(), {}, 404, "no version 7"),
    ("bad version", "/v2/models/mlp/versions/x/infer", tensor(), {}, 400, "positive integer"),
    ("no route", "/v3/whatever", None, {}, 404, "no route"),
    ("model sub-route", "/v2/models/mlp/frobnicate", None, {}, 404, "no route"),
    ("load without explicit mode", "/v2/repository/models/mlp/load", b"", {}, 400, "explicit"),
]


@pytest.mark.parametrize(("what", "path", "body", "headers", "status", "needle"), CASES, ids=[c[0] for c in CASES])
def test_client_mistake_is_a_4xx_naming_the_problem(server: BackgroundServer, what: str, path: str, body: object,
                                                      headers: object, status: int, needle: str) -> None:
    if headers == "header":
        raw = body if isinstance(body, bytes) else b""
        headers = {"inference-header-content-length": str(raw.index(b"}]}") + 3)}
    method = "GET" if body is None else "POST"
    got, _, payload = call(server.port, method, path, body, headers)  # type: ignore[arg-type]
    assert got == status, payload
    message = json.loads(payload)["error"]
    assert needle in message, message
    ok, _, _ = call(server.port, "POST", INFER, infer_body(X))
    assert ok == 200


def test_wrong_method_is_405_with_allow(server: BackgroundServer) -> None:
    status, headers, body = call(server.port, "GET", INFER)
    assert status == 405 and headers["allow"] == "POST" and "use POST" in json.loads(body)["error"]


def test_integer_checks(server: BackgroundServer) -> None:
    from tierml.serve.protocol import json_tensor

    with pytest.raises(Exception, match="must be integers"):
        json_tensor("i", "INT32", (2,), [1.5, 2])
    with pytest.raises(Exception, match=r"lie in \[0, 255\]"):
        json_tensor("i", "UINT8", (2,), [1, 256])
    with pytest.raises(Exception, match="true/false"):
        json_tensor("b", "BOOL", (2,), [1, 0])
    assert json_tensor("n", "FP32", (2, 2), [[1, 2], [3, 4]]).dtype == np.float32


def test_malformed_http_gets_400_and_close(server: BackgroundServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GARBAGE \x00\x01 nonsense\r\n\r\n")
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 400") and b'"error"' in reply
    assert call(server.port, "GET", "/v2/health/live")[0] == 200


def test_token_auth(tmp_path) -> None:
    repo = make_repo(tmp_path)
    with BackgroundServer(ServeOptions(repo, port=0, token="s3cret")) as running:
        assert call(running.port, "GET", "/v2/health/ready")[0] == 200  # probes stay open
        status, headers, body = call(running.port, "POST", INFER, infer_body(X))
        assert status == 401 and headers["www-authenticate"] == "Bearer" and "bearer token" in json.loads(body)["error"]
        assert call(running.port, "POST", INFER, infer_body(X), {"authorization": "Bearer wrong"})[0] == 401
        assert call(running.port, "POST", INFER, infer_body(X), {"authorization": "Bearer s3cret"})[0] == 200
        assert call(running.port, "GET", "/metrics", None, {"authorization": "Bearer s3cret"})[0] == 200


def test_pipelined_requests_answer_in_order(server: BackgroundServer) -> None:
    bodies = [json.dumps(infer_body(np.full((1, 64), i, np.float32)) | {"id": str(i)}).encode() for i in range(5)]
    wire = b"".join(b"POST /v2/models/mlp/infer HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n%s" % (len(b), b)
                    for b in bodies)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(wire)
        data = b""
        while data.count(b'"model_name"') < 5:
            chunk = sock.recv(65536)
            assert chunk
            data += chunk
    ids = [json.loads(part.split(b"\r\n\r\n", 1)[1])["id"] for part in data.split(b"HTTP/1.1 ")[1:]]
    assert ids == ["0", "1", "2", "3", "4"]


def scrape(port: int) -> dict[str, float]:
    """`/metrics` as {'name{labels}': value}."""
    status, headers, body = call(port, "GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    samples = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            samples[key] = float(value)
    return samples


def test_metrics_count_each_models_requests(server: BackgroundServer) -> None:
    before = scrape(server.port)
    for _ in range(3):
        assert call(server.port, "POST", INFER, infer_body(X))[0] == 200
    assert call(server.port, "POST", INFER, tensor(name="q"))[0] == 400
    after = scrape(server.port)

    def delta(name: str, extra: str = "") -> float:
        key = f'{name}{{model="mlp",version="1"{extra}}}'
        return after[key] - before.get(key, 0.0)

    assert delta("nv_inference_request_success") == 3 and delta("nv_inference_request_failure") == 1
    assert delta("nv_inference_count") == 3  # rows
    executions = delta("nv_inference_exec_count")
    assert 1 <= executions <= 3 and delta("tierml_batch_size_count") == executions
    assert delta("nv_inference_request_duration_us") > 0 and delta("nv_inference_compute_infer_duration_us") > 0
    assert delta("nv_inference_queue_duration_us") >= 0
    for histogram, count in (("tierml_request_duration_seconds", 3), ("tierml_queue_duration_seconds", 3),
                             ("tierml_batch_size", executions)):
        assert delta(f"{histogram}_count") == count and delta(f"{histogram}_bucket", ',le="+Inf"') == count
    assert delta("tierml_batch_size_bucket", ',le="1"') == executions  # one row each: nothing to batch
    untouched = 'nv_inference_request_success{model="digits",version="1"}'
    assert after[untouched] == before[untouched]


def test_head_has_no_body_and_keeps_the_connection_usable(server: BackgroundServer) -> None:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("HEAD", "/v2")
    head = conn.getresponse()
    assert head.status == 200 and head.read() == b"" and int(head.getheader("content-length")) > 0
    conn.request("GET", "/v2/health/live")
    assert json.loads(conn.getresponse().read()) == {"live": True}
    conn.close()


def test_port_in_use_is_a_user_error(server: BackgroundServer) -> None:
    from tierml.errors import TiermlError

    with pytest.raises(TiermlError, match="cannot listen"):
        BackgroundServer(ServeOptions(server.server.options.repository, port=server.port))
