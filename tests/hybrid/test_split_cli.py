"""`tierml split` from the command line: ranked cuts as JSON, a bundle, and errors that say what to fix."""

from __future__ import annotations

import json

import onnx

from tests.support.cli import run_tierml
from tests.support.onnx_models import residual_model


def test_ranked_cuts_as_json_and_a_bundle(tmp_path):
    model = tmp_path / "resnet.onnx"
    onnx.save(residual_model(), model)
    result = run_tierml("split", str(model), "--device-factor", "500", "--link", "dads-wifi", "--objective",
                        "throughput", "--out", str(tmp_path / "bundle"), "--json", "--report", str(tmp_path / "r.html"))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["exhaustive"] and data["cuts_enumerated"] == 15 and data["link"] == "dads-wifi"
    ranked = data["ranked"]
    assert [r["slowest_stage_ms"] for r in ranked] == sorted(r["slowest_stage_ms"] for r in ranked)
    assert {"head_ms", "encode_ms", "network_ms", "decode_ms", "tail_ms", "up_bytes"} <= set(ranked[0])
    assert (tmp_path / "bundle" / "split.json").exists() and (tmp_path / "bundle" / "device" / "full.onnx").exists()
    assert (tmp_path / "bundle" / "server" / "tierml_probe" / "1" / "model.onnx").exists()
    page = (tmp_path / "r.html").read_text()
    assert "<svg" in page and "Bandwidth table" in page and "chosen at this link" in page


def test_errors_name_the_fix(tmp_path):
    model = tmp_path / "resnet.onnx"
    onnx.save(residual_model(), model)
    unknown = run_tierml("split", str(model), "--link", "dads-5g")
    assert unknown.returncode == 2 and "dads-4g" in unknown.stderr
    bad = run_tierml("split", str(model), "--encodings", "int4")
    assert bad.returncode == 2 and "int8c+lz4" in bad.stderr
    run = run_tierml("split", "run", str(tmp_path), "--server", "http://127.0.0.1:9")
    assert run.returncode == 2 and "tierml split MODEL --out DIR" in run.stderr


def test_catalogue_devices_are_estimated_with_the_calibration():
    from tests.support.calibration import calibration
    from tierml.hardware.catalog import load_catalog
    from tierml.hardware.roofline import RooflineEstimator
    from tierml.hybrid.cost import LinkState
    from tierml.hybrid.planner import plan_split, side_for

    cat = load_catalog()
    estimator = RooflineEstimator(calibration(0.5))
    pi = side_for("raspberry-pi-5", 1.0, cat.devices, estimator)
    cloud = side_for("aws-c7i-xlarge", 1.0, cat.devices, estimator)
    plan = plan_split(residual_model(), None, pi, cloud, LinkState(5.85, 23.4, 60))
    assert {p.method for p in plan.profiles} == {"calibrated"}
    local = next(p for p in plan.profiles if p.local)
    remote = next(p for p in plan.profiles if not p.cut.head)
    assert local.head_ms > 0 and remote.tail_ms > 0 and remote.tail_ms < local.head_ms  # the server is faster
