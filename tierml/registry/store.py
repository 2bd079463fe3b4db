"""A registry on this machine: content-addressed blobs, signed release manifests, and the index that makes them
visible.

Publishing stores every artifact blob, then the signed manifest blob, then adds the index row in one
transaction. The row is the commit point: a crash before it leaves only unreferenced blobs (which `gc` removes
after a grace period), never a partial release; a crash after it leaves the whole release. `fsck` re-hashes
every blob a release references and checks every manifest's signature.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel

from tierml.errors import TiermlError
from tierml.registry.blobs import BlobStore
from tierml.registry.index import Index, ReleaseRow, now, open_index
from tierml.registry.manifest import Artifact, Release
from tierml.registry.signing import Signed, sign, verify

MANIFEST_MEDIA_TYPE = "application/vnd.tierml.release+json"


class FsckReport(BaseModel):
    releases: int
    blobs: int
    problems: list[str]  # empty: the registry is whole
    unreferenced: list[str]  # blobs no release names (left by an interrupted publish, or by deleted releases)

    @property
    def clean(self) -> bool:
        return not self.problems


@dataclass
class Registry:
    """The blobs under `root`/blobs and the index (SQLite at `root`/index.db unless another is given, as an `Index`
    or as the URL `open_index` reads)."""

    root: Path
    index: Index
    blobs: BlobStore

    @classmethod
    def open(cls, root: Path, index: Index | str | None = None) -> Registry:
        root.mkdir(parents=True, exist_ok=True)
        return cls(root, index if isinstance(index, Index) else open_index(index, root), BlobStore(root / "blobs"))

    def close(self) -> None:
        self.index.close()

    def store(self, path: Path, name: str | None = None, media_type: str = "application/octet-stream") -> Artifact:
        """Store a file as a blob and describe it as an artifact (under `name`, default its file name)."""
        ref = self.blobs.put_file(path)
        return Artifact(name=name or path.name, sha256=ref.sha256, size=ref.size, media_type=media_type)

    def publish(self, release: Release, key: Ed25519PrivateKey) -> ReleaseRow:
        """Sign and commit a release whose blobs are stored; `Conflict` when its version exists."""
        return self.commit(sign(release.model_dump(mode="json"), key))

    def commit(self, signed: Signed) -> ReleaseRow:
        """Commit a release manifest signed elsewhere (a publisher over HTTP; the caller has checked the signature):
        its blobs must be stored; the manifest is stored as it was signed, then its index row is added (the commit
        point). `Conflict` when its version exists."""
        release = Release.model_validate(signed.document())
        missing = [d for d in release.blobs() if not self.blobs.has(d)]
        if missing:
            raise TiermlError(f"{release.model} v{release.version} references {len(missing)} blob(s) the registry "
                              f"does not hold ({', '.join(m[:12] for m in missing[:3])}...); upload them first")
        if release.devices and any(release.variant_for(c) is None for c in release.devices):
            raise TiermlError(f"{release.model} v{release.version}: a device class names a variant the release "
                              "does not hold")
        manifest = self.blobs.put_bytes(signed.model_dump_json().encode())
        row = ReleaseRow(model=release.model, version=release.version, manifest_sha256=manifest.sha256, created=now())
        self.index.add_release(row)
        return row

    def signed_manifest(self, model: str, version: int) -> tuple[ReleaseRow, Signed]:
        row = self.index.release(model, version)
        if row is None:
            known = sorted({r.model for r in self.index.releases()})
            raise TiermlError(f"no release {model} v{version}; published models: {', '.join(known) or 'none'} "
                              "(`tierml registry list`)")
        return row, Signed.model_validate_json(self.blobs.read(row.manifest_sha256))

    def release(self, model: str, version: int, trusted: list[Ed25519PublicKey] | None = None) -> Release:
        """A release's manifest (its signature checked when keys are given)."""
        _, signed = self.signed_manifest(model, version)
        document: dict[str, Any] = verify(signed, trusted, f"{model} v{version}") if trusted else signed.document()
        return Release.model_validate(document)

    def fsck(self, trusted: list[Ed25519PublicKey] | None = None) -> FsckReport:
        """Re-hash every blob and check every manifest (and its signature when keys are given)."""
        problems: list[str] = []
        referenced: set[str] = set()
        rows = self.index.releases()
        for row in rows:
            where = f"{row.model} v{row.version}"
            referenced.add(row.manifest_sha256)
            if not self.blobs.verify(row.manifest_sha256):
                problems.append(f"{where}: manifest blob {row.manifest_sha256[:12]} is missing or damaged")
                continue
            try:
                release = self.release(row.model, row.version, trusted)
            except (TiermlError, ValueError) as exc:
                problems.append(f"{where}: {str(exc).splitlines()[0]}")
                continue
            for digest in release.blobs():
                referenced.add(digest)
                if not self.blobs.verify(digest):
                    problems.append(f"{where}: blob {digest[:12]} is missing or damaged")
        stored = list(self.blobs.digests())
        return FsckReport(releases=len(rows), blobs=len(stored), problems=problems,
                          unreferenced=sorted(set(stored) - referenced))

    def gc(self, grace_s: float = 3600.0) -> list[str]:
        """Delete blobs no release references once they are older than `grace_s` (a publish in progress has
        stored its blobs but not yet committed its row: the grace period keeps them)."""
        report = self.fsck()
        if report.problems:
            raise TiermlError("fsck found problems; garbage collection waits until they are fixed: "
                              + "; ".join(report.problems[:3]))
        cutoff = time.time() - grace_s
        removed = [d for d in report.unreferenced if self.blobs.path(d).stat().st_mtime < cutoff]
        for digest in removed:
            self.blobs.delete(digest)
        self.blobs.sweep(grace_s)
        return removed
