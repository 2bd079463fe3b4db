"""The registry's index: which releases exist, each group's desired state, what devices report, the records
they upload, and the rollout controller's event log. One small interface (`Index`), SQL underneath: SQLite in
WAL mode by default (one file beside the blobs), or PostgreSQL (`tierml.registry.postgres`) for a registry many
writers share. Both run the same statements; a `Dialect` holds the little that differs.

Writes are single transactions, so an index row is the commit point of whatever it points at: a release whose
row is not there does not exist, however many of its blobs are already stored.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel

from tierml.errors import TiermlError


class Conflict(TiermlError):
    """The thing exists already (two publishers raced for one version; one wins)."""

    exit_code = 4


class ReleaseRow(BaseModel):
    model: str
    version: int
    manifest_sha256: str
    created: str


class GroupRow(BaseModel):
    name: str
    revision: int
    document: dict[str, Any]


class DeviceRow(BaseModel):
    device: str
    group: str
    device_class: str
    last_seen: str
    report: dict[str, Any]


class Record(BaseModel):
    """One telemetry or inference-log record from a device's outbox; `key` makes a resend harmless."""

    key: str
    seq: int
    kind: str
    body: dict[str, Any]


class Event(BaseModel):
    id: int
    at: str
    rollout: str
    message: str


def now() -> str:
    return datetime.now(UTC).isoformat()


class Index(ABC):
    """The registry's metadata. Implementations differ only in the database they talk to."""

    @abstractmethod
    def add_release(self, row: ReleaseRow) -> None:
        """Record a published release; `Conflict` when that model version exists."""

    @abstractmethod
    def releases(self, model: str | None = None) -> list[ReleaseRow]:
        """Releases, oldest first."""

    @abstractmethod
    def set_group(self, name: str, document: dict[str, Any]) -> int:
        """Replace a group's desired-state document; returns its new revision (always higher than before)."""

    @abstractmethod
    def group(self, name: str) -> GroupRow | None: ...

    def group_revision(self, name: str) -> int | None:
        """A group's revision alone (a desired-state poll asks this first; override it with a cheaper query)."""
        row = self.group(name)
        return row.revision if row else None

    @abstractmethod
    def groups(self) -> list[GroupRow]: ...

    @abstractmethod
    def report(self, row: DeviceRow) -> None:
        """Store a device's latest report (it replaces the previous one)."""

    @abstractmethod
    def devices(self, group: str | None = None) -> list[DeviceRow]: ...

    @abstractmethod
    def add_records(self, device: str, records: Sequence[Record]) -> int:
        """Store records; one already stored under its key is skipped. Returns how many were new."""

    @abstractmethod
    def records(self, device: str) -> list[Record]:
        """A device's records in the order it numbered them."""

    @abstractmethod
    def add_event(self, rollout: str, message: str) -> None: ...

    @abstractmethod
    def events(self, rollout: str | None = None) -> list[Event]: ...

    @abstractmethod
    def save_rollout(self, rollout_id: str, group: str, document: dict[str, Any]) -> None:
        """Store a rollout's state (it replaces the previous state of that rollout)."""

    @abstractmethod
    def rollouts(self, group: str | None = None) -> list[tuple[str, str, dict[str, Any]]]:
        """(id, group, document) of every rollout, by id."""

    def release(self, model: str, version: int) -> ReleaseRow | None:
        return next((r for r in self.releases(model) if r.version == version), None)

    def next_version(self, model: str) -> int:
        return max((r.version for r in self.releases(model)), default=0) + 1

    @abstractmethod
    def close(self) -> None:
        """Release the connection."""


class Cursor(Protocol):
    """What the index needs of a DB-API cursor (sqlite3's and psycopg's agree on it)."""

    rowcount: int

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    def execute(self, sql: Any, params: Sequence[Any] = ()) -> Cursor: ...

    def cursor(self) -> Any: ...


@dataclass(frozen=True)
class Dialect:
    """What differs between the databases the index runs on. Every statement is written once, with `?` for its
    parameters; a dialect only renames the placeholder and names its auto-numbered key and its duplicate-key error."""

    placeholder: str  # how the driver marks a parameter
    serial_key: str  # an auto-numbered integer primary key column
    duplicate: tuple[type[Exception], ...]  # what the driver raises on a duplicate primary key
    setup: tuple[str, ...] = ()  # run before the schema, in its transaction

    def sql(self, statement: str) -> str:
        return statement.replace("?", self.placeholder)


