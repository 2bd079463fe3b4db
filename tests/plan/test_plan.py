"""`tierml plan`: the seeds' worked numbers, constraints flipping the decision, and explained output."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml

from tests.support.calibration import calibration
from tests.support.cli import run_tierml
from tests.support.paths import ROOT
from tierml.hardware.calibrate import save
from tierml.plan.network import distance_floor_ms
from tierml.plan.power import battery_share_per_day
from tierml.plan.queueing import erlang_c, md_c
from tierml.stages.planning import plan

DIGITS = ROOT / "examples" / "digits"

# A store server priced so that ten of them are the seed's $100,000 of edge hardware.
STORE_CATALOG = textwrap.dedent("""
    sources:
      seed: {title: "deployment seed worked example", date: "2026"}
    devices:
      - name: store-server
        title: Store edge server
        tier: edge
        kind: edge-cpu
        peak_fp32_gflops: {value: 1000, source: seed}
        memory_bandwidth_gbps: {value: 50, source: seed}
        ram_mb: {value: 32000, source: seed}
        storage_mb: {value: 500000, source: seed}
        power_idle_w: {value: 30, source: seed}
        power_active_w: {value: 100, source: seed}
        price_usd: {value: 10000, source: seed}
""")


def write_spec(tmp_path: Path, **overrides) -> Path:
    """The digits app with parts replaced; the model and data are the bundled example's."""
    spec = yaml.safe_load((DIGITS / "tierml.yaml").read_text())
    spec["model"]["path"] = str(DIGITS / "model.onnx")
    spec["data"] = {"eval": str(DIGITS / "data" / "eval.npz")}
    for key, value in overrides.items():
        target = spec
        *parents, leaf = key.split(".")
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = value
    (tmp_path / "store.yaml").write_text(STORE_CATALOG)
    spec.setdefault("catalog", []).append(str(tmp_path / "store.yaml"))
    path = tmp_path / "tierml.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def run_plan(path: Path):
    cal = calibration(efficiency=0.5, session_us=5, node_us=1)
    return plan(path, calibration=cal)


def test_seed_one_million_requests_a_day_at_a_tenth_of_a_cent(tmp_path):
    path = write_spec(tmp_path, **{
        "requirements.throughput": {"requests_per_day": 1_000_000},
        "requirements.latency": {"p99_ms": 2000},
        "requirements.connectivity": "always",
        "fleet.source": {"device": "raspberry-pi-5", "count": 10, "link": "ethernet-lan", "runs_models": False},
        "fleet.edge": [{"name": "store", "device": "store-server", "count": 10, "link": "wifi-internet"}],
        "fleet.cloud": {"distance_km": 500, "options": [{"name": "api", "device": "aws-g5-xlarge",
                                                         "usd_per_request": 0.001}]},
    })
    result = run_plan(path)
    api = result.candidate("api:api")
    assert api.cost_parts["api requests"] == pytest.approx(365_000)  # 1M/day x $0.001 x 365
    edge = result.candidate("edge:store")
    assert edge.capex.value == pytest.approx(100_000)  # ten $10,000 servers
    assert result.break_even is not None and result.break_even.payback_days is not None
    horizon_days = 3 * 365
    assert result.break_even.payback_days < horizon_days  # the edge hardware pays for itself inside 3 years
    assert result.break_even.payback_days == pytest.approx(100_000 / (api.annual_cost.value - (
        edge.annual_cost.value - 100_000 / 3)) * 365)
    assert result.winner == "edge:store"


def test_seed_rtt_floor_rejects_the_cloud_for_a_10_ms_slo(tmp_path):
    assert distance_floor_ms(4000) == pytest.approx(40.0)  # 4,000 km each way in fibre
    path = write_spec(tmp_path, **{
        "requirements.latency": {"p99_ms": 10},
        "fleet.source": {"device": "raspberry-pi-5", "count": 1, "link": "wifi-internet"},
        "fleet.cloud": {"distance_km": 4000, "options": [{"name": "east", "device": "aws-c7i-xlarge"}]},
    })
    result = run_plan(path)
    cloud = result.candidate("cloud:east")
    assert cloud.binding is not None
    assert cloud.binding.message == "RTT floor 40 ms for 4,000 km > 10 ms SLO (p99)"
    assert result.winner == "local:raspberry-pi-5"


