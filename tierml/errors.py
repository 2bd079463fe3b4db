"""The one exception type that reaches users: what was wrong and how to fix it."""

import difflib
from collections.abc import Iterable


class TiermlError(Exception):
    """A user mistake (bad file, bad option, bad data); the CLI prints it on one line and exits 2."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`did you mean 'x'? ` for the closest known name, or nothing."""
    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f"did you mean '{close[0]}'? " if close else ""
