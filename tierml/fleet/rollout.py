"""Rollouts: move a device group from its release to a new one in waves, and abort on failed updates or on a
worse model.

The controller is a function of what it is given — the rollout's state, the devices' latest reports, the time —
returning the next state, the per-device assignments and a sentence for every decision (`step`); `Controller`
applies one step to a registry index: it writes the group's desired-state document (the new release as a
per-device override for the devices in the waves so far, the old one as the default) and the event log.

Abort criteria, checked in this order once `min_devices` devices have finished their update:
- failures: updates that failed, were rolled back or timed out, above `max_failure_pct` (as Greengrass);
- latency: a device's p95 on the new release above `max_latency_factor` x its p95 on the old one (or, with no
  baseline, x the release's measured latency);
- health: a device whose health gate mismatched the golden outputs (it rolled back; counted apart so the
  event says why);
- confidence: the mean top-1 confidence on the same devices dropped by more than `max_confidence_drop`.
On abort the overrides are removed: every device's desired state is the old release again, so the devices
already updated roll back.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from tierml.errors import TiermlError
from tierml.registry.index import DeviceRow, Index

State = Literal["running", "paused", "aborted", "completed"]
FAILED_STATES = ("ROLLED_BACK", "FAILED")


class Criteria(BaseModel):
    min_devices: int = Field(default=1, ge=1)
    max_failure_pct: float = Field(default=20.0, ge=0, le=100)
    update_timeout_s: float = Field(default=900.0, gt=0)
    max_latency_factor: float = Field(default=1.5, gt=1)
    max_confidence_drop: float = Field(default=0.05, ge=0)


class Baseline(BaseModel):
    """A device's figures on the old release, taken when it is assigned to a wave."""

    p95_ms: float | None = None
    confidence: float | None = None


class Rollout(BaseModel):
    id: str
    group: str
    model: str
    version: int
    old_model: str | None
    old_version: int | None
    release_latency_ms: dict[str, float] = Field(default_factory=dict)  # device class -> measured ms
    waves: list[float] = Field(default_factory=lambda: [0.01, 0.1, 0.5, 1.0])
    bake_s: float = 300.0
    criteria: Criteria = Field(default_factory=Criteria)
    canary_first: list[str] = Field(default_factory=list)  # device classes in the order they go first
    state: State = "running"
    wave: int = 0
    wave_started: str = Field(default_factory=lambda: datetime.now(UTC).isoformat())
    assigned: dict[str, str] = Field(default_factory=dict)  # device -> when it was assigned (ISO time)
    baseline: dict[str, Baseline] = Field(default_factory=dict)
    reason: str = ""


class Step(BaseModel):
    rollout: Rollout
    events: list[str]


def _seconds_since(iso: str, now: datetime) -> float:
    return (now - datetime.fromisoformat(iso)).total_seconds()


def _on_new(rollout: Rollout, report: dict[str, Any]) -> bool:
    return report.get("model") == rollout.model and report.get("version") == rollout.version


def _order(rollout: Rollout, devices: list[DeviceRow]) -> list[DeviceRow]:
    """Canary devices first (reported `canary: true`), then by the rollout's device-class order, then by name."""
    rank = {c: i for i, c in enumerate(rollout.canary_first)}
    return sorted(devices, key=lambda d: (not d.report.get("canary", False),
                                          rank.get(d.device_class, len(rank)), d.device))


def _outcome(rollout: Rollout, device: DeviceRow, now: datetime) -> str:
    """ok | failed | health | timeout | pending, for a device assigned to the new release."""
    report = device.report
    if _on_new(rollout, report) and report.get("state") == "COMMITTED":
        return "ok"
    if report.get("target_version") == rollout.version and report.get("state") in FAILED_STATES:
        return "health" if report.get("health") == "mismatch" else "failed"
    if _seconds_since(rollout.assigned[device.device], now) > rollout.criteria.update_timeout_s:
        return "timeout"
    return "pending"


def _quality_breach(rollout: Rollout, device: DeviceRow) -> str:
    stats = device.report.get("stats") or {}
    base = rollout.baseline.get(device.device, Baseline())
    p95 = stats.get("p95_ms")
    reference = base.p95_ms or rollout.release_latency_ms.get(device.device_class)
    factor = rollout.criteria.max_latency_factor
    if p95 is not None and reference and p95 > factor * reference:
        return (f"{device.device}: p95 {p95:.3g} ms on v{rollout.version} > {factor:g} x {reference:.3g} ms "
                f"({'its p95 on the old release' if base.p95_ms else 'the release measurement'})")
    confidence = stats.get("mean_confidence")
    if confidence is not None and base.confidence is not None:
        drop = base.confidence - confidence
        if drop > rollout.criteria.max_confidence_drop:
            return (f"{device.device}: mean confidence {confidence:.3f} vs {base.confidence:.3f} on the old release "
                    f"(drop {drop:.3f} > {rollout.criteria.max_confidence_drop:g})")
    return ""


