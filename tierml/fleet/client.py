"""A client for the control plane's publisher and operator routes (docs/registry.md): what `tierml registry
publish --url`, `list --url` and `desired set --url` send. Blobs are uploaded from their files in chunks, never
read whole. A refusal becomes a TiermlError carrying the server's own message (a 409 a `Conflict`)."""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from tierml.errors import TiermlError
from tierml.fleet.desired import GroupDocument
from tierml.registry.blobs import BlobRef
from tierml.registry.index import Conflict, GroupRow, ReleaseRow
from tierml.registry.signing import Signed

UPLOAD_BLOCK = 1 << 20


class RegistryClient:
    """The registry server at `url`, called with a bearer `token` (one fresh connection per call)."""

    def __init__(self, url: str, token: str | None, timeout_s: float = 300.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise TiermlError(f"--url {url!r} is not a registry address; give http://HOST:PORT (as `tierml registry "
                              "serve` prints it)")
        self.url = url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s
        self._parts = parts

    def _connect(self) -> http.client.HTTPConnection:
        kind = http.client.HTTPSConnection if self._parts.scheme == "https" else http.client.HTTPConnection
        return kind(self._parts.hostname or "", self._parts.port, timeout=self.timeout_s, blocksize=UPLOAD_BLOCK)

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
                allow: tuple[int, ...] = ()) -> tuple[int, bytes]:
        """One call: (status, body); a refusal (4xx/5xx not in `allow`) or no answer raises TiermlError."""
        sent = {"authorization": f"Bearer {self.token}"} if self.token else {}
        sent.update(headers or {})
        conn = self._connect()
        try:
            conn.request(method, self._parts.path.rstrip("/") + path, body=body, headers=sent)
            response = conn.getresponse()
            status, data = response.status, response.read()
        except OSError as exc:
            raise TiermlError(f"cannot reach the registry at {self.url} ({exc}); is `tierml registry serve` running "
                              "there?") from None
        finally:
            conn.close()
        if status >= 400 and status not in allow:
            self._refused(method, path, status, data)
        return status, data

    def _refused(self, method: str, path: str, status: int, data: bytes) -> None:
        try:
            message = json.loads(data)["error"]
        except (ValueError, KeyError, TypeError):
            message = data[:200].decode(errors="replace")
        if status in (401, 403):
            message += " (check --token, or $TIERML_REGISTRY_TOKEN)"
        text = f"the registry at {self.url} refused {method} {path} ({status}): {message}"
        raise Conflict(text) if status == 409 else TiermlError(text)

    def _json(self, method: str, path: str, payload: Any = None) -> Any:
        body = None if payload is None else json.dumps(payload).encode()
        _, data = self.request(method, path, body, {"content-type": "application/json"} if body else None)
        return json.loads(data) if data else None

    def has_blob(self, digest: str) -> bool:
        status, _ = self.request("HEAD", f"/v1/blobs/{digest}", allow=(404,))
        return status != 404

    def put_blob(self, path: Path, digest: str) -> BlobRef:
        """Upload a file as the blob `digest` (its sha256), read from disk in chunks."""
        with path.open("rb") as stream:
            headers = {"content-type": "application/octet-stream", "content-length": str(path.stat().st_size)}
            _, data = self.request("PUT", f"/v1/blobs/{digest}", stream, headers)
        return BlobRef.model_validate_json(data)

    def publish(self, signed: Signed) -> ReleaseRow:
        """Commit a signed release manifest (its blobs uploaded first)."""
        return ReleaseRow.model_validate(self._json("POST", "/v1/releases", signed.model_dump(mode="json")))

    def releases(self, model: str | None = None) -> list[ReleaseRow]:
        query = f"?{urlencode({'model': model})}" if model else ""
        return [ReleaseRow.model_validate(r) for r in self._json("GET", f"/v1/releases{query}")]

    def manifest(self, model: str, version: int) -> Signed:
        _, data = self.request("GET", f"/v1/releases/{quote(model, safe='')}/{version}")
        return Signed.model_validate_json(data)

    def set_desired(self, group: str, document: GroupDocument) -> int:
        """Replace a group's desired state; its new revision."""
        found = self._json("PUT", f"/v1/groups/{quote(group, safe='')}/desired", document.model_dump(mode="json"))
        return int(found["revision"])

    def groups(self) -> list[GroupRow]:
        return [GroupRow.model_validate(g) for g in self._json("GET", "/v1/groups")]
