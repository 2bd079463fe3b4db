"""The registry's store: content-addressed blobs, signed manifests, publish as one commit, fsck and gc."""

from __future__ import annotations

import errno
import os
from datetime import UTC, datetime, timedelta
from typing import BinaryIO

import pytest

from tests.support.publisher import store_payload
from tierml.errors import TiermlError
from tierml.registry import blobs
from tierml.registry.index import Conflict
from tierml.registry.manifest import DesiredState
from tierml.registry.signing import check_fresh, keygen, load_private, parse_public, sign, verify
from tierml.registry.store import Registry


@pytest.fixture
def key(tmp_path):
    public = keygen(tmp_path / "keys" / "registry.key")
    return load_private(tmp_path / "keys" / "registry.key"), parse_public(public)


def test_a_signature_covers_every_byte_and_only_trusted_keys_count(tmp_path, key):
    private, public = key
    signed = sign({"model": "digits", "revision": 3}, private)
    assert verify(signed, [public], "doc") == {"model": "digits", "revision": 3}
    tampered = signed.model_copy(update={"payload": signed.payload.replace("3", "4")})
    with pytest.raises(TiermlError, match="changed after it was signed"):
        verify(tampered, [public], "doc")
    other = parse_public(keygen(tmp_path / "other.key"))
    with pytest.raises(TiermlError, match="none of which this device trusts"):
        verify(signed, [other], "doc")
    with pytest.raises(TiermlError, match="never overwritten"):
        keygen(tmp_path / "other.key")
    assert oct(os.stat(tmp_path / "other.key").st_mode & 0o777) == "0o600"


def test_replayed_and_expired_desired_states_are_refused():
    state = DesiredState.issue(60, group="g", device="d1", revision=5, model="digits", version=2)
    check_fresh(state.model_dump(), 5, "desired state")  # the same revision again is a no-change poll
    with pytest.raises(TiermlError, match="replayed"):
        check_fresh(state.model_dump(), 6, "desired state")
    later = datetime.now(UTC) + timedelta(seconds=61)
    with pytest.raises(TiermlError, match="expired"):
        check_fresh(state.model_dump(), None, "desired state", now=later)


def test_blobs_are_stored_once_under_their_digest_and_a_wrong_claim_stores_nothing(tmp_path):
    registry = Registry.open(tmp_path / "reg")
    first = registry.blobs.put_bytes(b"abc")
    assert registry.blobs.put_bytes(b"abc") == first and list(registry.blobs.digests()) == [first.sha256]
    with pytest.raises(TiermlError, match="damaged or truncated"):
        registry.blobs.put_chunks([b"ab"], expected=first.sha256[::-1])
    assert list(registry.blobs.digests()) == [first.sha256]
    assert not any((registry.blobs.root / ".incoming").iterdir())


@pytest.fixture
def registry(tmp_path, index_spec):
    opened = Registry.open(tmp_path / "reg", index_spec)
    yield opened
    opened.close()


def test_publish_commits_whole_releases_and_the_second_publisher_of_a_version_gets_a_conflict(tmp_path, key,
                                                                                             registry):
    private, public = key
    registry.publish(store_payload(registry, tmp_path, 1, b"model-bytes"), private)
    with pytest.raises(Conflict, match="already published"):
        registry.publish(store_payload(registry, tmp_path, 1, b"other bytes"), private)
    assert [r.version for r in registry.index.releases("digits")] == [1]
    assert registry.release("digits", 1, [public]).variant_for("raspberry-pi-5").name == "fp32"
    assert registry.index.next_version("digits") == 2
    with pytest.raises(TiermlError, match="no release digits v9"):
        registry.release("digits", 9)


def test_fsck_finds_a_damaged_blob_and_gc_keeps_what_releases_reference(tmp_path, key, registry):
    private, public = key
    release = store_payload(registry, tmp_path, 1, b"model-bytes")
    registry.publish(release, private)
    orphan = registry.blobs.put_bytes(b"left by an interrupted publish")
    report = registry.fsck([public])
    assert report.clean and report.unreferenced == [orphan.sha256]
    assert registry.gc(grace_s=3600) == []  # too young: a publish may still be about to reference it
    os.utime(registry.blobs.path(orphan.sha256), (0, 0))
    assert registry.gc(grace_s=3600) == [orphan.sha256]
    assert registry.fsck([public]).clean
    model = registry.blobs.path(release.variants[0].artifacts[0].sha256)
    os.chmod(model, 0o644)
    model.write_bytes(b"bit rot")
    report = registry.fsck([public])
    assert not report.clean and "missing or damaged" in report.problems[0]
    with pytest.raises(TiermlError, match="garbage collection waits"):
        registry.gc()


class _FullDisk:
    """A file with room for `room` more bytes: the write that goes past it stores what fits, then fails as a full
    disk does."""

    def __init__(self, out: BinaryIO, room: int) -> None:
        self.out, self.room = out, room

    def write(self, data: bytes) -> int:
        if len(data) > self.room:
            self.out.write(data[:self.room])
            self.room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.out.write(data)

    def flush(self) -> None:
        self.out.flush()

    def fileno(self) -> int:
        return self.out.fileno()


@pytest.mark.parametrize("full_during", ["artifact", "manifest"])
def test_a_full_disk_during_publish_fails_with_a_clear_error_and_changes_nothing(tmp_path, key, registry, monkeypatch,
                                                                                 full_during):
    private, public = key
    registry.publish(store_payload(registry, tmp_path, 1, b"v1"), private)
    payload = os.urandom(3 << 20)
    receive = blobs._receive
    room = 1 << 20 if full_during == "artifact" else 100  # a blob goes in 1 MiB chunks; a manifest is ~600 bytes
    release = None if full_during == "artifact" else store_payload(registry, tmp_path, 2, payload)
    before = (registry.index.releases(), sorted(registry.blobs.digests()))
    monkeypatch.setattr(blobs, "_receive", lambda chunks, out: receive(chunks, _FullDisk(out, room)))
    with pytest.raises(TiermlError, match=r"no space left on the registry's disk .* nothing was stored"):
        release = release or store_payload(registry, tmp_path, 2, payload)
        registry.publish(release, private)
    assert (registry.index.releases(), sorted(registry.blobs.digests())) == before
    assert not any((registry.blobs.root / ".incoming").iterdir())
    report = registry.fsck([public])
    assert report.clean and report.releases == 1
    monkeypatch.undo()  # space is free again: the same publish goes through
    registry.publish(release or store_payload(registry, tmp_path, 2, payload), private)
    assert [r.version for r in registry.index.releases()] == [1, 2] and registry.fsck([public]).clean
