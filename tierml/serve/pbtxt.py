"""A reader for protobuf text format (Triton's `config.pbtxt`), producing plain dicts.

A field seen once maps to its value, a field seen again to a list of its values; messages are
dicts, enum names and `true`/`false` stay strings. Field meaning is `config.py`'s business.
"""

from __future__ import annotations

import re
from typing import Any

_TOKEN = re.compile(r"""
    (?P<space>\s+|\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<number>[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)[fF]?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<punct>[{}\[\]:,;<>])
""", re.VERBOSE)

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "'": "'", "\\": "\\"}


class PbtxtError(ValueError):
    """The text is not valid protobuf text format; the message says where."""


def parse(text: str) -> dict[str, Any]:
    """Parse a whole text-format message."""
    parser = _Parser(_tokens(text))
    message = parser.message(closing=None)
    return message


def _tokens(text: str) -> list[tuple[str, Any, int]]:
    tokens: list[tuple[str, Any, int]] = []
    pos = 0
    line = 1
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise PbtxtError(f"line {line}: unexpected character {text[pos]!r}")
        kind = match.lastgroup or ""
        value = match.group()
        if kind != "space":
            tokens.append((kind, _value(kind, value), line))
        line += value.count("\n")
        pos = match.end()
    return tokens


def _value(kind: str, text: str) -> Any:
    if kind == "string":
        return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), text[1:-1])
    if kind == "number":
        body = text.rstrip("fF")
        return int(body) if re.fullmatch(r"[-+]?\d+", body) else float(body)
    return text


class _Parser:
    def __init__(self, tokens: list[tuple[str, Any, int]]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> tuple[str, Any, int] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, Any, int]:
        token = self.peek()
        if token is None:
            raise PbtxtError("unexpected end of text (a '}' or ']' is missing)")
        self.pos += 1
        return token

    def expect(self, punct: str) -> None:
        kind, value, line = self.take()
        if kind != "punct" or value != punct:
            raise PbtxtError(f"line {line}: expected '{punct}', found {value!r}")

    def message(self, closing: str | None) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        while True:
            token = self.peek()
            if token is None:
                if closing is not None:
                    raise PbtxtError(f"unexpected end of text: '{closing}' missing")
                return fields
            kind, value, line = token
            if kind == "punct" and value == closing:
                self.pos += 1
                return fields
            if kind == "punct" and value in ",;":
                self.pos += 1
                continue
            if kind != "name":
                raise PbtxtError(f"line {line}: expected a field name, found {value!r}")
            self.pos += 1
            _add(fields, value, self.field_value(value, line))

    def field_value(self, name: str, line: int) -> Any:
        token = self.peek()
        if token is None:
            raise PbtxtError(f"line {line}: field '{name}' has no value")
        if token[0] == "punct" and token[1] == ":":
            self.pos += 1
            token = self.peek()
            if token is None:
                raise PbtxtError(f"line {line}: field '{name}' has no value")
        kind, value, at = token
        if kind == "punct" and value in "{<":
            self.pos += 1
            return self.message("}" if value == "{" else ">")
        if kind == "punct" and value == "[":
            self.pos += 1
            return _Repeated(self.list_values(at))
        if kind in ("string", "number", "name"):
            self.pos += 1
            return value
        raise PbtxtError(f"line {at}: field '{name}' has no value (found {value!r})")

    def list_values(self, line: int) -> list[Any]:
        values: list[Any] = []
        while True:
            kind, value, at = self.take()
            if kind == "punct" and value == "]":
                return values
            if kind == "punct" and value == ",":
                continue
            if kind == "punct" and value in "{<":
                values.append(self.message("}" if value == "{" else ">"))
            elif kind in ("string", "number", "name"):
                values.append(value)
            else:
                raise PbtxtError(f"line {at}: unexpected {value!r} in the list opened on line {line}")


class _Repeated(list):
    """A `[...]` list: always a list, even with one element."""


def _add(fields: dict[str, Any], name: str, value: Any) -> None:
    items = list(value) if isinstance(value, _Repeated) else [value]
    if name in fields:
        previous = fields[name]
        fields[name] = [*(previous if isinstance(previous, list) else [previous]), *items]
    else:
        fields[name] = items if isinstance(value, _Repeated) else value
