"""Publish under `kill -9`: a real publisher process (tests/support/publisher.py) killed at random points 100 times,
restarted each time. Whatever the point, a visible release is whole (every blob present and re-hashed), no partial
version is visible, fsck is clean, and gc with no grace removes exactly the leftovers.

    PYTHONPATH=. python -m pytest -m slow -s tests/registry/test_crash.py
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.paths import ROOT
from tests.support.publisher import MODEL
from tierml.registry.signing import keygen, parse_public
from tierml.registry.store import Registry

KILLS = 100
MAX_DELAY_S = 0.1  # after the child is ready; a release takes ~20 ms here, so kills land in its first few


@dataclass
class Attempts:
    """What the publisher's progress file says it did, version by version."""

    stored: dict[int, list[str]] = field(default_factory=dict)  # the last attempt's blobs, in order
    reached_row: set[int] = field(default_factory=set)
    committed: set[int] = field(default_factory=set)

    @classmethod
    def read(cls, lines: list[list[str]]) -> Attempts:
        found = cls()
        for _, event, version, *rest in lines:
            if event == "begin":
                found.stored[int(version)] = []
            elif event == "stored":
                found.stored[int(version)].append(rest[1])
            elif event == "row":
                found.reached_row.add(int(version))
            elif event == "committed":
                found.committed.add(int(version))
        return found


def _progress(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def _where(lines: list[list[str]], visible: set[int]) -> str:
    """Where a kill landed, from the last progress line the child wrote before it."""
    _, event, version, *rest = lines[-1]
    if event == "stored":
        artifacts = next(int(line[3]) for line in reversed(lines) if line[1:3] == ["begin", version])
        return "between blobs" if int(rest[0]) + 1 < artifacts else "after the last blob, before the manifest"
    if event == "row":
        return "row committed, not yet reported" if int(version) in visible else "manifest stored, row not committed"
    return {"ready": "before the first release", "begin": "writing the source files (registry untouched)",
            "sources": "before the first blob", "blob": "storing a blob", "manifest": "signing/storing the manifest",
            "committed": "after the row, before the next release"}[event]


def _start(root: Path, key: Path, progress: Path, index: str | None, seed: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "tests.support.publisher", str(root), str(key), str(progress), "--seed", str(seed)]
    with log.open("ab") as out:
        return subprocess.Popen([*command, *(["--index", index] if index else [])], cwd=ROOT, env=env,
                                stdout=out, stderr=out)


def _wait_ready(child: subprocess.Popen, progress: Path, log: Path, timeout_s: float = 60) -> None:
    """Until the child says it is ready (its `ready PID` line); it may have written more by the time we look."""
    deadline, ready = time.monotonic() + timeout_s, f" ready {child.pid}\n".encode()
    while not (progress.exists() and ready in progress.read_bytes()):
        assert child.poll() is None and time.monotonic() < deadline, f"the publisher did not start:\n{log.read_text()}"
        time.sleep(0.005)


def _check_visible(registry: Registry, attempts: Attempts, checked: set[int]) -> set[int]:
    """Every visible release is one the child reached the row for, whole, with the blobs it stored; returns them."""
    visible = {r.version for r in registry.index.releases(MODEL)}
    assert visible == set(range(1, len(visible) + 1)), f"a gap in the visible versions: {sorted(visible)}"
    assert attempts.committed <= visible <= attempts.reached_row, "a version visible the child never committed"
    for version in sorted(visible - checked):
        release = registry.release(MODEL, version)
        digests = [a.sha256 for a in release.variants[0].artifacts]
        assert digests == attempts.stored[version], f"v{version} is not what its publisher stored"
        assert all(registry.blobs.verify(d) for d in digests), f"v{version} is visible with a missing/damaged blob"
    return visible


@pytest.mark.slow
def test_kill_9_at_random_points_during_publish_leaves_whole_releases_only(tmp_path, index_spec):
    root, key, progress, log = tmp_path / "reg", tmp_path / "publisher.key", tmp_path / "progress", tmp_path / "log"
    public = parse_public(keygen(key))
    rng, landed, checked, temp_files = random.Random(16), Counter(), set(), 0
    Registry.open(root, index_spec).close()
    incoming = root / "blobs" / "sha256" / ".incoming"
    for kill in range(KILLS):
        child = _start(root, key, progress, index_spec, kill, log)
        try:
            _wait_ready(child, progress, log)
            time.sleep(rng.uniform(0, MAX_DELAY_S))
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=30)
        lines = _progress(progress)
        left = len(list(incoming.iterdir())) if incoming.exists() else 0
        registry = Registry.open(root, index_spec)
        try:
            checked = _check_visible(registry, Attempts.read(lines), checked)
        finally:
            registry.close()
        where = _where(lines, checked)
        landed[where + (" (a half-written temp file left)" if left > temp_files else "")] += 1
        temp_files = left

    registry = Registry.open(root, index_spec)
    try:
        report = registry.fsck([public])
        assert report.clean, report.problems
        assert report.releases == len(checked)
        removed = registry.gc(grace_s=0)
        assert sorted(removed) == report.unreferenced
        after = registry.fsck([public])
        assert after.clean and after.unreferenced == [] and after.releases == report.releases
        assert not any(incoming.iterdir())
    finally:
        registry.close()
    if index_spec is None:
        assert sqlite3.connect(root / "index.db").execute("PRAGMA integrity_check").fetchone() == ("ok",)
    print(f"\n{KILLS} kills -9 during publish ({'PostgreSQL' if index_spec else 'SQLite'} index): "
          f"{len(checked)} releases visible, all whole; {len(report.unreferenced)} unreferenced blobs and "
          f"{temp_files} temp files left, removed by gc(grace 0); where the kills landed:")
    for where, count in landed.most_common():
        print(f"  {count:3d}  {where}")
