"""Shared pieces of the serving tests: small real ONNX models, a repository, raw HTTP calls."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tests.support.cli import TIERML
from tests.support.paths import DIGITS
from tests.support.serve_models import mlp, write_model

# Every OIP datatype with the ONNX type an Identity passes through.
DATATYPES = {
    "BOOL": TensorProto.BOOL, "UINT8": TensorProto.UINT8, "UINT16": TensorProto.UINT16,
    "UINT32": TensorProto.UINT32, "UINT64": TensorProto.UINT64, "INT8": TensorProto.INT8,
    "INT16": TensorProto.INT16, "INT32": TensorProto.INT32, "INT64": TensorProto.INT64,
    "FP16": TensorProto.FLOAT16, "FP32": TensorProto.FLOAT, "FP64": TensorProto.DOUBLE,
    "BYTES": TensorProto.STRING,
}

MLP_CONFIG = """
name: "mlp"
platform: "onnxruntime_onnx"
max_batch_size: 8
input [ { name: "x" data_type: TYPE_FP32 dims: [ 64 ] } ]
output [ { name: "y" data_type: TYPE_FP32 dims: [ 10 ] } ]
dynamic_batching { max_queue_delay_microseconds: 500 }
instance_group [ { count: 1 kind: KIND_CPU } ]
parameters { key: "intra_op_thread_count" value: { string_value: "1" } }
"""


def identity_model() -> onnx.ModelProto:
    """One Identity per datatype: input `in_<T>` [batch, 3] -> output `out_<T>`."""
    nodes = [helper.make_node("Identity", [f"in_{t}"], [f"out_{t}"]) for t in DATATYPES]
    graph = helper.make_graph(
        nodes, "identity",
        [helper.make_tensor_value_info(f"in_{t}", e, ["batch", 3]) for t, e in DATATYPES.items()],
        [helper.make_tensor_value_info(f"out_{t}", e, ["batch", 3]) for t, e in DATATYPES.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def slow_model(width: int = 512, layers: int = 16) -> onnx.ModelProto:
    """A dense stack of `layers` MatMuls, `x` [batch, width] -> `y`: several ms per row on one thread."""
    rng = np.random.default_rng(1)
    weights = [numpy_helper.from_array((rng.standard_normal((width, width)) / np.sqrt(width)).astype(np.float32),
                                       f"w{i}") for i in range(layers)]
    names = ["x", *[f"h{i}" for i in range(layers - 1)], "y"]
    nodes = [helper.make_node("MatMul", [names[i], f"w{i}"], [names[i + 1]]) for i in range(layers)]
    graph = helper.make_graph(nodes, "slow", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", width])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", width])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def make_repo(root: Path) -> Path:
    """`mlp` (pbtxt config), `digits` (no config: auto-complete) and `identity` (YAML config, all datatypes)."""
    write_model(root, "mlp", mlp(), MLP_CONFIG)
    digits = root / "digits" / "1"
    digits.mkdir(parents=True)
    (digits / "model.onnx").write_bytes(DIGITS.read_bytes())
    write_model(root, "identity", identity_model())
    (root / "identity" / "config.yaml").write_text("max_batch_size: 4\ndynamic_batching: {}\n"
                                                   "instance_group: [{count: 1}]\n"
                                                   "parameters: {intra_op_thread_count: 1}\n")
    return root


def call(port: int, method: str, path: str, body: bytes | str | dict | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One raw HTTP request on a fresh connection: (status, headers in lower case, body)."""
    if isinstance(body, dict):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def infer_body(x: np.ndarray, name: str = "x") -> dict:
    return {"inputs": [{"name": name, "shape": list(x.shape), "datatype": "FP32", "data": x.ravel().tolist()}]}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident memory of a process (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


class ServerProcess:
    """`tierml serve` as a child process on a free loopback port; stopped with SIGTERM on exit."""

    def __init__(self, repo: Path, *args: str, ready_timeout_s: float = 60.0) -> None:
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="tierml-serve-", suffix=".log", delete=False)  # noqa: SIM115
        self.process = subprocess.Popen([*TIERML, "serve", str(repo), "--port", str(self.port), *args],
                                        stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + ready_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited with {self.process.returncode}: {self.output()}")
            try:
                if call(self.port, "GET", "/v2/health/ready")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"server not ready within {ready_timeout_s} s: {self.output()}")

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def stop(self, timeout_s: float = 60.0) -> int:
        """SIGTERM, wait for the exit code (SIGKILL if it does not come)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        Path(self.log.name).unlink(missing_ok=True)
