"""What each device of a group should run, signed by the registry: resolved from the group's document, cached so a
poll that finds nothing new costs one index lookup and no signature.

A group's document names the release every device of the group runs; `overrides` names another for single
devices (what the rollout controller writes as its waves move):

    {"model": "digits", "version": 3, "overrides": {"cam-17": {"model": "digits", "version": 4, "rollout": "r-9"}}}

A device's signed `DesiredState` is kept per (group, device, device class) with the group revision it was last
found current for. A poll re-reads only the group's revision; the document is re-signed when what the device
should run changes, or when less than half of its lifetime is left. A new group revision that leaves the device's
release as it was keeps the same signed bytes (and ETag), so only the devices a change concerns download anything.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel, ConfigDict, Field, model_validator

from tierml.errors import TiermlError
from tierml.files import sha256_bytes
from tierml.registry.index import ReleaseRow
from tierml.registry.manifest import DesiredState, Release
from tierml.registry.signing import Signed, sign
from tierml.registry.store import Registry

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")


class UnknownRelease(TiermlError):
    """A group document names a release that is not published."""


class Unservable(TiermlError):
    """The device cannot be told what to run (its release has no variant for its class, or is gone)."""


class Target(BaseModel):
    """The release a device runs (model and version both None: keep what it has)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str | None = None
    version: int | None = Field(default=None, ge=1)
    rollout: str | None = None  # the rollout that assigned it, if any

    @model_validator(mode="after")
    def _both_or_neither(self) -> Target:
        if (self.model is None) != (self.version is None):
            raise ValueError("give model and version together (both null: devices keep what they run)")
        return self


class GroupDocument(BaseModel):
    """A group's desired state as the index stores it."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    version: int | None = Field(default=None, ge=1)
    overrides: dict[str, Target] = Field(default_factory=dict)  # device -> the release it runs instead

    @model_validator(mode="after")
    def _valid(self) -> GroupDocument:
        Target(model=self.model, version=self.version)
        problems = [name_problem("device", device) for device in self.overrides]
        if any(problems):
            raise ValueError(next(p for p in problems if p))
        return self

    @property
    def base(self) -> Target:
        """The release every device without an override runs."""
        return Target(model=self.model, version=self.version)

    def target(self, device: str) -> Target:
        """What `device` runs: its override, else the group's release."""
        return self.overrides.get(device) or self.base


def name_problem(kind: str, name: str) -> str:
    """What is wrong with a group or device name ('' when nothing): names travel in URL paths."""
    if NAME.fullmatch(name):
        return ""
    return (f"{kind} name {name[:60]!r} is not valid: use 1-128 letters, digits and . _ : @ - (starting with a "
            "letter or digit)")


def check_name(kind: str, name: str) -> str:
    """The name, once it is a valid group or device name."""
    problem = name_problem(kind, name)
    if problem:
        raise TiermlError(problem)
    return name


def set_group(registry: Registry, group: str, document: GroupDocument) -> int:
    """Store `document` as the group's next revision once every release it names is published; the revision."""
    check_name("group", group)
    for target in [document.base, *document.overrides.values()]:
        if target.model is not None and registry.index.release(target.model, target.version or 0) is None:
            known = [r.version for r in registry.index.releases(target.model)]
            raise UnknownRelease(f"{target.model} v{target.version} is not published (versions of {target.model}: "
                                 f"{', '.join(map(str, known)) or 'none'}); publish it first (tierml registry "
                                 "publish), or name a published version")
    return registry.index.set_group(group, document.model_dump(mode="json"))


@dataclass
class SignedState:
    """One device's signed desired state as it is served: the bytes, their ETag and what they say."""

    body: bytes  # the `Signed` JSON
    etag: str  # '"<sha256 of body>"'
    target: Target
    revision: int  # the group revision it was last found current for
    refresh_after: float  # when (clock seconds) half its lifetime is gone and it is signed afresh


