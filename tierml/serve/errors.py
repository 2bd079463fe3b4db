"""Errors a client gets back: an HTTP status, a message naming the problem, and optional headers."""

from __future__ import annotations

from tierml.errors import TiermlError


class ServeError(TiermlError):
    """A request the server refuses; rendered as `{"error": message}` with `status` (never a traceback)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


def bad_request(message: str) -> ServeError:
    return ServeError(400, message)


def not_found(message: str) -> ServeError:
    return ServeError(404, message)


def overloaded(status: int, message: str, retry_after_s: int) -> ServeError:
    """503 or 429 with Retry-After: the client should back off and try again."""
    return ServeError(status, message, {"retry-after": str(max(1, retry_after_s))})
