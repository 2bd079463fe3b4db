"""The rollout controller: waves in order with a bake time, and aborts on failures and on a worse model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tierml.fleet.rollout import Controller, Criteria, Rollout, group_document, step
from tierml.registry.index import DeviceRow
from tierml.registry.store import Registry

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def _devices(n: int, version: int = 1, **report) -> list[DeviceRow]:
    base = {"model": "digits", "version": version, "state": "COMMITTED", "health": "ok",
            "stats": {"p95_ms": 10.0, "mean_confidence": 0.9}}
    return [DeviceRow(device=f"d{i:03d}", group="field", device_class="raspberry-pi-5", last_seen=T0.isoformat(),
                      report={**base, **report}) for i in range(n)]


def _rollout(**fields) -> Rollout:
    fields.setdefault("wave_started", T0.isoformat())
    return Rollout(id="r1", group="field", model="digits", version=2, old_model="digits", old_version=1,
                   waves=[0.1, 0.5, 1.0], bake_s=60, **fields)


def _update(devices: list[DeviceRow], names, **report) -> None:
    for d in devices:
        if d.device in names:
            d.report = {**d.report, "model": "digits", "version": 2, "target_version": 2, "state": "COMMITTED",
                        **report}


def test_a_good_release_goes_wave_by_wave_after_its_bake_time_to_everyone():
    devices = _devices(20)
    r = step(_rollout(), devices, T0).rollout
    assert len(r.assigned) == 2 and r.wave == 0  # 10% of 20
    _update(devices, r.assigned)
    assert step(r, devices, T0 + timedelta(seconds=30)).rollout.wave == 0  # healthy but not baked yet
    r = step(r, devices, T0 + timedelta(seconds=61)).rollout
    assert r.wave == 1
    r = step(r, devices, T0 + timedelta(seconds=62)).rollout
    assert len(r.assigned) == 10
    _update(devices, r.assigned)
    r = step(step(r, devices, T0 + timedelta(seconds=130)).rollout, devices, T0 + timedelta(seconds=131)).rollout
    assert r.wave == 2 and len(r.assigned) == 20
    _update(devices, r.assigned)
    r = step(r, devices, T0 + timedelta(seconds=200)).rollout
    assert r.state == "completed"
    assert group_document(r) == {"model": "digits", "version": 2, "overrides": {}}


def test_canary_devices_go_first():
    devices = _devices(10)
    devices[7].report["canary"] = True
    r = step(_rollout(), devices, T0).rollout
    assert list(r.assigned) == ["d007"]


def test_a_twice_slower_release_aborts_in_the_first_wave_and_its_devices_go_back():
    devices = _devices(20)
    r = step(_rollout(), devices, T0).rollout
    _update(devices, r.assigned, stats={"p95_ms": 20.0, "mean_confidence": 0.9})
    s = step(r, devices, T0 + timedelta(seconds=5))
    assert s.rollout.state == "aborted" and s.rollout.wave == 0
    assert "p95 20 ms on v2 > 1.5 x 10 ms" in s.rollout.reason
    assert group_document(s.rollout) == {"model": "digits", "version": 1, "overrides": {}}


def test_a_less_confident_release_aborts():
    devices = _devices(10)
    r = step(_rollout(), devices, T0).rollout
    _update(devices, r.assigned, stats={"p95_ms": 10.0, "mean_confidence": 0.7})
    assert "mean confidence 0.700 vs 0.900" in step(r, devices, T0).rollout.reason


def test_failures_above_the_threshold_abort_only_after_the_minimum_count():
    devices = _devices(20)
    r = step(_rollout(criteria=Criteria(min_devices=2, max_failure_pct=40)), devices, T0).rollout
    first, second = sorted(r.assigned)
    _update(devices, {first}, state="ROLLED_BACK", version=1, health="mismatch")
    assert step(r, devices, T0).rollout.state == "running"  # one finished update is below min_devices
    _update(devices, {second}, state="ROLLED_BACK", version=1)
    aborted = step(r, devices, T0).rollout
    assert aborted.state == "aborted" and "2 of 2 finished updates failed" in aborted.reason


def test_an_update_that_never_finishes_times_out():
    devices = _devices(10)
    r = step(_rollout(criteria=Criteria(update_timeout_s=600)), devices, T0).rollout
    assert step(r, devices, T0 + timedelta(seconds=601)).rollout.state == "aborted"


def test_the_controller_writes_desired_states_and_an_event_for_every_decision(tmp_path):
    registry = Registry.open(tmp_path / "reg")
    for d in _devices(10):
        registry.index.report(d)
    controller = Controller(registry.index)
    controller.start(_rollout(wave_started=datetime.now(UTC).isoformat()))
    controller.tick()
    document = registry.index.group("field").document
    assert document["version"] == 1 and list(document["overrides"]) == ["d000"]
    revision = registry.index.group("field").revision
    controller.tick()  # nothing changed: no new revision, so agents' polls stay 304
    assert registry.index.group("field").revision == revision
    controller.set_state("r1", "aborted", "operator saw a problem")
    assert registry.index.group("field").document["overrides"] == {}
    messages = [e.message for e in registry.index.events("r1")]
    assert messages[0].startswith("started") and "assigned v2" in messages[1]
    assert "aborted by the operator" in messages[-1]
