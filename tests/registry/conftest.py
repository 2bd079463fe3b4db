from __future__ import annotations

import pytest


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.slow)])
def index_spec(request: pytest.FixtureRequest) -> str | None:
    """What `Registry.open(root, index=...)` takes for each backend: nothing (SQLite in the root) or a URL of
    an empty PostgreSQL database on the throwaway server (slow: the server takes a second to start)."""
    return None if request.param == "sqlite" else request.getfixturevalue("postgres_url")
