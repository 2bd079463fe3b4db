"""Malformed requests never get a 5xx, never crash the server, and do not grow its memory."""

from __future__ import annotations

import http.client
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.serving import ServerProcess, call, make_repo, rss_mb

JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False)
                    | st.text(max_size=8),
                    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children,
                                                                                       max_size=5),
                    max_leaves=20)
NAMES = st.sampled_from(["x", "y", "input", "in_BYTES", "in_BOOL", "", "q"]) | st.text(max_size=6)
DATATYPES = st.sampled_from(["FP32", "FP16", "INT32", "INT64", "UINT8", "BOOL", "BYTES", "FP64", "BF16", "X"])
SHAPES = st.lists(st.integers(-2, 70), max_size=4) | JSON
PARAMS = st.dictionaries(st.sampled_from(["binary_data_size", "binary_data", "binary_data_output", "priority",
                                          "timeout", "sequence_id", "classification", "other"]),
                         st.integers(-5, 10**6) | st.booleans() | st.text(max_size=4), max_size=3) | JSON


@st.composite
def tensors(draw: st.DrawFn) -> dict:
    item = {"name": draw(NAMES), "datatype": draw(DATATYPES), "shape": draw(SHAPES)}
    if draw(st.booleans()):
        count = draw(st.integers(0, 200))
        item["data"] = draw(st.one_of(st.just([0.5] * count), st.just([1] * count), st.just(["s"] * count),
                                      st.just([True] * count), JSON))
    if draw(st.booleans()):
        item["parameters"] = draw(PARAMS)
    return {k: v for k, v in item.items() if draw(st.integers(0, 9)) or k == "name"}


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, bytes, dict[str, str]]:
    model = draw(st.sampled_from(["mlp", "digits", "identity", "nope", "mlp/versions/1", "mlp/versions/9",
                                  "mlp/versions/x"]))
    path = draw(st.sampled_from([f"/v2/models/{model}/infer"] * 6 + [
        f"/v2/models/{model}", f"/v2/models/{model}/ready", f"/v2/models/{model}/config",
        f"/v2/models/{model}/stats", "/v2/repository/index", f"/v2/repository/models/{model}/load", "/v2",
        "/v2/health/ready", "/%ff/../v2", "/v2/models//infer"]))
    shape = draw(st.integers(0, 3))
    if shape == 0:
        body = draw(st.binary(max_size=300))
    elif shape == 1:
        body = json.dumps(draw(JSON)).encode()
    else:
        header: dict = {"inputs": draw(st.lists(tensors(), max_size=3))}
        for key, strategy in (("outputs", st.lists(st.fixed_dictionaries({"name": NAMES, "parameters": PARAMS}),
                                                   max_size=2) | JSON), ("parameters", PARAMS),
                              ("id", st.text(max_size=5) | JSON)):
            if draw(st.booleans()):
                header[key] = draw(strategy)
        body = json.dumps(header).encode()
        if draw(st.booleans()):
            body += draw(st.binary(max_size=300))
    headers = {}
    if draw(st.integers(0, 3)) == 0:
        headers["inference-header-content-length"] = draw(st.sampled_from(["0", "-1", "abc", "99999999",
                                                                           str(len(body)), "10"]))
    if draw(st.integers(0, 9)) == 0:
        headers["content-encoding"] = draw(st.sampled_from(["gzip", "deflate", "br", "identity"]))
    method = draw(st.sampled_from(["POST"] * 8 + ["GET", "PUT", "DELETE", "HEAD"]))
    return method, path, body, headers


def fuzz(examples: int, tmp_path) -> dict[int, int]:
    """Send `examples` generated requests on one keep-alive connection (a new one after a `connection: close`);
    every answer is < 500 and every 4xx carries {"error": "..."}; RSS, sampled 20 times, stays flat."""
    repo = make_repo(tmp_path)
    seen: dict[int, int] = {}
    every = max(10, examples // 20)
    with ServerProcess(repo, "--max-body-mb", "1") as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        samples: list[float] = []

        @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(requests())
        def send(request: tuple[str, str, bytes, dict[str, str]]) -> None:
            method, path, body, headers = request
            conn.request(method, path, body=body if method != "GET" else None, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            seen[response.status] = seen.get(response.status, 0) + 1
            assert response.status < 500, (request, payload)
            if response.status >= 400 and method != "HEAD":
                assert isinstance(json.loads(payload)["error"], str)
            if response.getheader("connection") == "close":
                conn.close()
            if sum(seen.values()) % every == 0:
                samples.append(rss_mb(server.process.pid))

        send()
        assert server.process.poll() is None, "the server died"
        assert call(server.port, "GET", "/v2/health/ready")[0] == 200, "the server stopped serving"
    print(f"{sum(seen.values())} requests, statuses {dict(sorted(seen.items()))}, RSS MB every {every}: "
          f"{[round(m, 1) for m in samples]}")
    assert sum(seen.values()) >= examples and any(s >= 400 for s in seen), seen
    assert len(samples) >= 10, samples
    settled = samples[len(samples) // 4]  # after the first quarter: sessions and buffers have been touched
    assert max(samples[len(samples) // 4:]) - settled < 8, f"RSS grew from {settled:.1f} MB: {samples}"
    return seen


def test_fuzz_quick(tmp_path) -> None:
    fuzz(300, tmp_path)


@pytest.mark.slow
def test_fuzz_ten_thousand_malformed_requests(tmp_path) -> None:
    seen = fuzz(11_000, tmp_path)  # about 5% of the generated requests are valid ones (health, metadata, ...)
    malformed = sum(n for status, n in seen.items() if 400 <= status < 500)
    assert malformed >= 10_000, seen
