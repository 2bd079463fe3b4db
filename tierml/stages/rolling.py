"""The `rollout` verbs: start a rollout of a release to a device group, run the controller, show, pause, resume or
abort it. They work on a registry root on this machine (the controller writes desired states into its index; a
`tierml registry serve` of the same root hands them to the agents)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

from tierml.errors import TiermlError
from tierml.fleet.rollout import Controller, Criteria, Rollout
from tierml.registry.index import Event
from tierml.stages.registering import _opened


class RolloutStatus(BaseModel):
    rollouts: list[Rollout]
    events: list[Event]


def start(root: Path, group: str, model: str, version: int, waves: list[float] | None = None, bake_s: float = 300.0,
          criteria: Criteria | None = None, canary_first: list[str] | None = None) -> Rollout:
    """Start moving `group` from the release it runs to `model` v`version`, wave by wave."""
    if waves is not None and (not waves or any(not 0 < w <= 1 for w in waves) or waves != sorted(waves)
                              or waves[-1] != 1):
        raise TiermlError(f"--waves must rise from above 0 to 1 (the whole group), e.g. 0.01,0.1,0.5,1; got {waves}")
    with _opened(root) as registry:
        release = registry.release(model, version)  # an unknown release fails here, naming the published ones
        current = registry.index.group(group)
        if current is None:
            raise TiermlError(f"no group '{group}': set its release first (`tierml registry desired set --group "
                              f"{group} --model M --version V`) so the rollout knows what it replaces")
        latency = {c: v.latency_ms for c in release.devices if (v := release.variant_for(c)) and v.latency_ms}
        rollout = Rollout(id=f"{group}-v{version}-{uuid.uuid4().hex[:6]}", group=group, model=model, version=version,
                          old_model=current.document.get("model"), old_version=current.document.get("version"),
                          release_latency_ms=latency, bake_s=bake_s, criteria=criteria or Criteria(),
                          canary_first=canary_first or [], **({"waves": waves} if waves else {}))
        return Controller(registry.index).start(rollout)


def run(root: Path, interval_s: float = 5.0, until_done: bool = True, max_s: float | None = None,
        on_step: Callable[[list[Rollout]], None] | None = None) -> list[Rollout]:
    """Step every running rollout every `interval_s` until none runs (or for `max_s` seconds)."""
    deadline = time.monotonic() + max_s if max_s is not None else None
    with _opened(root) as registry:
        controller = Controller(registry.index)
        while True:
            stepped = controller.tick()
            if on_step:
                on_step(stepped)
            if (until_done and not stepped) or (deadline is not None and time.monotonic() >= deadline):
                return stepped
            time.sleep(interval_s)


def status(root: Path, rollout_id: str | None = None) -> RolloutStatus:
    """Every rollout (or one) and the controller's event log."""
    with _opened(root) as registry:
        found = [Rollout.model_validate(d) for i, _, d in registry.index.rollouts()
                 if rollout_id is None or i == rollout_id]
        if rollout_id is not None and not found:
            raise TiermlError(f"no rollout '{rollout_id}'; `tierml rollout status ROOT` lists them")
        return RolloutStatus(rollouts=found, events=registry.index.events(rollout_id))


def set_state(root: Path, rollout_id: str, state: str, reason: str) -> Rollout:
    """Pause, resume (running) or abort a rollout by hand; abort sends its devices back to the old release."""
    if state not in ("paused", "running", "aborted"):
        raise TiermlError(f"a rollout can be paused, resumed or aborted, not set to '{state}'")
    with _opened(root) as registry:
        return Controller(registry.index).set_state(rollout_id, state, reason)  # type: ignore[arg-type]


