from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.paths import DIGITS

pytest_plugins = ["tests.support.postgres"]  # the throwaway PostgreSQL server's fixtures


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never read or write the developer's calibration cache."""
    monkeypatch.setenv("TIERML_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture
def digits_path() -> Path:
    return DIGITS
