"""Who may call what: bearer tokens, each with one role (publisher, operator or device), read from a JSON file.

    {"tokens": {"<token>": "publisher" | "operator" | "device"}}

Tokens are held by their sha256, so looking one up takes the same time however much of it a guess gets right.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal, get_args

from tierml.errors import TiermlError
from tierml.files import sha256_bytes

Role = Literal["publisher", "operator", "device"]
ROLES: tuple[str, ...] = get_args(Role)
MIN_TOKEN_CHARS = 16


class Tokens:
    """The tokens a server accepts and the role of each."""

    def __init__(self, roles: dict[str, Role]) -> None:
        self._by_digest = {sha256_bytes(token.encode()): role for token, role in roles.items()}

    @classmethod
    def load(cls, path: Path) -> Tokens:
        """Read and check a tokens file (see the module docstring for its shape)."""
        example = '{"tokens": {"<a long random token>": "publisher"}}'
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise TiermlError(f"tokens file {path} not found; write one such as {example} (a token per publisher, "
                              "operator and device; `python -c 'import secrets; print(secrets.token_urlsafe())'` "
                              "makes one)") from None
        except ValueError as exc:
            raise TiermlError(f"tokens file {path} is not valid JSON ({exc}); it must look like {example}") from None
        tokens = data.get("tokens") if isinstance(data, dict) else None
        if not isinstance(tokens, dict) or not tokens:
            raise TiermlError(f"tokens file {path} must hold a non-empty object 'tokens', like {example}")
        for token, role in tokens.items():
            if role not in ROLES:
                raise TiermlError(f"tokens file {path}: token '{token[:4]}...' has role {role!r}; a role is one of "
                                  f"{', '.join(ROLES)}")
            if len(token) < MIN_TOKEN_CHARS:
                raise TiermlError(f"tokens file {path}: token '{token[:4]}...' has {len(token)} characters; use at "
                                  f"least {MIN_TOKEN_CHARS} random ones (a short token can be guessed)")
        return cls(tokens)

    def role(self, authorization: str) -> Role | None:
        """The role of the token in an `Authorization: Bearer <token>` header; None when absent or unknown."""
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return self._by_digest.get(sha256_bytes(token.strip().encode()))
