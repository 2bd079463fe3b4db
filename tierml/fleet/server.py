"""The registry server process: the control-plane API over one registry root, on serve's HTTP server; drains on
SIGTERM (requests in flight finish, then the index is closed)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tierml.errors import TiermlError
from tierml.fleet.api import ControlPlane, error_body
from tierml.fleet.auth import Tokens
from tierml.fleet.desired import DesiredStates
from tierml.registry.signing import load_private, parse_public
from tierml.registry.store import Registry
from tierml.serve.http import HttpServer, Limits
from tierml.serve.server import BackgroundService, run_loop, until_signal

logger = logging.getLogger("tierml.registry")


@dataclass
class ControlPlaneOptions:
    """Everything `tierml registry serve` is told on the command line."""

    root: Path
    key: Path  # signs desired states
    trust: list[str]  # publisher public keys (ed25519:<base64> or KEY.pub paths) release manifests must be signed by
    tokens: Path
    host: str = "127.0.0.1"
    port: int = 8100
    desired_ttl_s: float = 24 * 3600.0
    max_blob_bytes: int = 2 * 1024**3
    max_json_bytes: int = 16 * 1024**2
    request_timeout_s: float = 600.0  # a request's head and body must arrive within this (a large upload, too)
    access_log: bool = False
    drain_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if not self.trust:
            raise TiermlError("the registry needs the publisher key(s) it accepts releases from: --trust KEY.pub "
                              "(repeatable; `tierml registry keygen KEY` writes one; it may be the --key's own .pub)")
        if self.desired_ttl_s <= 0:
            raise TiermlError(f"--desired-ttl-s must be positive, not {self.desired_ttl_s:g}")


class ControlPlaneServer:
    """One registry server: `start` opens the registry and listens; `stop` drains and closes it."""

    def __init__(self, options: ControlPlaneOptions) -> None:
        self.options = options
        key = load_private(options.key)
        trusted = [parse_public(t) for t in options.trust]
        tokens = Tokens.load(options.tokens)
        self.registry = Registry.open(options.root)
        self.desired = DesiredStates(self.registry, key, options.desired_ttl_s)
        self.app = ControlPlane(self.registry, tokens, trusted, self.desired, options.max_blob_bytes,
                                options.max_json_bytes, options.access_log)
        limits = Limits(max_body_bytes=options.max_json_bytes, request_timeout_s=options.request_timeout_s)
        self.http = HttpServer(self.app.handle, error_body, limits, self.app.body_limit)
        self.port = 0

    async def start(self) -> int:
        """Listen; returns the bound port."""
        try:
            self.port = await self.http.start(self.options.host, self.options.port)
        except OSError as exc:
            self.registry.close()
            raise TiermlError(f"cannot listen on {self.options.host}:{self.options.port} ({exc.strerror}); choose "
                              "another --port (or --port 0 for any free one)") from None
        logger.info("registry %s: %d release(s), %d group(s)", self.options.root,
                    len(self.registry.index.releases()), len(self.registry.index.groups()))
        return self.port

    async def stop(self) -> None:
        """Stop accepting, answer every accepted request, then close the index."""
        self.app.draining = True
        await self.http.drain(self.options.drain_timeout_s)
        self.registry.close()


def run(options: ControlPlaneOptions, on_ready: Callable[[int], None] | None = None) -> None:
    """Run the registry server in this thread until SIGTERM/SIGINT."""
    run_loop(until_signal(ControlPlaneServer(options), on_ready))


class BackgroundControlPlane(BackgroundService):
    """A registry server on its own event-loop thread, for tests and for embedding in a Python process."""

    def __init__(self, options: ControlPlaneOptions, start_timeout_s: float = 60.0) -> None:
        self.server = ControlPlaneServer(options)
        super().__init__(self.server, options.host, start_timeout_s, "tierml-registry")