def test_seed_fifty_cameras_need_100_mbit_upstream_or_under_1_mbit_locally(tmp_path):
    path = write_spec(tmp_path, **{
        "requirements.throughput": {"requests_per_day": 50 * 86_400},
        "requirements.latency": {"p99_ms": 1000},
        "requirements.connectivity": "always",
        "fleet.source": {"device": "esp32-cam", "count": 50, "link": "ethernet-lan", "stream_mbps": 2,
                         "runs_models": False},
        "fleet.edge": [{"name": "backroom", "device": "jetson-orin-nano", "link": "wifi-internet"}],
        "fleet.cloud": {"options": [{"name": "gpu", "device": "aws-g5-xlarge"}]},
    })
    result = run_plan(path)
    mbit = 8 / 86_400 / 1e6
    cloud, edge = result.candidate("cloud:gpu"), result.candidate("edge:backroom")
    assert cloud.wide_area_bytes_per_day.value * mbit == pytest.approx(100, rel=0.01)  # 50 x 2 Mbit/s
    assert edge.wide_area_bytes_per_day.value * mbit < 1  # only the results leave the store
    assert "needs 100 Mbit/s upstream over wifi-internet" in cloud.binding.message
    assert result.winner == "edge:backroom"


def test_seed_phone_battery_share():
    # 100 inferences an hour at 0.1 J on an ~18.5 Wh phone battery is about 0.36% of it a day.
    assert battery_share_per_day(0.1, 100, 18.5) == pytest.approx(0.0036, rel=0.01)


def test_battery_life_follows_from_power(tmp_path):
    path = write_spec(tmp_path, **{"requirements.power": {"battery_wh": 18.5}})
    local = run_plan(path).candidate("local:iphone-15-pro")
    power = local.onsite_power.value
    assert local.battery_hours.value == pytest.approx(18.5 / power)


def test_privacy_device_removes_every_candidate_that_ships_raw_data(tmp_path):
    result = run_plan(write_spec(tmp_path, **{"requirements.privacy": "device"}))
    for c in result.candidates:
        if c.raw_data_crosses:
            assert not c.feasible and any(r.constraint == "privacy" for r in c.rejections)
    assert all(not c.uses_cloud for c in result.feasible)
    assert result.winner == "local:iphone-15-pro"


def test_offline_removes_every_candidate_that_needs_a_link(tmp_path):
    result = run_plan(write_spec(tmp_path, **{"requirements.connectivity": "offline"}))
    for c in result.candidates:
        if c.links:
            assert any(r.constraint == "connectivity" for r in c.rejections)
    assert {c.name for c in result.feasible} <= {"local:iphone-15-pro", "browser:iphone-15-pro"}


def test_sub_milliwatt_budget_leaves_only_the_microcontroller(tmp_path):
    path = write_spec(tmp_path, **{
        "requirements.power": {"budget_w": 0.0009},
        "requirements.latency": {"p99_ms": 2000},
        "requirements.throughput": {"requests_per_day": 1000 * 8640},  # one inference per 10 s per node
        "fleet.source": {"device": "nrf52840-sensor", "count": 1000, "link": "ble"},
        "fleet.edge": [{"name": "gateway", "device": "raspberry-pi-5", "count": 10, "link": "wifi-internet"}],
        "fleet.cloud": {"distance_km": 500, "options": [{"name": "lambda", "device": "aws-lambda-2gb"}]},
    })
    result = run_plan(path)
    assert result.feasible and all(c.local_only and c.stages[0].tier == "mcu" for c in result.feasible)
    for c in result.candidates:
        if not c.local_only:
            assert any(r.constraint == "power" and "budget" in r.message for r in c.rejections), c.name
    phone = write_spec(tmp_path, **{"requirements.power": {"budget_w": 0.0009}})
    nothing = run_plan(phone)
    assert nothing.winner is None  # a phone idles above 1 mW: no candidate, with the reason
    assert all(any(r.constraint == "power" for r in c.rejections) for c in nothing.candidates)


