"""A lean HTTP/1.1 server on asyncio and httptools: keep-alive, pipelining in order, body limits (per route
when asked), gzip/deflate bodies, file bodies sent in chunks, idle timeouts and a graceful drain. It knows
nothing of inference: it hands each complete `Request` to an async handler and writes the `Response` back.
"""

from __future__ import annotations

import asyncio
import email.utils
import gzip
import time
import zlib
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any

import httptools
import orjson

from tierml.serve.errors import ServeError

MAX_HEADERS = 100
FILE_CHUNK = 256 * 1024
_REASONS = {s.value: s.phrase for s in HTTPStatus}


@dataclass
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    remote: str = ""
    keep_alive: bool = True

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object; a 400 that says why when it is not one."""
        try:
            payload = orjson.loads(self.body)
        except orjson.JSONDecodeError as exc:
            raise ServeError(400, f"request body is not valid JSON ({exc})") from None
        if not isinstance(payload, dict):
            raise ServeError(400, f"request body must be a JSON object, not {type(payload).__name__}")
        return payload


@dataclass(frozen=True)
class FileBody:
    """`length` bytes of a file from `offset`: sent in chunks as the client takes them, never read whole."""

    path: Path
    offset: int
    length: int


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    compressible: bool = False  # honour Accept-Encoding (Triton compresses inference responses only)
    file: FileBody | None = None  # the body, instead of `body` (large downloads; HEAD reports its length)


Handler = Callable[[Request], Awaitable[Response]]
ErrorBody = Callable[[str], bytes]
# (method, path, headers) -> (the largest body that route takes, how to raise it), or None for the default limit;
# raising ServeError refuses the request on its head, before any of its body is read (a missing token, say)
BodyLimit = Callable[[str, str, dict[str, str]], tuple[int, str] | None]


@dataclass
class Limits:
    max_body_bytes: int = 64 * 1024 * 1024
    idle_timeout_s: float = 60.0  # keep-alive connections with no request in flight
    request_timeout_s: float = 30.0  # a request's head and body must arrive within this
    max_body_hint: str = "raise it with tierml serve --max-body-mb"  # how to raise max_body_bytes


class HttpServer:
    """Serves `handler` on a socket until `drain` is called."""

    def __init__(self, handler: Handler, error_body: ErrorBody, limits: Limits | None = None,
                 body_limit: BodyLimit | None = None) -> None:
        self.handler = handler
        self.error_body = error_body
        self.limits = limits or Limits()
        self.body_limit = body_limit
        self.connections: set[_Connection] = set()
        self.draining = False
        self.date = b""
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task | None = None

    async def start(self, host: str, port: int) -> int:
        """Listen; returns the bound port (useful with port 0)."""
        loop = asyncio.get_running_loop()
        self._tick()
        self._server = await loop.create_server(lambda: _Connection(self), host, port, backlog=1024,
                                               reuse_address=True)
        self._sweeper = loop.create_task(self._sweep())
        return self._server.sockets[0].getsockname()[1]

    async def drain(self, timeout_s: float) -> None:
        """Stop accepting, let in-flight requests finish (then close their connections), close idle ones."""
        self.draining = True
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.close_if_idle()
        deadline = time.monotonic() + timeout_s
        while self.connections and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for conn in list(self.connections):
            conn.transport.close()
        if self._sweeper is not None:
            self._sweeper.cancel()

    def _tick(self) -> None:
        self.date = b"date: " + email.utils.formatdate(usegmt=True).encode() + b"\r\n"

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self._tick()
            now = time.monotonic()
            for conn in list(self.connections):
                conn.check_timeouts(now, self.limits)


class _Connection(asyncio.Protocol):
    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.remote = ""
        self.pending: deque[Request] = deque()
        self.busy = False
        self.closed = False
        self.writable = asyncio.Event()  # cleared while the transport's buffer is over its high-water mark
        self.writable.set()
        self.last_activity = time.monotonic()
        self.receiving_since = 0.0  # when the request now arriving began; 0 between requests
        self._reset()

    def _reset(self) -> None:
        self.url = b""
        self.headers: dict[str, str] = {}
        self.body: list[bytes] = []
        self.body_size = 0
        self.limit = (self.server.limits.max_body_bytes, self.server.limits.max_body_hint)
        self.refusal: ServeError | None = None

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.remote = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else ""
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.writable.set()  # a file body being sent sees `closed` and stops
        self.server.connections.discard(self)

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        self.last_activity = time.monotonic()
        if not self.receiving_since:
            self.receiving_since = self.last_activity
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.refuse(ServeError(400, "protocol upgrades are not supported; speak HTTP/1.1"))
        except httptools.HttpParserError as exc:
            if self.refusal is None:
                self.refuse(ServeError(400, f"malformed HTTP request ({exc})"))
        if self.refusal is not None and not self.closed:
            self.refuse(self.refusal)

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._reset()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(self.headers) >= MAX_HEADERS:
            self.refusal = ServeError(431, f"more than {MAX_HEADERS} headers")
            return
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        self.headers[key] = f"{self.headers[key]}, {text}" if key in self.headers else text

    def on_headers_complete(self) -> None:
        if self.server.body_limit is not None:
            method = self.parser.get_method().decode("latin-1")
            try:
                self.limit = self.server.body_limit(method, self.url.decode("latin-1").partition("?")[0],
                                                    self.headers) or self.limit
            except ServeError as exc:
                self.refusal = exc
                return
        length = self.headers.get("content-length", "0")
        if length.isdigit() and int(length) > self.limit[0]:
            self.refusal = _too_large(int(length), *self.limit)

    def on_body(self, body: bytes) -> None:
        if self.refusal is not None:
            return
        self.body_size += len(body)
        if self.body_size > self.limit[0]:
            self.refusal = _too_large(self.body_size, *self.limit)
            return
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.receiving_since = 0.0
        if self.refusal is not None:
            return
        path, _, query = self.url.decode("latin-1").partition("?")
        try:
            body = _decoded(self.headers, b"".join(self.body), *self.limit)
        except ServeError as exc:
            self.refusal = exc
            return
        self.body = []
        request = Request(self.parser.get_method().decode("latin-1"), path, query, self.headers, body, self.remote,
                          self.parser.should_keep_alive())
        self.pending.append(request)
        if not self.busy:
            self.busy = True
            asyncio.get_running_loop().create_task(self._serve())
        elif len(self.pending) > 16:
            self.transport.pause_reading()

    async def _serve(self) -> None:
        while self.pending and not self.closed:
            request = self.pending.popleft()
            response = await self.server.handler(request)
            head_only = request.method == "HEAD"
            if response.file is not None and not head_only:
                await self.send_file(response, request.keep_alive)
            else:
                self.write(response, request.headers.get("accept-encoding", ""), request.keep_alive, head_only)
            if len(self.pending) <= 4 and not self.closed:
                self.transport.resume_reading()
        self.busy = False
        self.last_activity = time.monotonic()
        if self.server.draining:
            self.transport.close()

    def write(self, response: Response, accept_encoding: str, keep_alive: bool, head_only: bool = False) -> None:
        if self.closed:
            return
        body = response.body
        head = [f"HTTP/1.1 {response.status} {_REASONS.get(response.status, 'Unknown')}\r\n"
                f"content-type: {response.content_type}\r\n"]
        encoding = _pick_encoding(accept_encoding) if body and response.compressible else None
        if encoding:
            body = gzip.compress(body, 6) if encoding == "gzip" else zlib.compress(body, 6)
            head.append(f"content-encoding: {encoding}\r\n")
        head.extend(f"{k}: {v}\r\n" for k, v in response.headers.items())
        close = not keep_alive or self.server.draining
        if response.status not in (204, 304):  # no body, and RFC 9110 wants no length that says otherwise
            head.append(f"content-length: {response.file.length if response.file else len(body)}\r\n")
        if close:
            head.append("connection: close\r\n")
        self.transport.write(b"".join([head[0].encode(), self.server.date, "".join(head[1:]).encode(), b"\r\n",
                                       b"" if head_only else body]))
        if close and (head_only or response.file is None):
            self.transport.close()

    async def send_file(self, response: Response, keep_alive: bool) -> None:
        """The head, then the file's range in chunks, each once the client has taken the one before (a slow
        reader holds one chunk of memory, not the file); the file is read on a worker thread."""
        assert response.file is not None
        part = response.file
        loop = asyncio.get_running_loop()
        try:
            stream = part.path.open("rb")
        except OSError as exc:
            self.write(Response(500, self.server.error_body(f"cannot read {part.path.name}: {exc.strerror}")), "",
                       keep_alive)
            return
        self.write(response, "", keep_alive)
        with stream:
            stream.seek(part.offset)
            left = part.length
            while left and not self.closed:
                chunk = await loop.run_in_executor(None, stream.read, min(FILE_CHUNK, left))
                if not chunk:  # the file shrank under us: the length promised cannot be kept
                    self.transport.close()
                    return
                left -= len(chunk)
                self.transport.write(chunk)
                try:  # a client that stops reading is dropped after the idle timeout, not waited on for ever
                    await asyncio.wait_for(self.writable.wait(), self.server.limits.idle_timeout_s)
                except TimeoutError:
                    self.transport.close()
                    return
        if not keep_alive or self.server.draining:
            self.transport.close()

    def refuse(self, error: ServeError) -> None:
        """Answer a request that cannot be parsed or is too large, then close: the stream is unusable."""
        self.write(Response(error.status, self.server.error_body(str(error)), headers=error.headers), "", False)
        self.closed = True

    def close_if_idle(self) -> None:
        if not self.busy and not self.receiving_since:
            self.transport.close()

    def check_timeouts(self, now: float, limits: Limits) -> None:
        if self.busy:
            return
        if self.receiving_since and now - self.receiving_since > limits.request_timeout_s:
            self.refuse(ServeError(408, f"request not received within {limits.request_timeout_s:g} s"))
        elif not self.receiving_since and now - self.last_activity > limits.idle_timeout_s:
            self.transport.close()


def _too_large(size: int, limit: int, hint: str) -> ServeError:
    return ServeError(413, f"request body of {size:,} bytes exceeds the limit of {limit:,} bytes ({hint})")


def _decoded(headers: dict[str, str], body: bytes, limit: int, hint: str) -> bytes:
    """The body after Content-Encoding (gzip / deflate), refusing what would inflate past `limit`."""
    encoding = headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("identity", ""):
        return body
    if encoding == "lz4":
        return _unlz4(body, limit, hint)
    if encoding not in ("gzip", "deflate"):
        raise ServeError(415, f"Content-Encoding '{encoding}' is not supported (use gzip, deflate, lz4 or none)")
    # deflate means a zlib stream, but some clients send raw deflate: accept both.
    for wbits in (16 + zlib.MAX_WBITS,) if encoding == "gzip" else (zlib.MAX_WBITS, -zlib.MAX_WBITS):
        try:
            return _inflate(body, wbits, limit, hint)
        except zlib.error:
            continue
    raise ServeError(400, f"body is not valid (or is truncated) {encoding} data")


def _unlz4(body: bytes, limit: int, hint: str) -> bytes:
    """An lz4 frame (what `tierml split run` sends cut tensors in), refusing what would inflate past `limit`."""
    import lz4.frame

    inflater = lz4.frame.LZ4FrameDecompressor()
    try:
        out = inflater.decompress(body, max_length=limit + 1)
    except RuntimeError as exc:
        raise ServeError(400, f"body is not valid lz4 frame data ({exc})") from exc
    if len(out) > limit:
        raise _too_large(len(out), limit, hint)
    if not inflater.eof:
        raise ServeError(400, "body is not valid (or is truncated) lz4 data")
    return out


def _inflate(body: bytes, wbits: int, limit: int, hint: str) -> bytes:
    inflater = zlib.decompressobj(wbits)
    out = inflater.decompress(body, limit + 1)
    if len(out) > limit or inflater.unconsumed_tail:
        raise _too_large(len(out), limit, hint)
    if not inflater.eof:
        raise zlib.error("truncated stream")
    return out


def _pick_encoding(accept: str) -> str | None:
    if not accept:
        return None
    offered = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    return "gzip" if "gzip" in offered else "deflate" if "deflate" in offered else None
