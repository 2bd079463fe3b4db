from __future__ import annotations

import pytest

from tests.support.registry import registry_files
from tierml.fleet.server import BackgroundControlPlane


@pytest.fixture
def files(tmp_path):
    return registry_files(tmp_path)


@pytest.fixture
def server(files):
    with BackgroundControlPlane(files.options()) as running:
        yield running
