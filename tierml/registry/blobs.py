"""Content-addressed blobs on the local filesystem: each stored once under its sha256, immutable, written whole.

    <root>/sha256/<first two hex digits>/<digest>

A blob is written under a hidden temporary name beside its final place, flushed, then renamed: a crash leaves a
temporary file (removed by `sweep`) or the whole blob, never part of one under its digest. Nothing here knows
what a blob holds; manifests say that.
"""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from pydantic import BaseModel

from tierml.errors import TiermlError
from tierml.files import sha256_file, sync_dir

_CHUNK = 1 << 20


class BlobRef(BaseModel):
    sha256: str
    size: int


def _receive(chunks: Iterable[bytes], out: BinaryIO) -> tuple[str, int]:
    """Write the chunks to `out`, hashing them on the way, and flush them to disk: (sha256, size)."""
    digest, size = hashlib.sha256(), 0
    for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
        out.write(chunk)
    out.flush()
    os.fsync(out.fileno())
    return digest.hexdigest(), size


def _check_digest(digest: str) -> str:
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise TiermlError(f"'{digest[:80]}' is not a sha256 digest (64 lowercase hex digits)")
    return digest


class BlobStore:
    """The blobs under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root / "sha256"
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        digest = _check_digest(digest)
        return self.root / digest[:2] / digest

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def size(self, digest: str) -> int:
        return self.path(digest).stat().st_size

    def put_bytes(self, data: bytes) -> BlobRef:
        return self.put_chunks([data])

    def put_file(self, path: Path) -> BlobRef:
        with path.open("rb") as f:
            return self.put_stream(f)

    def put_stream(self, stream: BinaryIO, expected: str | None = None) -> BlobRef:
        return self.put_chunks(iter(lambda: stream.read(_CHUNK), b""), expected)

    def put_chunks(self, chunks: Iterable[bytes], expected: str | None = None) -> BlobRef:
        """Store the concatenated chunks; with `expected`, refuse them (storing nothing) unless that is their sha256."""
        staging = self.root / ".incoming"
        staging.mkdir(exist_ok=True)
        fd, name = tempfile.mkstemp(dir=staging)
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb") as f:
                found, size = _receive(chunks, f)
            if expected is not None and found != expected:
                raise TiermlError(f"the blob's sha256 is {found}, not {expected} as claimed: it was damaged or "
                                  "truncated on the way; nothing was stored, send it again")
            final = self.path(found)
            if final.exists():  # content-addressed: the same bytes are already here
                tmp.unlink()
            else:
                final.parent.mkdir(exist_ok=True)
                os.chmod(tmp, 0o444)  # immutable: a blob is never written again under its digest
                os.replace(tmp, final)
                sync_dir(final.parent)
            return BlobRef(sha256=found, size=size)
        except BaseException as exc:
            tmp.unlink(missing_ok=True)
            if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise TiermlError(f"no space left on the registry's disk ({self.root}) while storing a blob: "
                                  "nothing was stored and no release changed; free space there (garbage "
                                  "collection removes blobs no release references) and send it again") from exc
            raise

    def read(self, digest: str) -> bytes:
        try:
            return self.path(digest).read_bytes()
        except FileNotFoundError:
            raise TiermlError(f"blob {digest} is not in the registry") from None

    def verify(self, digest: str) -> bool:
        """Whether the stored bytes still hash to their name."""
        return self.has(digest) and sha256_file(self.path(digest)) == digest

    def digests(self) -> Iterator[str]:
        for folder in sorted(self.root.iterdir()):
            if folder.is_dir() and len(folder.name) == 2:
                yield from sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))

    def delete(self, digest: str) -> None:
        self.path(digest).unlink(missing_ok=True)

    def sweep(self, older_than_s: float = 3600.0) -> int:
        """Remove temporary files that writers left behind (a crash mid-write) once they are this old."""
        staging = self.root / ".incoming"
        now, removed = time.time(), 0
        for tmp in staging.iterdir() if staging.exists() else []:
            if now - tmp.stat().st_mtime > older_than_s:
                tmp.unlink(missing_ok=True)
                removed += 1
        return removed