SCHEMA = (
    "CREATE TABLE IF NOT EXISTS releases (model TEXT NOT NULL, version INTEGER NOT NULL, manifest TEXT NOT NULL, "
    "created TEXT NOT NULL, PRIMARY KEY (model, version))",
    "CREATE TABLE IF NOT EXISTS groups (name TEXT PRIMARY KEY, revision INTEGER NOT NULL, document TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS devices (device TEXT PRIMARY KEY, grp TEXT NOT NULL, device_class TEXT NOT NULL, "
    "last_seen TEXT NOT NULL, report TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS records (device TEXT NOT NULL, key TEXT NOT NULL, seq BIGINT NOT NULL, "
    "kind TEXT NOT NULL, body TEXT NOT NULL, received TEXT NOT NULL, PRIMARY KEY (device, key))",
    "CREATE TABLE IF NOT EXISTS events (id {serial_key}, at TEXT NOT NULL, rollout TEXT NOT NULL, "
    "message TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS rollouts (id TEXT PRIMARY KEY, grp TEXT NOT NULL, document TEXT NOT NULL)",
)

# One statement, so concurrent writers cannot both read revision n and both write n + 1: the insert is guarded by
# the primary key and the update locks the group's row until its transaction commits (a SELECT ... FOR UPDATE
# first could not lock a group that does not exist yet).
BUMP_GROUP = ("INSERT INTO groups VALUES (?, 1, ?) ON CONFLICT (name) DO UPDATE SET "
              "revision = groups.revision + 1, document = excluded.document RETURNING revision")