def test_every_number_says_how_it_was_obtained(tmp_path):
    data = json.loads(run_plan(write_spec(tmp_path)).model_dump_json())
    estimates = []

    def walk(node):
        if isinstance(node, dict):
            if {"value", "unit", "method"} <= node.keys():
                estimates.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(data)
    assert len(estimates) > 100
    assert {e["method"] for e in estimates} <= {"measured", "calibrated", "catalogue"}
    assert data["accuracy"]["method"] == "measured" and data["accuracy"]["value"] >= 0.95
    for candidate in data["candidates"]:
        for key in ("latency_p50", "latency_p99", "annual_cost", "horizon_cost", "upstream_bytes_per_day"):
            assert candidate[key]["method"] in ("measured", "calibrated", "catalogue")


def test_queueing_formulas():
    assert erlang_c(1, 0.5) == pytest.approx(0.5)  # M/M/1: P(wait) = utilisation
    queue = md_c(arrival_rate=50, service_s=0.01, servers=1)  # utilisation 0.5
    assert queue.mean_wait_s == pytest.approx(0.5 * 0.5 / (1 / 0.01 - 50))  # half the M/M/1 wait
    assert not md_c(arrival_rate=200, service_s=0.01, servers=1).stable


@pytest.fixture
def cal_file(tmp_path):
    path = tmp_path / "cal.json"
    save(calibration(efficiency=0.5, session_us=5, node_us=1), path)
    return path


def test_cli_plan_explains_and_reports(tmp_path, cal_file):
    report = tmp_path / "plan.html"
    result = run_tierml("plan", DIGITS / "tierml.yaml", "--calibration", cal_file, "--report", report)
    assert result.returncode == 0, result.stderr
    assert "winner: local:iphone-15-pro" in result.stdout and "latency (p99 <= 200 ms)" in result.stdout
    assert report.read_text().count("<svg") >= 3


def test_cli_plan_exits_3_when_nothing_is_feasible(tmp_path, cal_file):
    path = write_spec(tmp_path, **{"requirements.power": {"budget_w": 0.0001}})
    result = run_tierml("plan", path, "--calibration", cal_file, "--json")
    assert result.returncode == 3
    data = json.loads(result.stdout)
    assert data["winner"] is None
    assert all(c["rejections"] for c in data["candidates"])


@pytest.mark.parametrize(("edit", "fragments"), [
    (lambda s: s.replace("privacy: cloud", "privacy: anywhere"),
     ["tierml.yaml:17: requirements.privacy:", "'device', 'local-network' or 'cloud'"]),
    (lambda s: s.replace("    device: iphone-15-pro", "    device: iphone-16"),
     ["tierml.yaml:23: fleet.source.device: unknown device 'iphone-16'", "did you mean"]),
    (lambda s: s.replace("  throughput: {requests_per_day: 50000}\n", ""),
     ["requirements.throughput: Field required"]),
    (lambda s: s.replace("path: model.onnx", "path: missing.onnx"),
     ["tierml.yaml:6: model.path: model 'missing.onnx' not found"]),
    (lambda s: s + "fleet: {}\n", ["key 'fleet' is given twice"]),
])
def test_malformed_spec_is_one_line_naming_the_field(tmp_path, cal_file, edit, fragments):
    for name in ("model.onnx",):
        (tmp_path / name).write_bytes((DIGITS / name).read_bytes())
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "eval.npz").write_bytes((DIGITS / "data" / "eval.npz").read_bytes())
    (tmp_path / "data" / "calib.npz").write_bytes((DIGITS / "data" / "calib.npz").read_bytes())
    spec = tmp_path / "tierml.yaml"
    spec.write_text(edit((DIGITS / "tierml.yaml").read_text()))
    result = run_tierml("plan", spec, "--calibration", cal_file)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_schema_is_json_schema():
    result = run_tierml("plan", "--schema")
    schema = json.loads(result.stdout)
    assert schema["title"] == "AppSpec" and "requirements" in schema["properties"]
