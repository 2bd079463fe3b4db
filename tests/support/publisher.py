"""A publisher as its own process: releases of random artifacts published into a registry, one after another,
with a progress file that says how far it got (so a test that kills it can tell where the kill landed).

    python -m tests.support.publisher ROOT KEY PROGRESS [--index URL] [--seed N]

Progress lines are `<time> <event> <version> [<detail>]`, written unbuffered (a SIGKILL loses none of them):
`ready`, `begin V N` (N artifacts), `sources V`, `blob V K`, `stored V K <sha256>`, `manifest V`, `row V`,
`committed V`.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import time
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

from tierml.registry.index import Conflict, Index, ReleaseRow
from tierml.registry.manifest import Artifact, Release, ReleaseVariant
from tierml.registry.signing import load_private
from tierml.registry.store import Registry

MODEL = "digits"
DEVICE = "raspberry-pi-5"
MIN_SIZE, MAX_SIZE = 1 << 10, 6 << 20


def release_of(version: int, artifacts: list[Artifact]) -> Release:
    """A one-variant release of `artifacts` for DEVICE."""
    variant = ReleaseVariant(name="fp32", format="onnx", precision="fp32", artifacts=artifacts)
    return Release(model=MODEL, version=version, devices={DEVICE: "fp32"}, variants=[variant])


def store_payload(registry: Registry, folder: Path, version: int, payload: bytes) -> Release:
    """A release of one artifact holding `payload`, its blob stored (not yet published)."""
    path = folder / f"payload-{os.getpid()}-{version}.bin"
    path.write_bytes(payload)
    return release_of(version, [registry.store(path, "model.onnx")])


def race(root: Path, index: str | None, key_path: Path, versions: int, barrier: Barrier, results: Queue) -> None:
    """Publish versions 1..`versions`, each at the same moment as the other racers; put (version, payload digest
    or "conflict") on `results` for each."""
    registry = Registry.open(root, index)
    key = load_private(key_path)
    try:
        for version in range(1, versions + 1):
            release = store_payload(registry, root.parent, version, f"{os.getpid()} v{version}".encode())
            barrier.wait(timeout=60)
            try:
                registry.publish(release, key)
                results.put((version, release.variants[0].artifacts[0].sha256))
            except Conflict:
                results.put((version, "conflict"))
    finally:
        registry.close()


class Progress:
    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def __call__(self, event: str, *fields: object) -> None:
        os.write(self._fd, " ".join([f"{time.time():.6f}", event, *map(str, fields)]).encode() + b"\n")


def _log_commit(index: Index, progress: Progress) -> None:
    """Say `row V` just before the index row's transaction starts (the manifest blob is stored by then)."""
    add_release = index.add_release

    def logged(row: ReleaseRow) -> None:
        progress("row", row.version)
        add_release(row)

    index.add_release = logged  # type: ignore[method-assign]


def publish_forever(registry: Registry, key_path: Path, progress: Progress, scratch: Path, rng: random.Random,
                    pool: bytes) -> None:
    key = load_private(key_path)
    _log_commit(registry.index, progress)
    while True:
        version = registry.index.next_version(MODEL)
        sizes = [round(math.exp(rng.uniform(math.log(MIN_SIZE), math.log(MAX_SIZE)))) for _ in range(rng.randint(2, 5))]
        progress("begin", version, len(sizes))
        sources = []
        for k, size in enumerate(sizes):  # a unique head on a slice of the pool: distinct blobs, cheap to make
            sources.append(scratch / f"part-{k}.bin")
            start = rng.randrange(len(pool) - size)
            sources[-1].write_bytes(rng.randbytes(32) + pool[start:start + size])
        progress("sources", version)
        artifacts = []
        for k, source in enumerate(sources):
            progress("blob", version, k)
            artifacts.append(registry.store(source, source.name))
            progress("stored", version, k, artifacts[-1].sha256)
        progress("manifest", version)
        registry.publish(release_of(version, artifacts), key)
        progress("committed", version)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("key", type=Path)
    parser.add_argument("progress", type=Path)
    parser.add_argument("--index", default=None)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    scratch = args.progress.parent / "scratch"  # the artifacts' source files, rewritten for every release
    scratch.mkdir(exist_ok=True)
    registry = Registry.open(args.root, args.index)
    progress = Progress(args.progress)
    rng = random.Random(args.seed)
    pool = rng.randbytes(MAX_SIZE + 1)
    progress("ready", os.getpid())
    publish_forever(registry, args.key, progress, scratch, rng, pool)


if __name__ == "__main__":
    main()
