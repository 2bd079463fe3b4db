"""A registry server for tests and benchmarks: its keys and tokens file, its options, a role's bearer header, blob
uploads and a small signed release."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.serving import call
from tierml.files import sha256_bytes
from tierml.fleet.server import ControlPlaneOptions
from tierml.registry.manifest import Artifact, Release, ReleaseVariant
from tierml.registry.signing import Signed, keygen, load_private, sign

TOKENS = {"publisher": "publisher-token-0123456789", "operator": "operator-token-0123456789",
          "device": "device-token-0123456789"}


def bearer(role: str) -> dict[str, str]:
    return {"authorization": f"Bearer {TOKENS[role]}"}


@dataclass
class RegistryFiles:
    """A registry root with the server's key, one trusted publisher key, and a tokens file with one token a role."""

    root: Path
    key: Path
    public: str
    publisher_key: Path
    publisher_public: str
    tokens: Path

    def options(self, **changes: Any) -> ControlPlaneOptions:
        """Options for a server on a free loopback port (`changes` override any field)."""
        fields: dict[str, Any] = {"root": self.root, "key": self.key, "trust": [self.publisher_public],
                                  "tokens": self.tokens, "port": 0, **changes}
        return ControlPlaneOptions(**fields)


def registry_files(folder: Path) -> RegistryFiles:
    keys = folder / "keys"
    public = keygen(keys / "registry.key")
    publisher_public = keygen(keys / "publisher.key")
    tokens = folder / "tokens.json"
    tokens.write_text(json.dumps({"tokens": {token: role for role, token in TOKENS.items()}}))
    return RegistryFiles(folder / "root", keys / "registry.key", public, keys / "publisher.key", publisher_public,
                         tokens)


def upload(port: int, data: bytes) -> str:
    """PUT a blob as the publisher; its sha256."""
    digest = sha256_bytes(data)
    status, _, body = call(port, "PUT", f"/v1/blobs/{digest}", data, bearer("publisher"))
    assert status in (200, 201), body
    return digest


def signed_release(port: int, key: Path, version: int = 1, model: str = "digits",
                   devices: tuple[str, ...] = ("raspberry-pi-5",), payload: bytes | None = None) -> Signed:
    """A one-variant release whose model blob is uploaded, signed with `key` (not yet posted)."""
    data = payload if payload is not None else os.urandom(4096)
    artifact = Artifact(name="model.onnx", sha256=upload(port, data), size=len(data))
    variant = ReleaseVariant(name="fp32", format="onnx", precision="fp32", artifacts=[artifact])
    release = Release(model=model, version=version, devices=dict.fromkeys(devices, "fp32"), variants=[variant])
    return sign(release.model_dump(mode="json"), load_private(key))


def publish(port: int, signed: Signed) -> tuple[int, dict]:
    status, _, body = call(port, "POST", "/v1/releases", signed.model_dump_json(), bearer("publisher"))
    return status, json.loads(body)