class SqlIndex(Index):
    """The index in a SQL database, one connection shared by the threads of a process (one at a time).
    Subclasses open the connection and say how a write transaction begins; the statements are shared."""

    dialect: Dialect

    def __init__(self, db: Connection) -> None:
        self._db = db
        self._lock = threading.Lock()
        with self._write() as write:
            for statement in self.dialect.setup + SCHEMA:
                write(statement.format(serial_key=self.dialect.serial_key))

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[object]:
        """A write transaction on `self._db`: committed on a clean exit, rolled back on an error."""

    @contextmanager
    def _write(self) -> Iterator[Callable[..., Cursor]]:
        with self._lock, self._transaction():
            yield self._execute

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        return self._db.execute(self.dialect.sql(sql), params)

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self._lock:
            return self._execute(sql, params).fetchall()

    def add_release(self, row: ReleaseRow) -> None:
        try:
            with self._write() as write:
                write("INSERT INTO releases VALUES (?, ?, ?, ?)",
                      (row.model, row.version, row.manifest_sha256, row.created))
        except self.dialect.duplicate:
            raise Conflict(f"{row.model} version {row.version} is already published (releases are immutable); "
                           "publish as the next version") from None

    def releases(self, model: str | None = None) -> list[ReleaseRow]:
        sql = "SELECT model, version, manifest, created FROM releases"
        rows = self._read(sql + " WHERE model = ? ORDER BY version" if model else sql + " ORDER BY model, version",
                          (model,) if model else ())
        return [ReleaseRow(model=m, version=v, manifest_sha256=s, created=c) for m, v, s, c in rows]

    def set_group(self, name: str, document: dict[str, Any]) -> int:
        with self._write() as write:
            return write(BUMP_GROUP, (name, json.dumps(document, sort_keys=True))).fetchall()[0][0]

    def group(self, name: str) -> GroupRow | None:
        rows = self._read("SELECT name, revision, document FROM groups WHERE name = ?", (name,))
        return GroupRow(name=rows[0][0], revision=rows[0][1], document=json.loads(rows[0][2])) if rows else None

    def group_revision(self, name: str) -> int | None:
        rows = self._read("SELECT revision FROM groups WHERE name = ?", (name,))
        return rows[0][0] if rows else None

    def groups(self) -> list[GroupRow]:
        rows = self._read("SELECT name, revision, document FROM groups ORDER BY name")
        return [GroupRow(name=n, revision=r, document=json.loads(d)) for n, r, d in rows]

    def report(self, row: DeviceRow) -> None:
        with self._write() as write:
            write("INSERT INTO devices VALUES (?, ?, ?, ?, ?) ON CONFLICT (device) DO UPDATE SET "
                  "grp = excluded.grp, device_class = excluded.device_class, last_seen = excluded.last_seen, "
                  "report = excluded.report",
                  (row.device, row.group, row.device_class, row.last_seen, json.dumps(row.report)))

    def devices(self, group: str | None = None) -> list[DeviceRow]:
        sql = "SELECT device, grp, device_class, last_seen, report FROM devices"
        rows = self._read(sql + " WHERE grp = ? ORDER BY device" if group else sql + " ORDER BY device",
                          (group,) if group else ())
        return [DeviceRow(device=d, group=g, device_class=c, last_seen=s, report=json.loads(r))
                for d, g, c, s, r in rows]

    def add_records(self, device: str, records: Sequence[Record]) -> int:
        if not records:
            return 0
        received = now()
        with self._write():
            cursor = self._db.cursor()
            cursor.executemany(self.dialect.sql("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"),
                               [(device, r.key, r.seq, r.kind, json.dumps(r.body), received) for r in records])
            return cursor.rowcount

    def records(self, device: str) -> list[Record]:
        rows = self._read("SELECT key, seq, kind, body FROM records WHERE device = ? ORDER BY seq", (device,))
        return [Record(key=k, seq=s, kind=t, body=json.loads(b)) for k, s, t, b in rows]

    def add_event(self, rollout: str, message: str) -> None:
        with self._write() as write:
            write("INSERT INTO events (at, rollout, message) VALUES (?, ?, ?)", (now(), rollout, message))

    def events(self, rollout: str | None = None) -> list[Event]:
        sql = "SELECT id, at, rollout, message FROM events"
        rows = self._read(sql + " WHERE rollout = ? ORDER BY id" if rollout else sql + " ORDER BY id",
                          (rollout,) if rollout else ())
        return [Event(id=i, at=a, rollout=r, message=m) for i, a, r, m in rows]

    def save_rollout(self, rollout_id: str, group: str, document: dict[str, Any]) -> None:
        with self._write() as write:
            write("INSERT INTO rollouts VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET grp = excluded.grp, "
                  "document = excluded.document", (rollout_id, group, json.dumps(document, sort_keys=True)))

    def rollouts(self, group: str | None = None) -> list[tuple[str, str, dict[str, Any]]]:
        sql = "SELECT id, grp, document FROM rollouts"
        rows = self._read(sql + " WHERE grp = ? ORDER BY id" if group else sql + " ORDER BY id",
                          (group,) if group else ())
        return [(i, g, json.loads(d)) for i, g, d in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


class SqliteIndex(SqlIndex):
    """The index in one SQLite file (WAL: readers never wait for the writer)."""

    dialect = Dialect(placeholder="?", serial_key="INTEGER PRIMARY KEY AUTOINCREMENT",
                      duplicate=(sqlite3.IntegrityError,))

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        super().__init__(db)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")  # take the write lock now: no upgrade deadlock between writers
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")


POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def open_index(spec: str | None, root: Path) -> Index:
    """The index an `--index` option names: nothing for SQLite in `root`/index.db, or a `postgresql://` URL for a
    database many writers share (it needs the `registry-pg` extra)."""
    if spec is None:
        return SqliteIndex(root / "index.db")
    if spec.startswith(POSTGRES_SCHEMES):
        try:
            from tierml.registry.postgres import PostgresIndex  # optional: psycopg is the registry-pg extra
        except ImportError:
            raise TiermlError("a PostgreSQL index needs psycopg: pip install 'tierml[registry-pg]'") from None
        return PostgresIndex(spec)
    scheme = spec.partition(":")[0][:20]  # not the rest: a URL can hold a password
    raise TiermlError(f"--index '{scheme}:...' is not an index this registry knows; use a "
                      "postgresql://USER@HOST:PORT/DB URL, or leave it out for SQLite in the registry's folder")
