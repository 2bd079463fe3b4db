"""The Open Inference Protocol's REST routes (plus Triton's config, repository, statistics) and /metrics.

`App.handle` maps a parsed HTTP request to a response. Every failure is `{"error": "..."}` with a 4xx
for client mistakes, 503/429 (+ Retry-After) for overload, and 500 only for tierml's own bugs.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import orjson

import tierml
from tierml.serve import metrics
from tierml.serve.errors import ServeError, bad_request, not_found
from tierml.serve.http import Request, Response
from tierml.serve.protocol import encode_response, parse_request
from tierml.serve.repository import Repository, ServedVersion

EXTENSIONS = ("binary_tensor_data", "model_repository", "model_configuration", "statistics", "schedule_policy",
              "parameters")
OFFLOAD_PARSE_BYTES = 256 * 1024  # bodies this big are parsed on a worker thread, not the event loop
access_logger = logging.getLogger("tierml.serve.access")
logger = logging.getLogger("tierml.serve")


def error_body(message: str) -> bytes:
    return orjson.dumps({"error": message})


def _json(payload: Any, status: int = 200) -> Response:
    return Response(status, orjson.dumps(payload))


@dataclass
class App:
    """The routes over a repository. `control` is the model control mode (load/unload need `explicit`)."""

    repository: Repository
    control: str = "none"
    token: str | None = None
    access_log: bool = False
    extensions: tuple[str, ...] = EXTENSIONS
    draining: bool = False

    async def handle(self, request: Request) -> Response:
        start = time.perf_counter_ns()
        served: list[ServedVersion] = []
        try:
            self._authorize(request)
            response = await self._route(request, served)
        except ServeError as exc:
            response = Response(exc.status, error_body(str(exc)), headers=exc.headers)
        except Exception:  # tierml's bug, never the client's: log it, answer without a traceback
            logger.exception("internal error on %s %s", request.method, request.path)
            response = Response(500, error_body("internal server error (logged by the server)"))
        elapsed = time.perf_counter_ns() - start
        if served:
            served[0].stats.record_request(response.status == 200, elapsed)
        if self.access_log:
            self._log(request, response, elapsed, served)
        return response

    def _authorize(self, request: Request) -> None:
        if self.token is None or request.path.startswith("/v2/health/"):
            return
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
            raise ServeError(401, "missing or wrong bearer token: send 'Authorization: Bearer <token>'",
                             {"www-authenticate": "Bearer"})

    async def _route(self, request: Request, served: list[ServedVersion]) -> Response:
        parts = [unquote(p) for p in request.path.split("/") if p]
        if parts[:2] == ["v2", "models"] and len(parts) >= 3 and parts[2] != "stats":
            return await self._model_route(request, parts[2], parts[3:], served)
        if parts[:3] == ["v2", "repository", "models"] and len(parts) == 5 and parts[4] in ("load", "unload"):
            _method(request, "POST")
            return await (self._load if parts[4] == "load" else self._unload)(request, parts[3])
        key = "/".join(parts)
        route = _FIXED.get(key)
        if route is None:
            raise not_found(f"no route {request.method} /{key} (the inference API lives under /v2, e.g. "
                            "POST /v2/models/<model>/infer)")
        method, handler = route
        _method(request, method)
        return await handler(self, request)

    async def _model_route(self, request: Request, name: str, rest: list[str],
                           served: list[ServedVersion]) -> Response:
        version = None
        if rest[:1] == ["versions"]:
            if len(rest) < 2 or not rest[1].isdigit():
                raise bad_request(f"version must be a positive integer: /v2/models/{name}/versions/<n>/...")
            version, rest = int(rest[1]), rest[2:]
        action = rest[0] if len(rest) == 1 else "" if not rest else None
        if action == "stats":
            _method(request, "GET")
            return self._stats(name, version)
        if action not in _MODEL_ACTIONS:
            raise not_found(f"no route {request.method} {request.path} (model routes end in /infer, /ready, /config, "
                            "/stats or nothing for metadata)")
        method, handler = _MODEL_ACTIONS[action]
        _method(request, method)
        target = self.repository.get(name, version)
        if action == "infer":
            served.append(target)  # only inferences count in the model's statistics
        return await handler(self, request, target)

    # server routes
    async def _live(self, request: Request) -> Response:
        return _json({"live": True})

    async def _ready(self, request: Request) -> Response:
        if self.draining:
            return _json({"ready": False, "error": "server is shutting down"}, 503)
        if not self.repository.ready():
            return _json({"ready": False, "error": "not every model is loaded; see POST /v2/repository/index"}, 503)
        return _json({"ready": True})

    async def _server_metadata(self, request: Request) -> Response:
        return _json({"name": "tierml", "version": tierml.__version__, "extensions": list(self.extensions)})

    async def _all_stats(self, request: Request) -> Response:
        return self._stats(None, None)

    async def _metrics(self, request: Request) -> Response:
        stats = [v.stats for m in list(self.repository.models.values()) for v in m.versions.values()]
        return Response(200, metrics.render(stats).encode(), "text/plain; version=0.0.4; charset=utf-8")

    async def _index(self, request: Request) -> Response:
        ready_only = bool(_optional_json(request).get("ready", False))
        entries: list[dict[str, Any]] = []
        for name in sorted(set(self.repository.names()) | set(self.repository.models)):
            model = self.repository.models.get(name)
            state = self.repository.states.get(name)
            if model is not None:  # a reason here says why the last reload failed (this version kept serving)
                reason = {"reason": state.reason} if state and state.reason else {}
                entries += [{"name": name, "version": str(v), "state": "READY", **reason}
                            for v in sorted(model.versions)]
            elif not ready_only:
                entries.append({"name": name, "state": state.state if state else "UNAVAILABLE",
                                "reason": state.reason if state else "not loaded"})
        return _json(entries)

    async def _load(self, request: Request, name: str) -> Response:
        self._control("load")
        parameters = _optional_json(request).get("parameters") or {}
        if parameters:
            raise bad_request(f"load parameters ({', '.join(map(str, parameters))}) are not supported: put the config "
                              "and files in the repository folder, then load")
        await asyncio.get_running_loop().run_in_executor(None, self.repository.load, name)
        return _json({})

    async def _unload(self, request: Request, name: str) -> Response:
        self._control("unload")
        await asyncio.get_running_loop().run_in_executor(None, self.repository.unload, name)
        return _json({})

    def _control(self, action: str) -> None:
        if self.control != "explicit":
            raise bad_request(f"{action} is only available with --model-control-mode explicit (this server runs "
                              f"in mode '{self.control}')")

    # model routes
    async def _model_metadata(self, request: Request, served: ServedVersion) -> Response:
        model = self.repository.models[served.stats.name]
        config = served.config
        batch = [-1] if config.max_batch_size else []
        return _json({
            "name": config.name, "versions": [str(v) for v in sorted(model.versions)], "platform": config.platform,
            "inputs": [{"name": t.name, "datatype": t.datatype, "shape": batch + list(t.dims)} for t in config.inputs],
            "outputs": [{"name": t.name, "datatype": t.datatype, "shape": batch + list(t.dims)}
                        for t in config.outputs],
        })

    async def _model_ready(self, request: Request, served: ServedVersion) -> Response:
        return _json({"name": served.config.name, "ready": True})

    async def _model_config(self, request: Request, served: ServedVersion) -> Response:
        return _json(served.config.to_triton())

    async def _infer(self, request: Request, served: ServedVersion) -> Response:
        header_length = _header_length(request.headers.get("inference-header-content-length"))
        if len(request.body) > OFFLOAD_PARSE_BYTES:
            parsed = await asyncio.get_running_loop().run_in_executor(
                None, parse_request, request.body, header_length, served.config)
        else:
            parsed = parse_request(request.body, header_length, served.config)
        results = await served.executor.submit(parsed)
        body, json_length = encode_response(served.config, served.version, parsed, results)
        if json_length is None:
            return Response(200, body, compressible=True)
        return Response(200, body, "application/octet-stream", {"inference-header-content-length": str(json_length)},
                        compressible=True)

    def _stats(self, name: str | None, version: int | None) -> Response:
        if name is None:
            models = list(self.repository.models.values())
        else:
            self.repository.get(name, version)
            models = [self.repository.models[name]]
        entries = [v.stats.to_triton() for m in models for k, v in sorted(m.versions.items())
                   if version is None or k == version]
        return _json({"model_stats": entries})

    def _log(self, request: Request, response: Response, elapsed_ns: int, served: list[ServedVersion]) -> None:
        record = {"ts": round(time.time(), 6), "remote": request.remote, "method": request.method,
                  "path": request.path, "status": response.status, "bytes_in": len(request.body),
                  "bytes_out": len(response.body), "duration_ms": round(elapsed_ns / 1e6, 3)}
        if served:
            record["model"] = served[0].config.name
            record["version"] = served[0].version
        access_logger.info(json.dumps(record))


_FIXED: dict[str, tuple[str, Callable[[App, Request], Awaitable[Response]]]] = {
    "v2/health/live": ("GET", App._live),
    "v2/health/ready": ("GET", App._ready),
    "v2": ("GET", App._server_metadata),
    "v2/models/stats": ("GET", App._all_stats),
    "v2/repository/index": ("POST", App._index),
    "metrics": ("GET", App._metrics),
}
_MODEL_ACTIONS: dict[str, tuple[str, Callable[..., Awaitable[Response]]]] = {
    "": ("GET", App._model_metadata),
    "ready": ("GET", App._model_ready),
    "config": ("GET", App._model_config),
    "infer": ("POST", App._infer),
}


def _method(request: Request, allowed: str) -> None:
    if request.method != allowed and not (allowed == "GET" and request.method == "HEAD"):
        raise ServeError(405, f"{request.method} is not allowed on {request.path}; use {allowed}", {"allow": allowed})


def _header_length(value: str | None) -> int | None:
    if value is None:
        return None
    if not value.strip().isdigit():
        raise bad_request(f"Inference-Header-Content-Length must be a byte count, not {value!r}")
    return int(value)


def _optional_json(request: Request) -> dict[str, Any]:
    return request.json_object() if request.body.strip() else {}
