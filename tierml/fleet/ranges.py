"""HTTP byte ranges (RFC 9110 §14) over a blob of known size: what a resumable download asks for.

One range per request: `bytes=a-b`, `bytes=a-` (from a to the end) and `bytes=-n` (the last n bytes). A header
this server does not take (another unit, several ranges, bad syntax) is ignored and the whole blob is sent, as the
RFC allows; a well-formed range that starts past the end cannot be satisfied (416).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SPEC = re.compile(r"\s*([0-9]*)\s*-\s*([0-9]*)\s*")  # ASCII digits: str.isdigit and int() take other scripts' too


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive, as Content-Range writes it

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end}/{size}"


class Unsatisfiable(ValueError):
    """The range lies wholly past the end of the blob (answer 416 with `Content-Range: bytes */size`)."""


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The range a `Range` header asks of `size` bytes; None to send them all; `Unsatisfiable` for a 416."""
    if not header:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    match = _SPEC.fullmatch(spec)
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first, last = match.groups()
    if first == "":  # the last n bytes
        count = int(last)
        if count == 0 or size == 0:
            raise Unsatisfiable(f"bytes=-{count} of a {size}-byte blob")
        return ByteRange(max(0, size - count), size - 1)
    start = int(first)
    if last != "" and int(last) < start:
        return None  # syntactically invalid: ignored
    if start >= size:
        raise Unsatisfiable(f"bytes={spec.strip()} starts at or past the end of a {size}-byte blob")
    return ByteRange(start, size - 1 if last == "" else min(int(last), size - 1))
