"""The registry's index, the same suite on each backend (SQLite; PostgreSQL on a throwaway server, marked slow):
releases, groups, devices, records and events, with writers in other threads and processes."""

from __future__ import annotations

import multiprocessing
import threading
from collections import defaultdict

import pytest

from tests.support.publisher import race
from tierml.errors import TiermlError
from tierml.registry.index import Conflict, DeviceRow, Record, ReleaseRow, now, open_index
from tierml.registry.signing import keygen
from tierml.registry.store import Registry


@pytest.fixture
def index(tmp_path, index_spec):
    opened = open_index(index_spec, tmp_path)
    yield opened
    opened.close()


def _row(model: str, version: int) -> ReleaseRow:
    return ReleaseRow(model=model, version=version, manifest_sha256=f"{version:064x}", created=now())


def test_releases_are_listed_oldest_first_and_a_version_is_published_once(index):
    for model, version in [("digits", 2), ("audio", 1), ("digits", 1)]:
        index.add_release(_row(model, version))
    with pytest.raises(Conflict, match="digits version 2 is already published"):
        index.add_release(_row("digits", 2))
    assert [(r.model, r.version) for r in index.releases()] == [("audio", 1), ("digits", 1), ("digits", 2)]
    assert [r.version for r in index.releases("digits")] == [1, 2]
    assert index.release("digits", 2).manifest_sha256 == _row("digits", 2).manifest_sha256
    assert index.release("digits", 3) is None
    assert (index.next_version("digits"), index.next_version("new")) == (3, 1)


def test_group_revisions_only_grow_and_the_document_is_replaced(index):
    assert index.group("field") is None
    assert index.set_group("field", {"model": "digits", "version": 1}) == 1
    assert index.set_group("lab", {"model": "digits", "version": 1}) == 1
    assert index.set_group("field", {"model": "digits", "version": 2}) == 2
    assert index.group("field").document == {"model": "digits", "version": 2}
    assert [(g.name, g.revision) for g in index.groups()] == [("field", 2), ("lab", 1)]


def test_a_device_report_replaces_the_last_one(index):
    for device, group, state in [("d1", "field", "staged"), ("d2", "lab", "idle"), ("d1", "field", "committed")]:
        index.report(DeviceRow(device=device, group=group, device_class="raspberry-pi-5", last_seen=now(),
                               report={"state": state}))
    assert [(d.device, d.report["state"]) for d in index.devices()] == [("d1", "committed"), ("d2", "idle")]
    assert [d.device for d in index.devices("lab")] == ["d2"]


def test_records_are_stored_once_per_key_and_read_in_the_devices_order(index):
    records = [Record(key=f"d1-{i}", seq=i, kind="inference", body={"ms": i}) for i in range(5)]
    assert index.add_records("d1", list(reversed(records[:3]))) == 3
    assert index.add_records("d1", records) == 2  # the first three were a resend
    assert index.add_records("d1", []) == 0
    assert index.add_records("d2", records[:1]) == 1  # keys are per device
    assert index.records("d1") == records
    assert [r.key for r in index.records("d2")] == ["d1-0"]


def test_events_keep_their_order_per_rollout(index):
    for rollout, message in [("r1", "wave 1 started"), ("r2", "started"), ("r1", "wave 1 baked")]:
        index.add_event(rollout, message)
    assert [(e.id, e.message) for e in index.events("r1")] == [(1, "wave 1 started"), (3, "wave 1 baked")]
    assert [e.rollout for e in index.events()] == ["r1", "r2", "r1"]


def test_what_was_written_is_there_after_reopening(tmp_path, index_spec):
    first = open_index(index_spec, tmp_path)
    first.add_release(_row("digits", 1))
    first.set_group("field", {"version": 1})
    first.close()
    again = open_index(index_spec, tmp_path)
    assert [r.version for r in again.releases()] == [1]
    assert again.set_group("field", {"version": 2}) == 2
    again.close()


def test_two_processes_publishing_the_same_version_one_wins_the_other_gets_a_conflict(tmp_path, index_spec):
    keygen(tmp_path / "publisher.key")
    Registry.open(tmp_path / "reg", index_spec).close()  # the schema exists before the racers start
    spawn = multiprocessing.get_context("spawn")
    barrier, results, versions = spawn.Barrier(2), spawn.Queue(), 4
    racers = [spawn.Process(target=race, args=(tmp_path / "reg", index_spec, tmp_path / "publisher.key", versions,
                                               barrier, results)) for _ in range(2)]
    for racer in racers:
        racer.start()
    outcomes = defaultdict(list)
    for _ in range(2 * versions):
        version, outcome = results.get(timeout=120)
        outcomes[version].append(outcome)
    for racer in racers:
        racer.join(timeout=60)
        assert racer.exitcode == 0
    registry = Registry.open(tmp_path / "reg", index_spec)
    try:
        for version in range(1, versions + 1):
            winner = [o for o in outcomes[version] if o != "conflict"]
            assert len(winner) == 1 and outcomes[version].count("conflict") == 1, outcomes[version]
            assert registry.release("digits", version).variants[0].artifacts[0].sha256 == winner[0]
        assert registry.fsck().clean
    finally:
        registry.close()


def test_eight_threads_bumping_one_group_get_distinct_growing_revisions(tmp_path, index_spec):
    threads, bumps = 8, 5
    open_index(index_spec, tmp_path).close()
    barrier, lock, seen = threading.Barrier(threads), threading.Lock(), {}

    def bump(writer: int) -> None:
        own = open_index(index_spec, tmp_path)  # a connection of its own: the database serialises, not our lock
        try:
            barrier.wait(timeout=60)
            revisions = [own.set_group("field", {"writer": writer, "bump": b}) for b in range(bumps)]
        finally:
            own.close()
        with lock:
            seen[writer] = revisions

    workers = [threading.Thread(target=bump, args=(w,)) for w in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert len(seen) == threads
    assert sorted(r for revisions in seen.values() for r in revisions) == list(range(1, threads * bumps + 1))
    assert all(revisions == sorted(revisions) for revisions in seen.values())
    index = open_index(index_spec, tmp_path)
    last = index.group("field")
    index.close()
    writer = next(w for w, revisions in seen.items() if threads * bumps in revisions)
    assert (last.revision, last.document) == (threads * bumps, {"writer": writer, "bump": bumps - 1})


def test_an_index_url_the_registry_does_not_know_is_refused_without_echoing_it(tmp_path):
    with pytest.raises(TiermlError, match=r"'mysql:\.\.\.' is not an index") as caught:
        open_index("mysql://admin:secret@db/registry", tmp_path)
    assert "secret" not in str(caught.value)


def test_an_unreachable_postgres_is_named_without_its_password(tmp_path):
    pytest.importorskip("psycopg", reason="the PostgreSQL index needs psycopg: pip install -e '.[dev]'")
    with pytest.raises(TiermlError, match=r"cannot open the registry index at postgresql://tierml@127\.0\.0\.1:9/r")\
            as caught:
        open_index("postgresql://tierml:secret@127.0.0.1:9/r", tmp_path)
    assert "secret" not in str(caught.value)
