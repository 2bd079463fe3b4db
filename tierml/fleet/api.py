"""The control plane's HTTP API (docs/registry.md): blobs, releases, groups' desired states, device reports and
records, behind bearer tokens with roles.

`ControlPlane.handle` maps a parsed request to a response; serve's HttpServer carries the bytes. Every failure is
`{"error": "..."}` that says what was wrong and how to fix it: 400 for a bad request, 401 without a known token,
403 for the wrong role or an untrusted signature, 404, 405, 409 for a conflict, 413 for a body over the route's
limit, 416 for a range past the end; 500 only for tierml's own bugs (logged, never a traceback on the wire).
Disk and index writes run on worker threads; the desired-state poll, the hot path, stays on the event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ValidationError

from tierml.errors import TiermlError
from tierml.files import sha256_bytes
from tierml.fleet.auth import ROLES, Role, Tokens
from tierml.fleet.desired import DesiredStates, GroupDocument, UnknownRelease, Unservable, check_name, set_group
from tierml.fleet.ranges import Unsatisfiable, parse_range
from tierml.registry.blobs import BlobRef
from tierml.registry.index import Conflict, DeviceRow, Record, now
from tierml.registry.manifest import Release
from tierml.registry.signing import Signed, keyid, verify
from tierml.registry.store import Registry
from tierml.serve.errors import ServeError, bad_request, not_found
from tierml.serve.http import FileBody, Request, Response

BLOB_CHUNK = 1 << 20
IMMUTABLE = "public, max-age=31536000, immutable"
access_logger = logging.getLogger("tierml.registry.access")
logger = logging.getLogger("tierml.registry")

Params = dict[str, str]
Model = TypeVar("Model", bound=BaseModel)
RouteHandler = Callable[["ControlPlane", Request, Params], Awaitable[Response]]


def error_body(message: str) -> bytes:
    return orjson.dumps({"error": message})


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    if isinstance(payload, BaseModel):
        payload = payload.model_dump(mode="json")
    elif isinstance(payload, list):
        payload = [p.model_dump(mode="json") if isinstance(p, BaseModel) else p for p in payload]
    return Response(status, orjson.dumps(payload), headers=headers or {})


@dataclass(frozen=True)
class Route:
    method: str
    parts: tuple[str, ...]  # "{name}" captures that path segment
    roles: frozenset[str]  # who may call it; empty: anyone, without a token
    handler: RouteHandler

    def match(self, parts: list[str]) -> Params | None:
        if len(parts) != len(self.parts):
            return None
        params: Params = {}
        for want, got in zip(self.parts, parts, strict=True):
            if want.startswith("{"):
                params[want[1:-1]] = got
            elif want != got:
                return None
        return params


@dataclass
class ControlPlane:
    """The routes over one registry. `trusted`: the publisher keys a release manifest must be signed by."""

    registry: Registry
    tokens: Tokens
    trusted: list[Ed25519PublicKey]
    desired: DesiredStates
    max_blob_bytes: int = 2 * 1024**3
    max_json_bytes: int = 16 * 1024**2
    access_log: bool = False
    draining: bool = False

    async def handle(self, request: Request) -> Response:
        start = time.perf_counter_ns()
        role: Role | None = None
        try:
            route, params = self._route(request)
            role = self._authorize(route, request)
            response = await route.handler(self, request, params)
        except ServeError as exc:
            response = Response(exc.status, error_body(str(exc)), headers=exc.headers)
        except Conflict as exc:
            response = Response(409, error_body(str(exc)))
        except TiermlError as exc:
            response = Response(400, error_body(str(exc)))
        except Exception:  # tierml's bug, never the client's: log it, answer without a traceback
            logger.exception("internal error on %s %s", request.method, request.path)
            response = Response(500, error_body("internal server error (logged by the registry server)"))
        if self.access_log:
            self._log(request, response, time.perf_counter_ns() - start, role)
        return response

    def body_limit(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, str]:
        """The largest body a route takes (serve's HttpServer refuses a larger one with 413 before reading it). A
        request that carries a body is authorized on its head: no one without the route's token gets the server to
        hold a body in memory."""
        if headers.get("content-length", "0") not in ("", "0") or "transfer-encoding" in headers:
            head = Request(method, path, "", headers, b"")
            self._authorize(self._route(head)[0], head)
        if method == "PUT" and path.startswith("/v1/blobs/"):
            return self.max_blob_bytes, "raise it with tierml registry serve --max-blob-mb"
        return self.max_json_bytes, ("JSON bodies are small; blobs go to PUT /v1/blobs/<sha256> (raise the JSON limit "
                                     "with tierml registry serve --max-json-mb)")

    def _route(self, request: Request) -> tuple[Route, Params]:
        parts = [unquote(p) for p in request.path.split("/") if p]
        found = [(r, p) for r in ROUTES for p in [r.match(parts)] if p is not None]
        method = "GET" if request.method == "HEAD" else request.method
        for route, params in found:
            if route.method == method:
                return route, params
        if found:
            allowed = ", ".join(sorted({r.method for r, _ in found}))
            raise ServeError(405, f"{request.method} is not allowed on {request.path}; use {allowed}",
                             {"allow": allowed})
        raise not_found(f"no route {request.method} {request.path}: the control-plane API lives under /v1 (see "
                        "docs/registry.md), e.g. GET /v1/releases")

    def _authorize(self, route: Route, request: Request) -> Role | None:
        if not route.roles:
            return None
        role = self.tokens.role(request.headers.get("authorization", ""))
        if role is None:
            raise ServeError(401, "missing or unknown bearer token: send 'Authorization: Bearer <token>' with a token "
                             "from the server's --tokens file", {"www-authenticate": "Bearer"})
        if role not in route.roles:
            raise ServeError(403, f"a {role} token may not {route.method} {request.path}; this route needs a "
                             f"{' or '.join(sorted(route.roles))} token")
        return role

    async def _offload(self, work: Callable[[], Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, work)

    # ---------------------------------------------------------------------------------------------- routes
    async def _health(self, request: Request, params: Params) -> Response:
        if self.draining:
            return _json({"status": "draining", "error": "the registry server is shutting down"}, 503)
        return _json({"status": "ok"})

    async def _put_blob(self, request: Request, params: Params) -> Response:
        digest = params["sha256"]
        self.registry.blobs.path(digest)  # a malformed digest is a 400 before any work
        body = request.body

        def store() -> tuple[bool, BlobRef]:
            if self.registry.blobs.has(digest):  # content-addressed: nothing to write, but the claim must hold
                if sha256_bytes(body) != digest:
                    raise bad_request(f"the body's sha256 is {sha256_bytes(body)}, not {digest} as the path "
                                      "claims: it was damaged or truncated on the way; send it again")
                return True, BlobRef(sha256=digest, size=len(body))
            return False, self.registry.blobs.put_chunks(_chunks(body), expected=digest)

        existed, ref = await self._offload(store)
        return _json(ref, 200 if existed else 201)

    async def _get_blob(self, request: Request, params: Params) -> Response:
        digest = params["sha256"]
        path = self.registry.blobs.path(digest)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise not_found(f"blob {digest} is not in the registry; a release manifest names the blobs it needs "
                            "(GET /v1/releases/<model>/<version>)") from None
        etag = f'"{digest}"'
        headers = {"etag": etag, "accept-ranges": "bytes", "cache-control": IMMUTABLE}
        if _matches(request.headers.get("if-none-match"), etag):
            return Response(304, headers=headers)
        try:
            part = parse_range(request.headers.get("range"), size)
        except Unsatisfiable as exc:
            raise ServeError(416, f"range not satisfiable: {exc}; ask for bytes below {size}",
                             {"content-range": f"bytes */{size}"}) from None
        if part is None:
            return Response(200, content_type="application/octet-stream", headers=headers,
                            file=FileBody(path, 0, size))
        headers["content-range"] = part.content_range(size)
        return Response(206, content_type="application/octet-stream", headers=headers,
                        file=FileBody(path, part.start, part.length))

    async def _publish(self, request: Request, params: Params) -> Response:
        signed = _parse(Signed, request, "a signed release manifest {\"payload\": ..., \"signatures\": [...]}")
        trusted_ids = {keyid(k) for k in self.trusted}
        if not any(s.keyid in trusted_ids for s in signed.signatures):
            ids = ", ".join(s.keyid for s in signed.signatures) or "no signature"
            raise ServeError(403, f"the release manifest is signed by {ids}, not by a publisher key this registry "
                             f"trusts ({', '.join(sorted(trusted_ids))}): sign it with such a key, or restart the "
                             "registry with --trust <your KEY.pub>")
        try:
            document = verify(signed, self.trusted, "the release manifest")
        except TiermlError as exc:
            raise ServeError(403, str(exc)) from None
        except ValueError as exc:
            raise bad_request(f"the release manifest's payload is not JSON ({exc})") from None
        try:
            release = Release.model_validate(document)
        except ValidationError as exc:
            raise _invalid("the release manifest's payload", exc) from None
        row = await self._offload(lambda: self.registry.commit(signed))
        logger.info("published %s v%d (manifest %s)", release.model, release.version, row.manifest_sha256[:12])
        return _json(row, 201)

    async def _releases(self, request: Request, params: Params) -> Response:
        return _json(self.registry.index.releases(_query(request).get("model")))

    async def _manifest(self, request: Request, params: Params) -> Response:
        if not params["version"].isdecimal():
            raise bad_request(f"version must be a number: /v1/releases/{params['model']}/<version>, not "
                              f"{params['version']!r}")
        try:
            row, _ = self.registry.signed_manifest(params["model"], int(params["version"]))
        except TiermlError as exc:
            raise not_found(str(exc)) from None
        body = self.registry.blobs.read(row.manifest_sha256)
        return Response(200, body, headers={"x-manifest-sha256": row.manifest_sha256,
                                            "etag": f'"{row.manifest_sha256}"', "cache-control": IMMUTABLE})

    async def _set_desired(self, request: Request, params: Params) -> Response:
        group = check_name("group", params["group"])
        document = _parse(GroupDocument, request, 'a desired state {"model": M, "version": V} (optionally '
                                                  '"overrides": {device: {"model", "version", "rollout"}})')
        try:
            revision = await self._offload(lambda: set_group(self.registry, group, document))
        except UnknownRelease as exc:
            raise not_found(str(exc)) from None
        logger.info("group %s -> %s v%s (revision %d, %d override(s))", group, document.model, document.version,
                    revision, len(document.overrides))
        return _json({"revision": revision})

    async def _groups(self, request: Request, params: Params) -> Response:
        return _json(self.registry.index.groups())

    async def _desired(self, request: Request, params: Params) -> Response:
        device = check_name("device", params["device"])
        query = _query(request)
        group = query.get("group")
        if not group:
            raise bad_request(f"say which group the device is in: /v1/devices/{device}/desired?group=<group>"
                              "&class=<device class>")
        try:
            state = self.desired.current(group, device, query.get("class"))
        except Unservable as exc:
            raise ServeError(409, str(exc)) from None
        if state is None:
            raise not_found(f"no group '{group}': an operator creates it with PUT /v1/groups/{group}/desired "
                            f"(tierml registry desired set --group {group} ...)")
        headers = {"etag": state.etag, "cache-control": "no-cache"}
        if _matches(request.headers.get("if-none-match"), state.etag):
            return Response(304, headers=headers)
        return Response(200, state.body, headers=headers)

    async def _report(self, request: Request, params: Params) -> Response:
        device = check_name("device", params["device"])
        report = request.json_object()
        missing = [k for k in ("group", "device_class") if not isinstance(report.get(k), str) or not report[k]]
        if missing:
            raise bad_request(f"a device report needs {' and '.join(missing)} (strings) beside model, version, slot, "
                              "state, health, last_error and stats")
        row = DeviceRow(device=device, group=report["group"], device_class=report["device_class"], last_seen=now(),
                        report=report)
        await self._offload(lambda: self.registry.index.report(row))
        return Response(204)

    async def _records(self, request: Request, params: Params) -> Response:
        device = check_name("device", params["device"])
        records = request.json_object().get("records")
        if not isinstance(records, list):
            raise bad_request('records travel as {"records": [{"key", "seq", "kind", "body"}, ...]}, oldest first')
        try:
            parsed = [Record.model_validate(r) for r in records]
        except ValidationError as exc:
            raise _invalid("a record", exc) from None
        stored = await self._offload(lambda: self.registry.index.add_records(device, parsed))
        return _json({"stored": stored, "acked_seq": max((r.seq for r in parsed), default=None)})

    async def _devices(self, request: Request, params: Params) -> Response:
        return _json(self.registry.index.devices(_query(request).get("group")))

    def _log(self, request: Request, response: Response, elapsed_ns: int, role: Role | None) -> None:
        sent = response.file.length if response.file and request.method != "HEAD" else len(response.body)
        record = {"ts": round(time.time(), 6), "remote": request.remote, "method": request.method,
                  "path": request.path, "status": response.status, "role": role, "bytes_in": len(request.body),
                  "bytes_out": sent, "duration_ms": round(elapsed_ns / 1e6, 3)}
        access_logger.info(json.dumps(record))


ANY = frozenset(ROLES)
ROUTES: list[Route] = [
    Route("GET", ("v1", "health"), frozenset(), ControlPlane._health),
    Route("PUT", ("v1", "blobs", "{sha256}"), frozenset({"publisher"}), ControlPlane._put_blob),
    Route("GET", ("v1", "blobs", "{sha256}"), ANY, ControlPlane._get_blob),
    Route("POST", ("v1", "releases"), frozenset({"publisher"}), ControlPlane._publish),
    Route("GET", ("v1", "releases"), ANY, ControlPlane._releases),
    Route("GET", ("v1", "releases", "{model}", "{version}"), ANY, ControlPlane._manifest),
    Route("PUT", ("v1", "groups", "{group}", "desired"), frozenset({"operator"}), ControlPlane._set_desired),
    Route("GET", ("v1", "groups"), frozenset({"operator"}), ControlPlane._groups),
    Route("GET", ("v1", "devices", "{device}", "desired"), frozenset({"device"}), ControlPlane._desired),
    Route("POST", ("v1", "devices", "{device}", "report"), frozenset({"device"}), ControlPlane._report),
    Route("POST", ("v1", "devices", "{device}", "records"), frozenset({"device"}), ControlPlane._records),
    Route("GET", ("v1", "devices"), frozenset({"operator"}), ControlPlane._devices),
]


def _chunks(body: bytes) -> Iterator[memoryview]:
    view = memoryview(body)
    for start in range(0, len(view), BLOB_CHUNK):
        yield view[start:start + BLOB_CHUNK]


def _matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an If-None-Match header names `etag` (weak or strong; `*` matches anything)."""
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


def _query(request: Request) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(request.query).items()}


def _parse(kind: type[Model], request: Request, what: str) -> Model:
    try:
        return kind.model_validate(request.json_object())
    except ValidationError as exc:
        raise _invalid(f"the body (expected {what})", exc) from None


def _invalid(what: str, exc: ValidationError) -> ServeError:
    """A 400 naming the first field that is wrong and what it must be."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(the whole object)"
    return bad_request(f"{what}: field '{where}': {first['msg']}")
