"""A throwaway PostgreSQL server for the tests: Debian's binaries, a fresh cluster in a temporary folder, one
empty database per test, and everything stopped (by PID) and removed at the end.

`initdb` and `postgres` refuse to run as root: as root the server runs as the `postgres` system user (created
when missing). Without the binaries (Debian's `postgresql`; scripts/system-deps.sh installs it) or psycopg
(`pip install -e ".[dev]"`), the tests that need the server skip and say which is missing.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import count
from pathlib import Path

import pytest

SERVER_USER = "postgres"
_DATABASES = count(1)


@dataclass
class PostgresServer:
    port: int
    folder: Path
    pid: int  # the postmaster's

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://tierml@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str) -> None:
        import psycopg  # here, not at the top: without psycopg the fixtures skip instead of breaking collection

        with psycopg.connect(self.url(), autocommit=True) as db:
            db.execute(sql)


def binaries() -> Path | None:
    """The newest Debian PostgreSQL bin folder that has both initdb and postgres."""
    found = [p for p in Path("/usr/lib/postgresql").glob("*/bin")
             if (p / "initdb").exists() and (p / "postgres").exists()]
    return max(found, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0, default=None)


def _as_server_user() -> list[str]:
    """The command prefix that runs the server as a user it accepts (none unless we are root)."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVER_USER],
                       check=True)
    return ["runuser", "-u", SERVER_USER, "--"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(server: PostgresServer, process: subprocess.Popen, log: Path, timeout_s: float = 30) -> None:
    import psycopg

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            psycopg.connect(server.url(), connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL did not start:\n{log.read_text()[-2000:]}") from None
            time.sleep(0.05)


def _postmaster_pid(data: Path) -> int | None:
    """The server's PID from its lock file (the process we started is runuser when we are root)."""
    try:
        return int((data / "postmaster.pid").read_text().split()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None


def _stop(pid: int, timeout_s: float = 10) -> None:
    """Fast shutdown (SIGINT: roll back, disconnect, exit); SIGKILL if it has not gone within the timeout."""
    try:
        os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            os.kill(pid, 0)
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@contextmanager
def throwaway_postgres() -> Iterator[PostgresServer]:
    """Start a server on 127.0.0.1 (fsync off: the data is thrown away), yield it, stop it, remove its folder."""
    pytest.importorskip("psycopg", reason="the PostgreSQL index needs psycopg: pip install -e '.[dev]'")
    bin_dir = binaries()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (/usr/lib/postgresql/*/bin): run scripts/system-deps.sh as root "
                    "or apt-get install postgresql")
    prefix = _as_server_user()
    folder = Path(tempfile.mkdtemp(prefix="tierml-pg-"))
    data, log = folder / "data", folder / "server.log"
    process: subprocess.Popen | None = None
    try:
        if prefix:
            shutil.chown(folder, SERVER_USER)
        subprocess.run([*prefix, str(bin_dir / "initdb"), "-D", str(data), "--no-sync", "-U", "tierml", "-A", "trust",
                        "-E", "UTF8", "--locale=C"], check=True, capture_output=True)
        port = _free_port()
        with log.open("wb") as out:
            process = subprocess.Popen([*prefix, str(bin_dir / "postgres"), "-D", str(data), "-k", str(folder),
                                        "-c", "listen_addresses=127.0.0.1", "-p", str(port), "-c", "fsync=off"],
                                       stdout=out, stderr=subprocess.STDOUT)
        server = PostgresServer(port, folder, 0)
        _wait_ready(server, process, log)
        server.pid = _postmaster_pid(data) or 0
        yield server
    finally:
        pid = _postmaster_pid(data)
        if pid:
            _stop(pid)
        if process is not None:
            if process.poll() is None:
                process.kill()  # runuser, once its server is gone or never started
            process.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One server for the whole session (about a second to start)."""
    with throwaway_postgres() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of an empty database of its own, dropped after the test."""
    name = f"test_{os.getpid()}_{next(_DATABASES)}"
    postgres_server.admin(f"CREATE DATABASE {name}")
    yield postgres_server.url(name)
    postgres_server.admin(f"DROP DATABASE {name} WITH (FORCE)")
