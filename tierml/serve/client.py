"""A small blocking client for any Open Inference Protocol server, speaking the binary tensor extension.

tierml uses it where one tier calls another (a split model's tail, a cascade's escalation); it works
against tierml serve, Triton and KServe alike:

    with InferenceClient("http://127.0.0.1:8000") as client:
        logits = client.infer("digits", {"input": x})["logits"]
"""

from __future__ import annotations

import http.client
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlsplit

import numpy as np
import orjson

from tierml.registry.datatypes import NUMPY, from_numpy
from tierml.serve import binary
from tierml.serve.errors import ServeError


def encode_request(inputs: Mapping[str, np.ndarray], outputs: Sequence[str] | None = None, binary_data: bool = True,
                   request_id: str | None = None, parameters: Mapping[str, Any] | None = None
                   ) -> tuple[bytes, int | None]:
    """An `/infer` body and its Inference-Header-Content-Length (None for a pure JSON body)."""
    header: dict[str, Any] = {}
    if request_id is not None:
        header["id"] = request_id
    params = dict(parameters or {})
    if outputs is None and binary_data:
        params["binary_data_output"] = True
    if params:
        header["parameters"] = params
    entries: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for name, value in inputs.items():
        array = np.asarray(value)
        entry: dict[str, Any] = {"name": name, "shape": list(array.shape), "datatype": from_numpy(array.dtype)}
        if binary_data:
            raw = binary.encode_tensor(array)
            entry["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        elif entry["datatype"] == "BYTES":
            entry["data"] = [v.decode() if isinstance(v, bytes) else str(v) for v in array.ravel()]
        else:
            entry["data"] = array.ravel().tolist()
        entries.append(entry)
    header["inputs"] = entries
    if outputs is not None:
        header["outputs"] = [{"name": n, "parameters": {"binary_data": binary_data}} for n in outputs]
    json_part = orjson.dumps(header)
    if not chunks:
        return json_part, None
    return b"".join([json_part, *chunks]), len(json_part)


def decode_response(body: bytes, header_length: int | None) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The response's JSON header and its outputs as numpy arrays (JSON or binary data)."""
    view = memoryview(body)
    header = orjson.loads(view[:header_length] if header_length is not None else view)
    offset = header_length or 0
    arrays: dict[str, np.ndarray] = {}
    for out in header.get("outputs", []):
        shape = tuple(out["shape"])
        size = (out.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            arrays[out["name"]] = binary.decode_tensor(out["name"], out["datatype"], shape, view[offset:offset + size])
            offset += size
        elif out["datatype"] == "BYTES":
            arrays[out["name"]] = _object_array([v.encode() for v in out["data"]], shape)
        else:
            arrays[out["name"]] = np.asarray(out["data"], dtype=NUMPY[out["datatype"]]).reshape(shape)
    return header, arrays


class InferenceClient:
    """One keep-alive HTTP connection to an OIP server; errors come back as `ServeError` with the status."""

    def __init__(self, url: str, token: str | None = None, timeout_s: float = 30.0) -> None:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"url must be http:// or https://, not {url!r}")
        conn_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        self._conn = conn_class(parts.hostname or "127.0.0.1", parts.port, timeout=timeout_s)
        self._headers = {"authorization": f"Bearer {token}"} if token else {}

    def __enter__(self) -> InferenceClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._conn.close()

    def live(self) -> bool:
        return self._request("GET", "/v2/health/live")[0] == 200

    def ready(self) -> bool:
        return self._request("GET", "/v2/health/ready")[0] == 200

    def model_ready(self, model: str, version: int | None = None) -> bool:
        return self._request("GET", _model_path(model, version, "/ready"))[0] == 200

    def metadata(self, model: str | None = None, version: int | None = None) -> dict[str, Any]:
        """Server metadata, or a model's when `model` is given."""
        return self._json("GET", "/v2" if model is None else _model_path(model, version, ""))

    def load_model(self, model: str) -> None:
        """Load (or reload) a model from the repository (the server must run with --model-control-mode explicit)."""
        self._json("POST", f"/v2/repository/models/{quote(model, safe='')}/load", b"{}")

    def unload_model(self, model: str) -> None:
        self._json("POST", f"/v2/repository/models/{quote(model, safe='')}/unload", b"{}")

    def infer(self, model: str, inputs: Mapping[str, np.ndarray], outputs: Sequence[str] | None = None,
              version: int | None = None, binary_data: bool = True, request_id: str | None = None,
              parameters: Mapping[str, Any] | None = None, compress: Callable[[bytes], bytes] | None = None,
              content_encoding: str = "") -> dict[str, np.ndarray]:
        """Run one request; the named outputs (all by default) as numpy arrays.

        `compress` with its `content_encoding` name (e.g. lz4) compresses the request body on the way up.
        """
        body, header_length = encode_request(inputs, outputs, binary_data, request_id, parameters)
        headers = {} if header_length is None else {"inference-header-content-length": str(header_length)}
        if compress is not None:
            body = compress(body)
            headers["content-encoding"] = content_encoding
        status, response_headers, data = self._request("POST", _model_path(model, version, "/infer"), body, headers)
        _raise_for(status, data, response_headers)
        length = response_headers.get("inference-header-content-length")
        return decode_response(data, int(length) if length is not None else None)[1]

    def _json(self, method: str, path: str, body: bytes = b"") -> Any:
        status, headers, data = self._request(method, path, body)
        _raise_for(status, data, headers)
        return orjson.loads(data)

    def _request(self, method: str, path: str, body: bytes = b"", headers: Mapping[str, str] | None = None
                 ) -> tuple[int, dict[str, str], bytes]:
        all_headers = {**self._headers, **(headers or {})}
        for attempt in range(2):  # a keep-alive connection the server closed is reopened once
            try:
                self._conn.request(method, path, body=body or None, headers=all_headers)
                response = self._conn.getresponse()
                data = response.read()
                return response.status, {k.lower(): v for k, v in response.getheaders()}, data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self._conn.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")


def _model_path(model: str, version: int | None, suffix: str) -> str:
    path = f"/v2/models/{quote(model, safe='')}"
    return f"{path}/versions/{version}{suffix}" if version is not None else path + suffix


def _raise_for(status: int, data: bytes, headers: dict[str, str]) -> None:
    if status == 200:
        return
    try:
        message = orjson.loads(data).get("error", data.decode(errors="replace"))
    except (orjson.JSONDecodeError, AttributeError):
        message = data[:300].decode(errors="replace")
    raise ServeError(status, f"server answered {status}: {message}", headers)


def _object_array(items: list[bytes], shape: tuple[int, ...]) -> np.ndarray:
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array.reshape(shape)
