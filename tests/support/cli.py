"""The `tierml` command as users run it: a child process with its output captured as text."""

from __future__ import annotations

import subprocess
import sys

TIERML = [sys.executable, "-m", "tierml.cli.app"]


def run_tierml(*args: object, timeout: float = 900, env: dict[str, str] | None = None,
               check: bool = False) -> subprocess.CompletedProcess[str]:
    """`tierml ARGS...`, each argument passed through str; the timeout only guards against a hung child.

    With check, assert the exit code is 0 and show stderr when it is not.
    """
    result = subprocess.run([*TIERML, *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env)
    if check:
        assert result.returncode == 0, result.stderr
    return result
