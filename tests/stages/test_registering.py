"""`tierml registry publish` of a real `tierml build` (the digits example, built fast): over HTTP to a registry
server and into a root on this machine; the release's golden outputs reproduce from the downloaded model with ONNX
Runtime within the release's tolerance; an operator points a group at it; fsck and list see it."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

import tierml
from tests.support.calibration import calibration
from tests.support.cli import run_tierml
from tests.support.examples import quick_spec
from tests.support.registry import TOKENS, bearer, registry_files
from tests.support.serving import call
from tierml.files import sha256_bytes
from tierml.fleet.server import BackgroundControlPlane
from tierml.hardware.calibrate import save
from tierml.model.session import make_session
from tierml.plan.variants import Ladder
from tierml.registry.manifest import Release, Tolerance
from tierml.registry.signing import Signed, parse_public, verify
from tierml.stages.registering import tolerance_for

TARGETS = ["iphone-15-pro", "coral-usb", "arduino-nano-33-ble-sense"]  # fp32, int8 and an MCU


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    """(spec, OUT) of the digits example built for a phone, an int8-only edge TPU and a microcontroller."""
    folder = tmp_path_factory.mktemp("build")
    save(calibration(efficiency=0.5, session_us=5, node_us=1), folder / "cal.json")
    spec = quick_spec(folder, torch=False, targets=TARGETS)
    out = folder / "out"
    tierml.build(spec, out, calibration=folder / "cal.json")
    return spec, out


def _blob(port: int, digest: str) -> bytes:
    status, _, body = call(port, "GET", f"/v1/blobs/{digest}", headers=bearer("device"))
    assert status == 200 and sha256_bytes(body) == digest
    return body


def _agreement(outputs: np.ndarray, reference: np.ndarray) -> float:
    return float((outputs.argmax(axis=1) == reference.argmax(axis=1)).mean())


def test_a_build_published_over_http_reproduces_its_golden_outputs_from_the_downloaded_model(build, tmp_path):
    spec, out = build
    ladder = Ladder.model_validate_json((out / "ladder.json").read_text())
    files = registry_files(tmp_path)
    with BackgroundControlPlane(files.options()) as server:
        args = ("registry", "publish", spec, "--build", out, "--key", files.publisher_key, "--url", server.url,
                "--json")
        result = run_tierml(*args, "--token", TOKENS["publisher"])
        assert result.returncode == 0, result.stderr
        published = json.loads(result.stdout)
        assert published["devices"] == {"iphone-15-pro": "form-digits-fp32", "coral-usb": "form-digits-int8-qdq"}
        assert (published["version"], published["uploaded"], published["skipped"]) == (1, 5, 0)
        assert any(n.startswith("arduino-nano-33-ble-sense (mcu): not in this release") for n in published["notes"])

        status, headers, body = call(server.port, "GET", "/v1/releases/form-digits/1", headers=bearer("device"))
        assert status == 200 and headers["x-manifest-sha256"] == published["manifest_sha256"]
        release = Release.model_validate(verify(Signed.model_validate_json(body),
                                                [parse_public(files.publisher_public)], "release"))
        assert release.notes == published["notes"] and release.parent is None
        golden = np.load(io.BytesIO(_blob(server.port, release.golden_inputs.sha256)))
        inputs = {name: golden[name] for name in golden.files}
        assert list(inputs) == ["input"] and inputs["input"].shape == (16, 1, 8, 8)
        assert np.array_equal(inputs["input"], np.load(spec.parent / "data" / "eval.npz")["x"][:16])

        measured = {v.name: v for v in ladder.variants}
        for variant in release.variants:
            model = _blob(server.port, variant.artifact("model.onnx").sha256)
            reference = np.load(io.BytesIO(_blob(server.port, variant.golden_outputs.sha256)))
            session = make_session(model)
            got = np.concatenate([session.run(["logits"], {"input": row[None]})[0] for row in inputs["input"]])
            tolerance = variant.tolerance
            assert np.allclose(got, reference["logits"], atol=tolerance.atol, rtol=tolerance.rtol)
            assert _agreement(got, reference["logits"]) >= tolerance.min_agreement
            ladder_variant = measured[variant.name]
            assert variant.lineage["sha256"] == ladder_variant.sha256 == sha256_bytes(model)
            assert variant.latency_ms == ladder_variant.metrics.host_latency.median_ms
            assert variant.quality == ladder_variant.metrics.quality.model_dump()
        tolerances = {v.precision: v.tolerance for v in release.variants}
        assert tolerances["int8"].atol > tolerances["fp32"].atol and tolerances["int8"].min_agreement < 1

        # the same build again: the next version, nothing uploaded twice
        again = json.loads(run_tierml(*args, "--token", TOKENS["publisher"], check=True).stdout)
        assert (again["version"], again["uploaded"], again["skipped"]) == (2, 0, 5)
        refused = run_tierml(*args, "--token", TOKENS["device"])
        assert refused.returncode == 2 and "(403)" in refused.stderr and "check --token" in refused.stderr

        operator = ("--url", server.url, "--token", TOKENS["operator"])
        run_tierml("registry", "desired", "set", "--group", "lab", "--model", "form-digits", "--version", "2",
                   *operator, check=True)
        status, _, body = call(server.port, "GET", "/v1/devices/cam-1/desired?group=lab&class=coral-usb",
                               headers=bearer("device"))
        desired = Signed.model_validate_json(body).document()
        assert status == 200 and (desired["model"], desired["version"]) == ("form-digits", 2)
        listed = json.loads(run_tierml("registry", "list", *operator, "--json", check=True).stdout)
        assert [r["version"] for r in listed["releases"]] == [1, 2]


def test_a_build_published_into_a_local_root_is_listed_and_fsck_finds_damage(build, tmp_path):
    spec, out = build
    files = registry_files(tmp_path)
    root = tmp_path / "registry"
    published = tierml.publish(spec, out, files.publisher_key, root=root)
    assert (published.model, published.version, published.uploaded) == ("form-digits", 1, 5)
    listed = json.loads(run_tierml("registry", "list", root, "--json", check=True).stdout)
    assert [(r["model"], r["version"]) for r in listed["releases"]] == [("form-digits", 1)]
    clean = run_tierml("registry", "fsck", root, "--trust", files.publisher_key.with_suffix(".key.pub"), "--json")
    assert clean.returncode == 0 and json.loads(clean.stdout)["problems"] == []
    stranger = run_tierml("registry", "fsck", root, "--trust", files.public)  # the registry's key signed nothing
    assert stranger.returncode == 1 and "none of which this device trusts" in stranger.stdout

    model = next(p for p in (root / "blobs" / "sha256").rglob("*") if p.is_file() and p.stat().st_size > 10_000)
    model.chmod(0o644)
    model.write_bytes(model.read_bytes()[:-1])
    damaged = run_tierml("registry", "fsck", root, "--json")
    assert damaged.returncode == 1 and "is missing or damaged" in json.loads(damaged.stdout)["problems"][0]

    other = spec.parent / "other.yaml"
    other.write_text(spec.read_text().replace("name: form-digits", "name: other-app"))
    wrong = run_tierml("registry", "publish", other, root, "--build", out, "--key", files.publisher_key)
    assert wrong.returncode == 2 and "was built for app 'form-digits', not 'other-app'" in wrong.stderr


def test_tolerances_scale_with_the_outputs_and_loosen_with_precision():
    outputs = {"logits": np.array([[-10.0, 10.0], [0.0, 5.0]], np.float32)}  # span 20
    fp32, fp16, int8 = (tolerance_for(p, outputs) for p in ("fp32", "fp16", "int8"))
    assert fp32 == Tolerance(atol=20e-4, rtol=1e-3, min_agreement=1.0)
    assert fp32.atol < fp16.atol < int8.atol == pytest.approx(2 * 20 / 255)
    assert tolerance_for("mixed", outputs) == int8 and int8.min_agreement == 0.9
    assert tolerance_for("fp32", {"x": np.zeros((2, 2), np.float32)}).atol == 1e-4  # a flat output: unit scale
