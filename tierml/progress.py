"""The progress callback every long stage takes: (stage, done, total). Library code reports through it; the CLI
draws it as a rich progress bar."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str, int, int], None]


def silent(stage: str, done: int, total: int) -> None:
    """A progress callback that shows nothing."""