class DesiredStates:
    """Every device's signed desired state, signed by `key` for `ttl_s` seconds and cached (see the module)."""

    def __init__(self, registry: Registry, key: Ed25519PrivateKey, ttl_s: float = 24 * 3600.0,
                 max_cached: int = 100_000, clock: Callable[[], float] = time.time) -> None:
        self.registry = registry
        self.key = key
        self.ttl_s = ttl_s
        self.max_cached = max_cached
        self.clock = clock
        self._states: OrderedDict[tuple[str, str, str | None], SignedState] = OrderedDict()
        self._documents: dict[str, tuple[int, GroupDocument]] = {}
        self._releases: dict[tuple[str, int], tuple[ReleaseRow, Release]] = {}  # immutable once published
        self.signed = 0  # how many documents were signed (a no-change poll signs none)

    def current(self, group: str, device: str, device_class: str | None = None) -> SignedState | None:
        """The device's signed desired state; None when the group does not exist."""
        revision = self.registry.index.group_revision(group)
        if revision is None:
            return None
        key = (group, device, device_class)
        now = self.clock()
        cached = self._states.get(key)
        if cached is not None and cached.revision == revision and now < cached.refresh_after:
            self._states.move_to_end(key)
            return cached
        revision, document = self._document(group, revision)
        target = document.target(device)
        if cached is not None and cached.target == target and now < cached.refresh_after:
            cached.revision = revision
            self._states.move_to_end(key)
            return cached
        state = self._sign(group, device, device_class, revision, target, now)
        self._states[key] = state
        self._states.move_to_end(key)
        while len(self._states) > self.max_cached:
            self._states.popitem(last=False)
        return state

    def _document(self, group: str, revision: int) -> tuple[int, GroupDocument]:
        cached = self._documents.get(group)
        if cached is not None and cached[0] == revision:
            return cached
        row = self.registry.index.group(group)
        if row is None:
            raise Unservable(f"group '{group}' disappeared while it was read")
        try:
            document = GroupDocument.model_validate(row.document)
        except ValueError as exc:
            first = str(exc).splitlines()[0]
            raise Unservable(f"group '{group}' revision {row.revision} is not a desired-state document ({first}); "
                             f"set it again with PUT /v1/groups/{group}/desired") from None
        self._documents[group] = (row.revision, document)
        return row.revision, document

    def _release(self, model: str, version: int) -> tuple[ReleaseRow, Release]:
        found = self._releases.get((model, version))
        if found is None:
            try:
                row, signed = self.registry.signed_manifest(model, version)
            except TiermlError as exc:
                raise Unservable(f"the group names a release that cannot be read: {exc}") from None
            found = self._releases[(model, version)] = (row, Release.model_validate(signed.document()))
        return found

    def _sign(self, group: str, device: str, device_class: str | None, revision: int, target: Target,
              now: float) -> SignedState:
        manifest = None
        if target.model is not None and target.version is not None:
            row, release = self._release(target.model, target.version)
            manifest = row.manifest_sha256
            if device_class is not None and release.variant_for(device_class) is None:
                raise Unservable(f"{target.model} v{target.version} has no variant for device class "
                                 f"'{device_class}' (it covers {', '.join(sorted(release.devices)) or 'none'}); "
                                 f"publish a build that targets it (tierml build --target {device_class}) or put "
                                 "the device in a group whose release covers it")
        issued = datetime.fromtimestamp(now, UTC)
        state = DesiredState(group=group, device=device, revision=revision, model=target.model,
                             version=target.version, manifest_sha256=manifest, rollout=target.rollout,
                             issued=issued.isoformat(), expires=(issued + timedelta(seconds=self.ttl_s)).isoformat())
        signed: Signed = sign(state.model_dump(mode="json"), self.key)
        body = signed.model_dump_json().encode()
        self.signed += 1
        return SignedState(body, f'"{sha256_bytes(body)}"', target, revision, now + self.ttl_s / 2)
