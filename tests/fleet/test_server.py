"""The registry server's life: a restart on the same root keeps every release, blob, group, report and record; bad
start-up options are refused with the fix; `tierml registry serve` drains and exits 0 on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest

from tests.support.cli import TIERML
from tests.support.registry import TOKENS, bearer, publish, registry_files, signed_release, upload
from tests.support.serving import call, free_port
from tierml.errors import TiermlError
from tierml.fleet.server import BackgroundControlPlane
from tierml.registry.signing import Signed


def test_a_restart_on_the_same_root_keeps_everything(tmp_path):
    files = registry_files(tmp_path)
    with BackgroundControlPlane(files.options()) as server:
        digest = upload(server.port, b"calibration table")
        status, row = publish(server.port, signed_release(server.port, files.publisher_key))
        assert status == 201
        call(server.port, "PUT", "/v1/groups/lab/desired", {"model": "digits", "version": 1}, bearer("operator"))
        before = Signed.model_validate_json(call(server.port, "GET", "/v1/devices/cam-1/desired?group=lab",
                                                 headers=bearer("device"))[2]).document()
        call(server.port, "POST", "/v1/devices/cam-1/report", {"group": "lab", "device_class": "raspberry-pi-5"},
             bearer("device"))
        record = {"key": "cam-1:1", "seq": 1, "kind": "inference", "body": {}}
        call(server.port, "POST", "/v1/devices/cam-1/records", {"records": [record]}, bearer("device"))

    with BackgroundControlPlane(files.options()) as server:
        assert call(server.port, "GET", f"/v1/blobs/{digest}", headers=bearer("device"))[2] == b"calibration table"
        status, _, body = call(server.port, "GET", "/v1/releases", headers=bearer("device"))
        assert [r["manifest_sha256"] for r in json.loads(body)] == [row["manifest_sha256"]]
        after = Signed.model_validate_json(call(server.port, "GET", "/v1/devices/cam-1/desired?group=lab",
                                                headers=bearer("device"))[2]).document()
        same = ("group", "device", "revision", "model", "version", "manifest_sha256")
        assert {k: after[k] for k in same} == {k: before[k] for k in same}
        assert json.loads(call(server.port, "GET", "/v1/devices", headers=bearer("operator"))[2])[0]["device"] == (
            "cam-1")
        status, _, body = call(server.port, "POST", "/v1/devices/cam-1/records", {"records": [record]},
                               bearer("device"))
        assert json.loads(body) == {"stored": 0, "acked_seq": 1}  # what was stored before the restart stays stored
        assert publish(server.port, signed_release(server.port, files.publisher_key))[0] == 409


def test_start_up_refuses_missing_trust_keys_tokens_and_a_taken_port(tmp_path):
    files = registry_files(tmp_path)
    with pytest.raises(TiermlError, match=r"--trust KEY\.pub"):
        files.options(trust=[])
    with pytest.raises(TiermlError, match=r"tokens file .* not found"):
        BackgroundControlPlane(files.options(tokens=tmp_path / "missing.json"))
    (tmp_path / "weak.json").write_text(json.dumps({"tokens": {"abc": "device"}}))
    with pytest.raises(TiermlError, match="at least 16 random"):
        BackgroundControlPlane(files.options(tokens=tmp_path / "weak.json"))
    (tmp_path / "role.json").write_text(json.dumps({"tokens": {TOKENS["device"]: "admin"}}))
    with pytest.raises(TiermlError, match="role 'admin'"):
        BackgroundControlPlane(files.options(tokens=tmp_path / "role.json"))
    with pytest.raises(TiermlError, match="registry keygen"):
        BackgroundControlPlane(files.options(key=tmp_path / "no.key"))
    with BackgroundControlPlane(files.options()) as server, pytest.raises(TiermlError, match="choose another --port"):
        BackgroundControlPlane(files.options(port=server.port))


def test_registry_serve_answers_then_drains_and_exits_0_on_sigterm(tmp_path):
    files = registry_files(tmp_path)
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as sink:
        process = subprocess.Popen([*TIERML, "registry", "serve", str(files.root), "--key", str(files.key),
                                    "--trust", files.publisher_public, "--tokens", str(files.tokens),
                                    "--port", str(port), "--access-log"], stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None and time.monotonic() < deadline, f"not serving: {log.read_text()}"
            try:
                if call(port, "GET", "/v1/health")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        assert upload(port, b"blob")
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    output = log.read_text()
    assert f"listening on http://127.0.0.1:{port}" in output
    assert '"method": "PUT"' in output and '"role": "publisher"' in output and '"status": 201' in output
    assert "Traceback" not in output
