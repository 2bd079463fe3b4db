"""The split runtime end to end: head here, tail on a real tierml server behind the link proxy, fallback."""

from __future__ import annotations

import socket
import time

import numpy as np
import pytest

from tests.support.onnx_models import residual_model
from tests.support.references import full_outputs
from tierml.hardware.link import BackgroundLinkProxy, Direction
from tierml.hybrid.bundle import load_bundle, write_bundle
from tierml.hybrid.cost import LinkState
from tierml.hybrid.planner import Side, plan_split
from tierml.hybrid.runtime import SplitRuntime
from tierml.serve.server import BackgroundServer, ServeOptions


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def bundle(tmp_path):
    # a device 3000x slower than this host makes the server worth reaching for this tiny model
    plan = plan_split(residual_model(), None, Side("host", 3000.0), Side("host"), LinkState(50, 50, 4),
                      encodings=["fp32", "fp16+lz4", "int8c"])
    write_bundle(tmp_path, "resnet", plan.graph, plan.profiles, plan.table, ["fp32", "fp16+lz4", "int8c"])
    return load_bundle(tmp_path)


def test_remote_answers_match_the_full_model_and_server_down_degrades_without_loss(bundle):
    port = free_port()
    x = np.random.default_rng(1).standard_normal((1, 3, 8, 8)).astype(np.float32)
    want = full_outputs(residual_model(), {"x": x})["logits"]
    server = BackgroundServer(ServeOptions(repository=bundle.root / "server", port=port))
    try:
        with BackgroundLinkProxy(("127.0.0.1", port), Direction(50, 2), Direction(50, 2)) as proxy, \
                SplitRuntime(bundle, f"http://127.0.0.1:{proxy.port}", device_factor=1.0, probe_every_s=0.2,
                             initial_mbps=50) as runtime:
            first = [runtime.infer({"x": x}) for _ in range(3)]
            assert all(not r.degraded and r.up_bytes > 0 for r in first)
            for r in first:
                np.testing.assert_allclose(r.outputs["logits"], want, rtol=0.05, atol=0.05 * np.abs(want).max())
            server.stop()
            down = [runtime.infer({"x": x}) for _ in range(5)]
            assert all(r.degraded and "unreachable" in r.reason for r in down)
            for r in down:
                np.testing.assert_allclose(r.outputs["logits"], want, rtol=1e-5, atol=1e-4)
            server = BackgroundServer(ServeOptions(repository=bundle.root / "server", port=port))
            deadline = time.monotonic() + 10
            while not runtime.server_up and time.monotonic() < deadline:
                time.sleep(0.05)
            back = runtime.infer({"x": x})
            assert not back.degraded and back.up_bytes > 0
    finally:
        server.stop()


def test_a_round_trip_spike_past_the_deadline_answers_locally(bundle):
    port = free_port()
    x = np.zeros((1, 3, 8, 8), np.float32)
    with BackgroundServer(ServeOptions(repository=bundle.root / "server", port=port)), \
            SplitRuntime(bundle, f"http://127.0.0.1:{port}", deadline_ms=100, initial_mbps=50,
                         probe_every_s=60) as runtime:
        assert not runtime.infer({"x": x}).degraded
        runtime.estimate.rtt_ms = 500.0  # remote now predicts > 500 ms; the device alone takes ~80 ms
        result = runtime.infer({"x": x})
    assert result.degraded and result.reason.startswith("deadline") and result.up_bytes == 0
