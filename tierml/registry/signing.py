"""Who may say what a device runs: ed25519 keys, signed documents, and the checks an agent makes before it
trusts one (the attacks TUF names: a forged or tampered document, a key it does not trust, an old document
replayed to roll a device back, and a stale one held back to freeze it).

A signed document is canonical JSON (sorted keys, no spaces) with its signatures beside it; the signature
covers those exact bytes, so any change to the document breaks it. Keys are files: the private key in PEM
(PKCS#8, mode 0600) and the public key as one line, `ed25519:<base64>`, which is what an agent is enrolled with.
"""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel

from tierml.errors import TiermlError
from tierml.files import atomic_write_bytes, sha256_bytes

PUBLIC_PREFIX = "ed25519:"


class Signature(BaseModel):
    keyid: str  # the first 16 hex digits of the public key's sha256
    sig: str  # base64


class Signed(BaseModel):
    """A document and its signatures: `payload` is the canonical JSON the signatures cover."""

    payload: str
    signatures: list[Signature]

    def document(self) -> dict[str, Any]:
        return json.loads(self.payload)


def canonical(document: dict[str, Any]) -> str:
    """The one byte form of a document that is signed and hashed."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def keyid(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return sha256_bytes(raw)[:16]


def public_text(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return PUBLIC_PREFIX + base64.b64encode(raw).decode()


def parse_public(text: str) -> Ed25519PublicKey:
    """A public key as `keygen` writes it (`ed25519:<base64>`), or the path of such a file."""
    value = text.strip()
    if not value.startswith(PUBLIC_PREFIX) and Path(value).is_file():
        value = Path(value).read_text().strip()
    if not value.startswith(PUBLIC_PREFIX):
        raise TiermlError(f"'{text[:60]}' is not an ed25519 public key: give the line `tierml registry keygen` wrote "
                          "to KEY.pub (ed25519:<base64>) or that file's path")
    try:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(value[len(PUBLIC_PREFIX):], validate=True))
    except ValueError as exc:
        raise TiermlError(f"the public key '{value[:60]}' is damaged: {exc}") from None


def keygen(path: Path) -> str:
    """Write a new private key to `path` (mode 0600) and its public key to `path`.pub; return the public key line.
    Refuses to overwrite an existing key: losing a signing key strands every agent enrolled with it."""
    if path.exists():
        raise TiermlError(f"{path} exists; a signing key is never overwritten (agents trust it): give a new path")
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, pem)
    os.chmod(path, 0o600)
    public = public_text(private.public_key())
    atomic_write_bytes(path.with_name(path.name + ".pub"), (public + "\n").encode())
    return public


def load_private(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise TiermlError(f"signing key {path} not found; create one with `tierml registry keygen {path}`") from None
    except ValueError as exc:
        raise TiermlError(f"{path} is not a PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise TiermlError(f"{path} holds a {type(key).__name__}, not an ed25519 key; use `tierml registry keygen`")
    return key


def sign(document: dict[str, Any], key: Ed25519PrivateKey) -> Signed:
    payload = canonical(document)
    signature = base64.b64encode(key.sign(payload.encode())).decode()
    return Signed(payload=payload, signatures=[Signature(keyid=keyid(key.public_key()), sig=signature)])


def verify(signed: Signed, trusted: list[Ed25519PublicKey], what: str) -> dict[str, Any]:
    """The document, once a signature by a trusted key checks out; a TiermlError naming `what` otherwise."""
    by_id = {keyid(k): k for k in trusted}
    known = [s for s in signed.signatures if s.keyid in by_id]
    if not known:
        ids = ", ".join(s.keyid for s in signed.signatures) or "none"
        raise TiermlError(f"{what} is signed by key(s) {ids}, none of which this device trusts "
                          f"({', '.join(by_id) or 'no keys'}); enrol it with the registry's public key")
    for s in known:
        try:
            by_id[s.keyid].verify(base64.b64decode(s.sig), signed.payload.encode())
        except (InvalidSignature, ValueError):
            continue
        return signed.document()
    raise TiermlError(f"{what} does not match its signature: it was changed after it was signed, or the "
                      "signature is forged; it is refused")


def check_fresh(document: dict[str, Any], seen_revision: int | None, what: str, now: datetime | None = None) -> None:
    """Refuse a replayed document (revision below the highest seen) and an expired one (frozen updates)."""
    revision = int(document.get("revision", 0))
    if seen_revision is not None and revision < seen_revision:
        raise TiermlError(f"{what} has revision {revision}, older than revision {seen_revision} already seen: a "
                          "replayed document (rollback attack) is refused")
    expires = document.get("expires")
    if expires is not None:
        when = datetime.fromisoformat(expires)
        if (now or datetime.now(UTC)) >= when:
            raise TiermlError(f"{what} expired at {expires}: the registry has not re-signed it since (a frozen or "
                              "stale update channel); the device keeps its current model")
