"""Bytes on disk: their sha256, and writes that are all or nothing.

A reader never sees half a file or half a folder: everything is written under a temporary name in the
target's own folder (so the final rename stays on one file system), flushed to disk, then renamed.
It knows nothing of models; every other tierml module may import it.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_CHUNK = 1 << 20


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of `data`."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's contents, read in chunks (models can be larger than memory is comfortable with)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_synced(path: Path, data: bytes) -> None:
    """Write `data` to `path` and flush it to disk (for files inside a folder that is renamed into place)."""
    with path.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace `path` by `data` in one rename: readers see the old file or the new one, never a mix."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}-", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    sync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    """`atomic_write_bytes` of `text` in UTF-8."""
    atomic_write_bytes(path, text.encode())


@contextmanager
def staged_dir(target: Path) -> Iterator[Path]:
    """An empty folder beside `target` to fill; on a clean exit it replaces `target` (renames only, the old
    one kept until the new one is in), on an error it is removed and `target` is left as it was."""
    staging = _staging(target)
    try:
        yield staging
        _swap_dir(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextmanager
def new_dir(target: Path) -> Iterator[Path]:
    """Like `staged_dir`, but `target` must not exist yet: the folder appears whole or not at all."""
    staging = _staging(target)
    try:
        yield staging
        if target.exists():  # rename() would quietly replace an empty folder
            raise FileExistsError(errno.EEXIST, "already exists", str(target))
        os.rename(staging, target)
        sync_dir(target.parent)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _swap_dir(new: Path, target: Path) -> None:
    """Replace `target` by the folder `new` with renames only (the old one is kept until the new one is in)."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}-old-", dir=target.parent))
        old.rmdir()
        os.replace(target, old)
    try:
        os.replace(new, target)
    except OSError:
        if old is not None:
            os.replace(old, target)
        raise
    sync_dir(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _staging(target: Path) -> Path:
    """A new hidden folder beside `target` (readers skip names starting with a dot)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{target.name}-new-", dir=target.parent))


def sync_dir(folder: Path) -> None:
    """Make a rename inside `folder` durable (POSIX; other systems have no directory handles to sync)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
