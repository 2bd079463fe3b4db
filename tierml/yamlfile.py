"""YAML files validated by pydantic, with errors that name the file, the line and the field."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from tierml.errors import TiermlError

T = TypeVar("T", bound=BaseModel)


@dataclass
class YamlDocument:
    """A parsed YAML mapping and its node tree (for line numbers)."""

    path: Path
    data: dict[str, Any]
    root: yaml.Node | None

    def error(self, loc: tuple, message: str) -> TiermlError:
        """`file:line: field.path: message` for the value at `loc` (keys and list indices)."""
        return TiermlError(f"{self.path}:{line_of(self.root, loc)}: {field_path(loc, self.data)}: {message}")

    def validate(self, model: type[T]) -> T:
        """The document as `model`; the first validation error is reported with its file, line and field."""
        try:
            return model.model_validate(self.data)
        except ValidationError as exc:
            error = exc.errors()[0]
            raise self.error(tuple(error["loc"]), error["msg"]) from exc


def read_yaml(path: Path, what: str) -> YamlDocument:
    """Parse a YAML mapping; malformed YAML, repeated keys and non-mappings are one-line errors."""
    if not path.exists():
        raise TiermlError(f"{what} '{path}' not found")
    if path.is_dir():
        raise TiermlError(f"'{path}' is a folder; give the {what} inside it")
    text = path.read_text()
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise TiermlError(f"{path}{where}: malformed YAML: {problem}") from exc
    _reject_duplicate_keys(root, path)
    if not isinstance(data, dict):
        raise TiermlError(f"{path}:1: a {what} is a YAML mapping (key: value lines), not {type(data).__name__}")
    return YamlDocument(path, data, root)


def _reject_duplicate_keys(node: yaml.Node | None, path: Path) -> None:
    """PyYAML keeps the last of two equal keys silently; a setting must not be lost that way."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if key.value in seen:
                raise TiermlError(f"{path}:{key.start_mark.line + 1}: key '{key.value}' is given twice")
            seen.add(key.value)
            _reject_duplicate_keys(value, path)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _reject_duplicate_keys(item, path)


def field_path(loc: tuple, data: object) -> str:
    """`devices[jetson-orin-nano].ram_mb.value` from a location (list items are named by their `name`)."""
    parts: list[str] = []
    node = data
    for key in loc:
        if isinstance(key, int):
            item = node[key] if isinstance(node, list) and key < len(node) else None
            name = item.get("name") if isinstance(item, dict) else None
            parts[-1:] = [f"{parts[-1] if parts else ''}[{name or key}]"]
        else:
            parts.append(str(key))
        try:
            node = node[key]  # type: ignore[index]
        except (KeyError, IndexError, TypeError):
            node = None
    return ".".join(parts) or "<root>"


def line_of(root: yaml.Node | None, loc: tuple) -> int:
    """1-based line of the deepest YAML node on the path `loc` (where the error is)."""
    node = root
    line = (root.start_mark.line + 1) if root is not None else 1
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if getattr(k, "value", None) == key), None)
            if match is None:
                break
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            break
        line = node.start_mark.line + 1
    return line
