"""The one exception type that reaches users: what was wrong and how to fix it."""


class TiermlError(Exception):
    """A user mistake (bad file, bad option, bad data); the CLI prints it on one line and exits 2."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))