def step(rollout: Rollout, devices: list[DeviceRow], now: datetime | None = None) -> Step:
    """One decision of the controller."""
    now = now or datetime.now(UTC)
    r = rollout.model_copy(deep=True)
    if r.state != "running":
        return Step(rollout=r, events=[])
    events: list[str] = []
    by_name = {d.device: d for d in devices}
    target = min(len(devices), max(1, math.ceil(r.waves[r.wave] * len(devices)))) if devices else 0
    for device in _order(r, devices):
        if len(r.assigned) >= target:
            break
        if device.device not in r.assigned:
            stats = device.report.get("stats") or {}
            r.assigned[device.device] = now.isoformat()
            r.baseline[device.device] = Baseline(p95_ms=stats.get("p95_ms"), confidence=stats.get("mean_confidence"))
            events.append(f"wave {r.wave + 1} ({r.waves[r.wave]:.0%}): {device.device} ({device.device_class}) "
                          f"assigned v{r.version}")
    outcomes = {name: _outcome(r, by_name[name], now) for name in r.assigned if name in by_name}
    finished = [n for n, o in outcomes.items() if o != "pending"]
    bad = [n for n, o in outcomes.items() if o in ("failed", "health", "timeout")]
    if len(finished) >= r.criteria.min_devices:
        share = 100 * len(bad) / len(finished)
        if share > r.criteria.max_failure_pct:
            detail = ", ".join(f"{n} {outcomes[n]}" for n in bad[:5])
            return _abort(r, events, f"{len(bad)} of {len(finished)} finished updates failed ({share:.0f}% > "
                                     f"{r.criteria.max_failure_pct:g}%): {detail}")
        for name in (n for n, o in outcomes.items() if o == "ok"):
            breach = _quality_breach(r, by_name[name])
            if breach:
                return _abort(r, events, breach)
    wave_done = len(r.assigned) >= target and all(o == "ok" for o in outcomes.values())
    if wave_done and _seconds_since(r.wave_started, now) >= r.bake_s:
        if r.wave + 1 >= len(r.waves):
            r.state, r.reason = "completed", f"all {len(r.assigned)} devices run v{r.version}"
            events.append(f"completed: {r.reason}")
        else:
            events.append(f"wave {r.wave + 1} baked {r.bake_s:g} s with {len(r.assigned)} device(s) healthy; "
                          f"starting wave {r.wave + 2} ({r.waves[r.wave + 1]:.0%})")
            r.wave += 1
            r.wave_started = now.isoformat()
    return Step(rollout=r, events=events)


def _abort(r: Rollout, events: list[str], reason: str) -> Step:
    r.state, r.reason = "aborted", reason
    events.append(f"aborted in wave {r.wave + 1}: {reason}; {len(r.assigned)} device(s) go back to "
                  f"v{r.old_version}")
    return Step(rollout=r, events=events)


def group_document(r: Rollout) -> dict[str, Any]:
    """The group's desired state while and after the rollout runs."""
    if r.state == "completed":
        return {"model": r.model, "version": r.version, "overrides": {}}
    overrides = {} if r.state == "aborted" else {
        d: {"model": r.model, "version": r.version, "rollout": r.id} for d in r.assigned}
    return {"model": r.old_model, "version": r.old_version, "overrides": overrides}


class Controller:
    """Applies rollout steps to a registry index: desired states and the event log."""

    def __init__(self, index: Index) -> None:
        self.index = index

    def start(self, rollout: Rollout) -> Rollout:
        running = [doc for _, _, doc in self.index.rollouts(rollout.group) if doc.get("state") in ("running",
                                                                                                   "paused")]
        if running:
            raise TiermlError(f"group '{rollout.group}' already has rollout {running[0]['id']} in progress; "
                              "abort it or wait for it to finish")
        self.index.add_event(rollout.id, f"started: {rollout.group} from v{rollout.old_version} to v{rollout.version}"
                             f" in waves {', '.join(f'{w:.0%}' for w in rollout.waves)}, bake {rollout.bake_s:g} s")
        return self._apply(Step(rollout=rollout, events=[]), force=True)

    def tick(self, now: datetime | None = None) -> list[Rollout]:
        """One step of every running rollout."""
        done = []
        for _, group, document in self.index.rollouts():
            rollout = Rollout.model_validate(document)
            if rollout.state == "running":
                done.append(self._apply(step(rollout, self.index.devices(group), now)))
        return done

    def set_state(self, rollout_id: str, state: State, reason: str) -> Rollout:
        """Pause, resume or abort by hand."""
        found = next((Rollout.model_validate(d) for i, _, d in self.index.rollouts() if i == rollout_id), None)
        if found is None:
            raise TiermlError(f"no rollout '{rollout_id}'; `tierml rollout status` lists them")
        if found.state in ("completed", "aborted"):
            raise TiermlError(f"rollout '{rollout_id}' has {found.state} ({found.reason}); start a new one instead")
        found.state, found.reason = state, reason
        return self._apply(Step(rollout=found, events=[f"{state} by the operator: {reason}"]), force=True)

    def _apply(self, s: Step, force: bool = False) -> Rollout:
        r = s.rollout
        if s.events or force:
            self.index.set_group(r.group, group_document(r))
            self.index.save_rollout(r.id, r.group, r.model_dump(mode="json"))
        for event in s.events:
            self.index.add_event(r.id, event)
        return r
