"""Desired states: a no-change poll is a 304 that signs nothing, the ETag moves when (and only when) what the device
should run moves, overrides win per device, the document verifies with the server's key, and it is re-signed before
it expires."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.registry import bearer, publish, signed_release
from tests.support.serving import call
from tierml.errors import TiermlError
from tierml.files import sha256_bytes
from tierml.fleet.desired import DesiredStates, GroupDocument, UnknownRelease, set_group
from tierml.registry.manifest import Release, ReleaseVariant
from tierml.registry.signing import Signed, check_fresh, load_private, parse_public, verify
from tierml.registry.store import Registry


@pytest.fixture
def server(server, files):
    """The server with digits v1 and v2 published (v2 for raspberry-pi-5 only)."""
    publish(server.port, signed_release(server.port, files.publisher_key, 1,
                                        devices=("raspberry-pi-5", "jetson-orin-nano")))
    publish(server.port, signed_release(server.port, files.publisher_key, 2))
    return server


def _set(port: int, group: str, document: dict) -> tuple[int, dict]:
    status, _, body = call(port, "PUT", f"/v1/groups/{group}/desired", document, bearer("operator"))
    return status, json.loads(body)


def _poll(port: int, device: str, group: str = "lab", etag: str | None = None, device_class: str | None = None
          ) -> tuple[int, dict[str, str], bytes]:
    query = f"?group={group}" + (f"&class={device_class}" if device_class else "")
    headers = {**bearer("device"), **({"if-none-match": etag} if etag else {})}
    return call(port, "GET", f"/v1/devices/{device}/desired{query}", headers=headers)


def _document(body: bytes) -> dict:
    return Signed.model_validate_json(body).document()


def test_a_no_change_poll_is_a_304_with_no_body_and_signs_nothing(server):
    assert _set(server.port, "lab", {"model": "digits", "version": 1}) == (200, {"revision": 1})
    status, headers, body = _poll(server.port, "cam-1")
    assert status == 200 and headers["cache-control"] == "no-cache"
    signed = server.server.desired.signed
    for _ in range(3):
        status, again, body = _poll(server.port, "cam-1", etag=headers["etag"])
        assert status == 304 and body == b"" and again["etag"] == headers["etag"]
    assert server.server.desired.signed == signed
    assert _poll(server.port, "cam-1", etag='"something-else"')[0] == 200


def test_the_etag_changes_when_the_groups_release_changes(server):
    _set(server.port, "lab", {"model": "digits", "version": 1})
    _, headers, body = _poll(server.port, "cam-1")
    first = _document(body)
    assert (first["model"], first["version"], first["revision"]) == ("digits", 1, 1)
    assert _set(server.port, "lab", {"model": "digits", "version": 2}) == (200, {"revision": 2})
    status, moved, body = _poll(server.port, "cam-1", etag=headers["etag"])
    assert status == 200 and moved["etag"] != headers["etag"]
    second = _document(body)
    assert (second["model"], second["version"], second["revision"]) == ("digits", 2, 2)
    _, _, manifest = call(server.port, "GET", "/v1/releases/digits/2", headers=bearer("device"))
    assert second["manifest_sha256"] == sha256_bytes(manifest)
    _set(server.port, "lab", {"model": None, "version": None})  # keep what you have
    keep = _document(_poll(server.port, "cam-1")[2])
    assert keep["model"] is None and keep["manifest_sha256"] is None and keep["revision"] == 3


def test_a_devices_override_wins_and_a_change_for_one_device_leaves_the_others_etag(server):
    _set(server.port, "lab", {"model": "digits", "version": 1})
    etags = {d: _poll(server.port, d)[1]["etag"] for d in ("cam-1", "cam-2")}
    status, _ = _set(server.port, "lab", {"model": "digits", "version": 1,
                                          "overrides": {"cam-2": {"model": "digits", "version": 2, "rollout": "r-7"}}})
    assert status == 200
    assert _poll(server.port, "cam-1", etag=etags["cam-1"])[0] == 304  # new revision, same release for cam-1
    status, _, body = _poll(server.port, "cam-2", etag=etags["cam-2"])
    moved = _document(body)
    assert status == 200 and (moved["version"], moved["rollout"], moved["revision"]) == (2, "r-7", 2)
    status, _, body = call(server.port, "GET", "/v1/groups", headers=bearer("operator"))
    (group,) = json.loads(body)
    assert group["revision"] == 2 and group["document"]["overrides"]["cam-2"]["rollout"] == "r-7"


def test_the_desired_state_verifies_with_the_servers_public_key_only(server, files):
    _set(server.port, "lab", {"model": "digits", "version": 1})
    signed = Signed.model_validate_json(_poll(server.port, "cam-1")[2])
    document = verify(signed, [parse_public(files.public)], "desired state")
    assert (document["kind"], document["group"], document["device"]) == ("tierml.desired/v1", "lab", "cam-1")
    check_fresh(document, 1, "desired state")
    lifetime = datetime.fromisoformat(document["expires"]) - datetime.fromisoformat(document["issued"])
    assert lifetime.total_seconds() == 24 * 3600  # the default TTL
    with pytest.raises(TiermlError, match="none of which this device trusts"):
        verify(signed, [parse_public(files.publisher_public)], "desired state")


def test_unknown_groups_releases_and_device_classes_are_refused_with_the_fix(server):
    status, _, body = _poll(server.port, "cam-1", group="nowhere")
    assert status == 404 and "PUT /v1/groups/nowhere/desired" in json.loads(body)["error"]
    status, _, body = call(server.port, "GET", "/v1/devices/cam-1/desired", headers=bearer("device"))
    assert status == 400 and "?group=" in json.loads(body)["error"]
    status, body = _set(server.port, "lab", {"model": "digits", "version": 9})
    assert status == 404 and "digits v9 is not published (versions of digits: 1, 2)" in body["error"]
    status, body = _set(server.port, "lab", {"model": "digits"})
    assert status == 400 and "give model and version together" in body["error"]
    status, body = _set(server.port, "lab", {"model": "digits", "version": 1, "overides": {}})
    assert status == 400 and "overides" in body["error"]

    _set(server.port, "lab", {"model": "digits", "version": 2})
    assert _poll(server.port, "cam-1", device_class="raspberry-pi-5")[0] == 200
    status, _, body = _poll(server.port, "cam-1", device_class="jetson-orin-nano")
    assert status == 409 and "no variant for device class 'jetson-orin-nano' (it covers raspberry-pi-5)" in (
        json.loads(body)["error"])


def test_a_document_is_re_signed_once_less_than_half_its_lifetime_is_left(files):
    """The cache never serves a document close to expiry: past half its TTL a poll gets a fresh one (new ETag,
    later expiry), so a device polling at any interval under half the TTL never holds an expired state."""
    now = [1_000_000.0]
    registry = Registry.open(files.root)
    try:
        model = files.root / "model.onnx"
        model.write_bytes(b"weights")
        variant = ReleaseVariant(name="fp32", format="onnx", precision="fp32",
                                 artifacts=[registry.store(model, "model.onnx")])
        registry.publish(Release(model="digits", version=1, devices={"raspberry-pi-5": "fp32"}, variants=[variant]),
                         load_private(files.publisher_key))
        set_group(registry, "lab", GroupDocument(model="digits", version=1))
        states = DesiredStates(registry, load_private(files.key), ttl_s=100.0, clock=lambda: now[0])
        first = states.current("lab", "cam-1")
        now[0] += 49.0
        assert states.current("lab", "cam-1") is first and states.signed == 1
        now[0] += 2.0
        fresh = states.current("lab", "cam-1")
        assert first is not None and fresh is not None
        assert fresh.etag != first.etag and states.signed == 2
        expires = [datetime.fromisoformat(Signed.model_validate_json(s.body).document()["expires"])
                   for s in (first, fresh)]
        assert expires[1] - expires[0] == timedelta(seconds=51)
        assert expires[1] == datetime.fromtimestamp(now[0] + 100.0, UTC)
        with pytest.raises(UnknownRelease, match="digits v5 is not published"):
            set_group(registry, "lab", GroupDocument(model="digits", version=5))
        assert states.current("nowhere", "cam-1") is None
    finally:
        registry.close()
