"""The `tierml` command as users run it: JSON on request, reports, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.support.cli import run_tierml


def test_analyze_json(digits_path):
    data = json.loads(run_tierml("analyze", digits_path, "-s", "input=1x1x8x8", "--json", check=True).stdout)
    profile = data["profile"]
    assert profile["macs"] == 456_704
    assert profile["params"] == 19_178
    assert profile["memory"]["peak_activation_bytes"] == 2 * 32 * 64 * 4
    assert [t["tier"] for t in profile["tiers"] if t["unsupported"]] == []
    assert data["host_latency"] is None


def test_analyze_measures_and_writes_a_report(digits_path, tmp_path):
    report = tmp_path / "analyze.html"
    data = json.loads(run_tierml("analyze", digits_path, "-s", "input=8x1x8x8", "--measure", "--per-node",
                                 "--runs", "20", "--json", "--report", report, check=True).stdout)
    stats = data["host_latency"]
    assert 0 < stats["min_ms"] <= stats["median_ms"] <= stats["p90_ms"] <= stats["p99_ms"]
    assert stats["runs"] >= 20 and stats["per_node"]  # fast models get more runs, to fill half a second
    html = report.read_text()
    assert html.count("<svg") >= 3 and "Memory over the execution order" in html


def test_tables_are_the_default_output(digits_path):
    text = run_tierml("analyze", digits_path, "-s", "1x1x8x8", check=True).stdout
    assert "peak activations" in text and "runtime support per tier" in text


def test_devices_lists_the_catalogue_with_sources():
    data = json.loads(run_tierml("devices", "--json", check=True).stdout)
    assert "arduino-nano-33-ble-sense" in data["devices"] and "lora" in data["links"]
    nano = data["devices"]["arduino-nano-33-ble-sense"]
    assert data["sources"][nano["ram_mb"]["source"]]["date"]
    text = run_tierml("devices", "--tier", "mcu", "--no-links", check=True).stdout
    assert "esp32-cam" in text and "dgx-a100" not in text


@pytest.fixture(scope="module")
def quick_calibration(tmp_path_factory):
    path = tmp_path_factory.mktemp("cal") / "host.json"
    result = run_tierml("calibrate", "--quick", "--out", path, "--json", check=True)
    data = json.loads(result.stdout)
    assert data["matmul_gflops"] > 1 and data["memory_gbps"] > 0.5 and len(data["samples"]) > 30
    return path


def test_estimate_labels_every_latency_with_its_method(digits_path, quick_calibration, tmp_path):
    report = tmp_path / "estimate.html"
    result = run_tierml("estimate", digits_path, "-s", "input=1x1x8x8", "--calibration", quick_calibration,
                        "-d", "host", "-d", "raspberry-pi-5", "-d", "esp32-cam", "-l", "wifi-lan", "-l", "lora",
                        "--json", "--report", report, check=True)
    data = json.loads(result.stdout)
    methods = {d["device"]: (d["latency"]["method"], d["precision"]) for d in data["devices"]}
    assert methods == {"host": ("calibrated", "fp32"), "raspberry-pi-5": ("catalogue", "fp32"),
                       "esp32-cam": ("catalogue", "int8")}
    assert all(d["ram"]["need_bytes"] > 0 for d in data["devices"])
    assert {k["link"] for k in data["links"]} == {"wifi-lan", "lora"}
    assert "<svg" in report.read_text()


def one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_user_errors_are_one_line_with_exit_code_2(digits_path, tmp_path):
    one_line_error(run_tierml("analyze", tmp_path / "missing.onnx"), "not found")
    text = tmp_path / "notes.onnx"
    text.write_text("this is not a model\n")
    one_line_error(run_tierml("analyze", text), "is not an ONNX model")
    truncated = tmp_path / "cut.onnx"
    truncated.write_bytes(digits_path.read_bytes()[:5000])
    one_line_error(run_tierml("analyze", truncated), "truncated or corrupt")
    one_line_error(run_tierml("analyze", digits_path), "dim 0 ('batch') is dynamic", "--input-shape")
    one_line_error(run_tierml("analyze", digits_path, "-s", "input=1xAx8"), "bad input shape")
    one_line_error(run_tierml("estimate", digits_path, "-s", "1x1x8x8", "-d", "jetson-nanoo"),
                   "unknown device 'jetson-nanoo'", "did you mean")
    one_line_error(run_tierml("estimate", digits_path, "-s", "1x1x8x8", "-l", "carrier-pigeon"),
                   "unknown link 'carrier-pigeon'")
    one_line_error(run_tierml("estimate", digits_path, "--precision", "int4"), "--precision")
    one_line_error(run_tierml("analyze", digits_path, "-s", "1x1x8x8", "--report", tmp_path), "is a folder")
    bad_yaml = tmp_path / "mine.yaml"
    bad_yaml.write_text("devices:\n  - name: x\n    title: [oops\n")
    one_line_error(run_tierml("devices", "--catalog", bad_yaml), "mine.yaml:", "malformed YAML")
    bad_field = tmp_path / "field.yaml"
    bad_field.write_text("devices:\n  - name: x\n    title: X\n    tier: edge\n    kind: k\n"
                         "    memory_bandwidth_gbps: {value: 1, source: mlsysbook}\n"
                         "    ram_mb: {value: -1, source: mlsysbook}\n")
    one_line_error(run_tierml("devices", "--catalog", bad_field), "field.yaml:7", "devices[x].ram_mb.value")


def test_usage_errors_exit_2():
    result = run_tierml("analyze")
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_help_lists_the_verbs():
    text = run_tierml("--help", check=True).stdout
    for verb in ("analyze", "estimate", "devices", "calibrate"):
        assert verb in text
