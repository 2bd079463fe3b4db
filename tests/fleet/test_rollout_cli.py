"""`tierml rollout`: start, run, status and abort on a registry root, as an operator would."""

from __future__ import annotations

import json

from tests.support.cli import run_tierml
from tierml.registry.index import DeviceRow
from tierml.registry.manifest import Release, ReleaseVariant
from tierml.registry.signing import keygen, load_private
from tierml.registry.store import Registry


def _registry(tmp_path) -> Registry:
    keygen(tmp_path / "k")
    key = load_private(tmp_path / "k")
    registry = Registry.open(tmp_path / "reg")
    for version in (1, 2):
        (tmp_path / f"m{version}").write_bytes(f"model {version}".encode())
        artifact = registry.store(tmp_path / f"m{version}", "model.onnx")
        variant = ReleaseVariant(name="fp32", format="onnx", precision="fp32", artifacts=[artifact], latency_ms=5.0)
        registry.publish(Release(model="digits", version=version, devices={"raspberry-pi-5": "fp32"},
                                 variants=[variant]), key)
    registry.index.set_group("field", {"model": "digits", "version": 1})
    for i in range(4):
        registry.index.report(DeviceRow(device=f"d{i}", group="field", device_class="raspberry-pi-5",
                                        last_seen="2026-12-04T00:00:00+00:00",
                                        report={"model": "digits", "version": 1, "state": "COMMITTED",
                                                "stats": {"p95_ms": 5.0, "mean_confidence": 0.9}}))
    return registry


def test_an_operator_starts_runs_and_aborts_a_rollout(tmp_path):
    registry = _registry(tmp_path)
    root = tmp_path / "reg"
    started = json.loads(run_tierml("rollout", "start", root, "--group", "field", "--model", "digits", "--version", "2",
                                    "--waves", "0.25,1", "--bake-s", "0", "--json", check=True).stdout)
    assert started["state"] == "running"
    run_tierml("rollout", "run", root, "--interval-s", "0.05", "--max-s", "0.3", check=True)
    document = registry.index.group("field").document
    assert document["version"] == 1 and list(document["overrides"]) == ["d0"]  # 25% of 4, the rest keep v1
    again = run_tierml("rollout", "start", root, "--group", "field", "--model", "digits", "--version", "2")
    assert again.returncode == 2 and "already has rollout" in again.stderr
    aborted = json.loads(run_tierml("rollout", "abort", root, started["id"], "--reason", "test", "--json",
                                    check=True).stdout)
    assert aborted["state"] == "aborted" and registry.index.group("field").document["overrides"] == {}
    text = run_tierml("rollout", "status", root, check=True).stdout
    assert "assigned v2" in text and "aborted by the operator: test" in text
    missing = run_tierml("rollout", "start", root, "--group", "field", "--model", "digits", "--version", "9")
    assert missing.returncode == 2 and "no release digits v9" in missing.stderr
