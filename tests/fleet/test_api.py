"""The control-plane API over real HTTP on 127.0.0.1: tokens and roles, blobs (upload, ranges, resume, limits),
signed releases (foreign keys, tampering, a race for one version), device reports and records."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time

import pytest

from tests.support.registry import bearer, publish, signed_release, upload
from tests.support.serving import call
from tierml.files import sha256_bytes
from tierml.fleet.server import BackgroundControlPlane
from tierml.registry.signing import Signed, parse_public, verify
from tierml.serve.http import FILE_CHUNK


def _error(body: bytes) -> str:
    payload = json.loads(body)
    assert set(payload) == {"error"} and "Traceback" not in payload["error"]
    return payload["error"]


# --------------------------------------------------------------------------------------------- tokens and roles
ROUTES = [  # (method, path, the role it needs; None: open)
    ("GET", "/v1/health", None),
    ("PUT", f"/v1/blobs/{'0' * 64}", "publisher"),
    ("POST", "/v1/releases", "publisher"),
    ("PUT", "/v1/groups/g/desired", "operator"),
    ("GET", "/v1/groups", "operator"),
    ("GET", "/v1/devices", "operator"),
    ("GET", "/v1/devices/cam-1/desired?group=g", "device"),
    ("POST", "/v1/devices/cam-1/report", "device"),
    ("POST", "/v1/devices/cam-1/records", "device"),
]


@pytest.mark.parametrize(("method", "path", "needs"), ROUTES)
def test_every_route_but_health_needs_a_token_of_its_role(server, method, path, needs):
    status, headers, body = call(server.port, method, path, b"{}")
    if needs is None:
        assert status == 200 and json.loads(body) == {"status": "ok"}
        return
    assert status == 401 and headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer <token>" in _error(body)
    status, _, body = call(server.port, method, path, b"{}", {"authorization": "Bearer not-a-known-token-at-all"})
    assert status == 401
    for role in ("publisher", "operator", "device"):
        status, _, body = call(server.port, method, path, b"{}", bearer(role))
        if role == needs:
            assert status not in (401, 403), body  # past the gate (the empty body may still be refused)
        else:
            assert status == 403, (role, body)
            assert f"a {role} token may not {method}" in _error(body) and f"needs a {needs} token" in _error(body)


def test_blobs_and_releases_are_readable_with_any_token(server, files):
    digest = upload(server.port, b"weights")
    for role in ("publisher", "operator", "device"):
        assert call(server.port, "GET", f"/v1/blobs/{digest}", headers=bearer(role))[2] == b"weights"
        assert call(server.port, "GET", "/v1/releases", headers=bearer(role))[0] == 200


def test_unknown_routes_and_methods_say_what_exists(server):
    status, _, body = call(server.port, "GET", "/v1/nothing", headers=bearer("device"))
    assert status == 404 and "/v1" in _error(body)
    status, headers, body = call(server.port, "DELETE", "/v1/releases", headers=bearer("publisher"))
    assert status == 405 and headers["allow"] == "GET, POST" and "use GET, POST" in _error(body)


# --------------------------------------------------------------------------------------------- blobs
def test_a_blob_is_stored_once_and_a_body_that_does_not_hash_to_its_name_stores_nothing(server):
    data = os.urandom(100_000)
    digest = sha256_bytes(data)
    path = f"/v1/blobs/{digest}"
    status, _, body = call(server.port, "PUT", path, data, bearer("publisher"))
    assert status == 201 and json.loads(body) == {"sha256": digest, "size": len(data)}
    assert call(server.port, "PUT", path, data, bearer("publisher"))[0] == 200  # already stored

    other = os.urandom(1000)
    claimed = sha256_bytes(other)
    status, _, body = call(server.port, "PUT", f"/v1/blobs/{claimed}", other[:-1], bearer("publisher"))  # truncated
    assert status == 400 and "damaged or truncated" in _error(body)
    assert call(server.port, "HEAD", f"/v1/blobs/{claimed}", headers=bearer("device"))[0] == 404
    store = server.server.registry.blobs
    assert list(store.digests()) == [digest] and not any((store.root / ".incoming").iterdir())
    # the same check when the blob is already stored: a damaged resend is refused, not silently accepted
    status, _, body = call(server.port, "PUT", path, data[:-1], bearer("publisher"))
    assert status == 400 and "damaged or truncated" in _error(body)

    status, _, body = call(server.port, "PUT", "/v1/blobs/not-a-digest", b"x", bearer("publisher"))
    assert status == 400 and "64 lowercase hex digits" in _error(body)


def test_ranges_give_206_with_the_right_bytes_and_past_the_end_is_416(server):
    data = os.urandom(300_000)
    digest = upload(server.port, data)
    path, device = f"/v1/blobs/{digest}", bearer("device")

    status, headers, body = call(server.port, "GET", path, headers=device)
    assert status == 200 and body == data
    assert headers["etag"] == f'"{digest}"' and headers["accept-ranges"] == "bytes"
    assert headers["cache-control"] == "public, max-age=31536000, immutable"
    cases = {"bytes=100-199": (100, 199), "bytes=299990-": (299990, 299999), "bytes=-16": (299984, 299999),
             "bytes=299000-999999": (299000, 299999)}
    for spec, (first, last) in cases.items():
        status, headers, body = call(server.port, "GET", path, headers={**device, "range": spec})
        assert status == 206, spec
        assert headers["content-range"] == f"bytes {first}-{last}/{len(data)}"
        assert body == data[first:last + 1] and int(headers["content-length"]) == last - first + 1
    for spec in ("bytes=300000-", "bytes=-0"):
        status, headers, body = call(server.port, "GET", path, headers={**device, "range": spec})
        assert status == 416 and headers["content-range"] == f"bytes */{len(data)}" and "300000" in _error(body)
    status, _, body = call(server.port, "GET", path, headers={**device, "range": "bytes=0-1,5-6"})
    assert status == 200 and body == data  # several ranges: ignored, the whole blob (as RFC 9110 allows)

    status, headers, body = call(server.port, "HEAD", path, headers=device)
    assert status == 200 and body == b"" and int(headers["content-length"]) == len(data)
    status, headers, body = call(server.port, "GET", path, headers={**device, "if-none-match": f'"{digest}"'})
    assert status == 304 and body == b"" and "content-length" not in headers
    status, _, body = call(server.port, "GET", f"/v1/blobs/{'a' * 64}", headers=device)
    assert status == 404 and "not in the registry" in _error(body)


def _raw_get(port: int, path: str, headers: dict[str, str]) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    lines = [f"GET {path} HTTP/1.1", "host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock


def _read_head(sock: socket.socket) -> tuple[str, bytes]:
    """The response head and whatever body bytes came with it."""
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before the response head"
        buffer += chunk
    head, _, rest = buffer.partition(b"\r\n\r\n")
    return head.decode("latin-1"), rest


def test_a_download_cut_off_halfway_resumes_with_a_range_and_equals_the_blob(server):
    """A slow reader of a large blob holds the server to a chunk at a time (it keeps serving others meanwhile);
    cut off, the client resumes from the bytes it has and ends with the blob, hash and all."""
    data = os.urandom(24 * 1024 * 1024)
    digest = upload(server.port, data)
    path, device = f"/v1/blobs/{digest}", bearer("device")

    sock = _raw_get(server.port, path, device)
    head, received = _read_head(sock)
    assert head.startswith("HTTP/1.1 200") and f"content-length: {len(data)}" in head
    while len(received) < len(data) // 3:
        received += sock.recv(65536)
        if len(received) < 1 << 20:
            assert call(server.port, "GET", "/v1/health")[0] == 200  # others are answered while it waits
            time.sleep(0.2)
            buffered = max(c.transport.get_write_buffer_size() for c in list(server.server.http.connections))
            assert buffered <= 2 * FILE_CHUNK  # not the 24 MB: the rest waits on disk until the client reads
    sock.close()  # the link drops

    status, headers, rest = call(server.port, "GET", path, headers={**device, "range": f"bytes={len(received)}-"})
    assert status == 206 and headers["content-range"] == f"bytes {len(received)}-{len(data) - 1}/{len(data)}"
    assert hashlib.sha256(received + rest).hexdigest() == digest


def test_a_body_over_the_routes_limit_is_413_before_it_is_read(files):
    with BackgroundControlPlane(files.options(max_blob_bytes=1 << 20, max_json_bytes=4096)) as server:
        for method, path, size, hint in (("PUT", f"/v1/blobs/{'0' * 64}", 2 << 20, "--max-blob-mb"),
                                         ("POST", "/v1/releases", 10_000, "--max-json-mb")):
            with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:  # the head alone
                sock.sendall(f"{method} {path} HTTP/1.1\r\nhost: x\r\ncontent-length: {size}\r\n"
                             f"authorization: {bearer('publisher')['authorization']}\r\n\r\n".encode())
                head, body = _read_head(sock)
            assert head.startswith("HTTP/1.1 413"), head
            assert hint in json.loads(body)["error"]
        data = os.urandom(1 << 20)  # exactly the limit: taken
        assert upload(server.port, data) == sha256_bytes(data)


def test_a_body_without_the_routes_token_is_refused_on_its_head(server):
    """Nobody without a publisher token gets the server to hold an upload in memory: the head alone is answered."""
    for auth, status in (("", 401), (f"authorization: {bearer('device')['authorization']}\r\n", 403)):
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(f"PUT /v1/blobs/{'0' * 64} HTTP/1.1\r\nhost: x\r\ncontent-length: {1 << 30}\r\n"
                         f"{auth}\r\n".encode())
            head, body = _read_head(sock)
        assert head.startswith(f"HTTP/1.1 {status}"), head
        assert "token" in json.loads(body)["error"]


# --------------------------------------------------------------------------------------------- releases
def test_a_signed_release_is_published_over_http_and_its_manifest_verifies(server, files):
    signed = signed_release(server.port, files.publisher_key)
    status, row = publish(server.port, signed)
    assert status == 201 and (row["model"], row["version"]) == ("digits", 1)
    status, headers, body = call(server.port, "GET", "/v1/releases/digits/1", headers=bearer("device"))
    assert status == 200 and headers["x-manifest-sha256"] == row["manifest_sha256"] == sha256_bytes(body)
    document = verify(Signed.model_validate_json(body), [parse_public(files.publisher_public)], "manifest")
    assert document == signed.document()
    status, _, body = call(server.port, "GET", "/v1/releases?model=digits", headers=bearer("device"))
    assert [(r["model"], r["version"]) for r in json.loads(body)] == [("digits", 1)]
    assert call(server.port, "GET", "/v1/releases/digits/2", headers=bearer("device"))[0] == 404
    assert call(server.port, "GET", "/v1/releases/digits/two", headers=bearer("device"))[0] == 400


def test_a_manifest_signed_by_another_key_or_changed_after_signing_is_refused(server, files, tmp_path):
    from tierml.registry.signing import keygen

    keygen(tmp_path / "stranger.key")
    status, _, body = call(server.port, "POST", "/v1/releases",
                           signed_release(server.port, tmp_path / "stranger.key").model_dump_json(),
                           bearer("publisher"))
    assert status == 403 and "not by a publisher key this registry trusts" in _error(body)
    assert "--trust" in _error(body)

    signed = signed_release(server.port, files.publisher_key)
    tampered = signed.model_copy(update={"payload": signed.payload.replace('"version":1', '"version":7')})
    status, _, body = call(server.port, "POST", "/v1/releases", tampered.model_dump_json(), bearer("publisher"))
    assert status == 403 and "changed after it was signed" in _error(body)
    assert json.loads(call(server.port, "GET", "/v1/releases", headers=bearer("device"))[2]) == []


def test_a_release_whose_blobs_are_not_uploaded_or_whose_body_is_not_a_manifest_is_a_400(server, files):
    signed = signed_release(server.port, files.publisher_key)
    server.server.registry.blobs.delete(signed.document()["variants"][0]["artifacts"][0]["sha256"])
    status, _, body = call(server.port, "POST", "/v1/releases", signed.model_dump_json(), bearer("publisher"))
    assert status == 400 and "upload them first" in _error(body)
    status, _, body = call(server.port, "POST", "/v1/releases", b"{not json", bearer("publisher"))
    assert status == 400 and "not valid JSON" in _error(body)
    status, _, body = call(server.port, "POST", "/v1/releases", b'{"payload": 3}', bearer("publisher"))
    assert status == 400 and "field 'payload'" in _error(body)


def test_two_publishers_racing_for_one_version_get_one_201_and_one_409(server, files):
    manifests = [signed_release(server.port, files.publisher_key, payload=os.urandom(1000)) for _ in range(2)]
    start = threading.Barrier(2)
    outcomes: dict[int, tuple[int, dict]] = {}

    def publisher(index: int) -> None:
        start.wait()
        outcomes[index] = publish(server.port, manifests[index])

    threads = [threading.Thread(target=publisher, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(status for status, _ in outcomes.values()) == [201, 409]
    winner = next(i for i, (status, _) in outcomes.items() if status == 201)
    loser = outcomes[1 - winner][1]
    assert "already published" in loser["error"] and "next version" in loser["error"]
    _, _, body = call(server.port, "GET", "/v1/releases/digits/1", headers=bearer("device"))
    assert Signed.model_validate_json(body) == manifests[winner]


# --------------------------------------------------------------------------------------------- devices
def test_reports_replace_each_other_and_a_resent_record_is_stored_once(server):
    device = bearer("device")
    for state in ("downloading", "committed"):
        report = {"group": "lab", "device_class": "raspberry-pi-5", "model": "digits", "version": 1, "slot": "a",
                  "state": state, "health": "ok", "last_error": None, "stats": {"requests": 3}}
        assert call(server.port, "POST", "/v1/devices/cam-1/report", report, device)[0] == 204
    status, _, body = call(server.port, "GET", "/v1/devices?group=lab", headers=bearer("operator"))
    (row,) = json.loads(body)
    assert status == 200 and row["device"] == "cam-1" and row["report"]["state"] == "committed"
    status, _, body = call(server.port, "POST", "/v1/devices/cam-1/report", {"state": "x"}, device)
    assert status == 400 and "group and device_class" in _error(body)

    records = [{"key": f"cam-1:{seq}", "seq": seq, "kind": "inference", "body": {"ms": seq}} for seq in (1, 2, 3)]
    status, _, body = call(server.port, "POST", "/v1/devices/cam-1/records", {"records": records[:2]}, device)
    assert status == 200 and json.loads(body) == {"stored": 2, "acked_seq": 2}
    status, _, body = call(server.port, "POST", "/v1/devices/cam-1/records", {"records": records}, device)
    assert json.loads(body) == {"stored": 1, "acked_seq": 3}  # the first two were resent: stored once
    assert [r.seq for r in server.server.registry.index.records("cam-1")] == [1, 2, 3]
    status, _, body = call(server.port, "POST", "/v1/devices/cam-1/records", {"records": [{"seq": 1}]}, device)
    assert status == 400 and "field 'key'" in _error(body)
    status, _, body = call(server.port, "POST", "/v1/devices/bad%20name/report", {}, device)
    assert status == 400 and "device name 'bad name' is not valid" in _error(body)
