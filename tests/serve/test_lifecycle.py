"""`tierml serve` as a process: SIGTERM under load drains every accepted request and exits 0."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from pathlib import Path

from tests.support.cli import run_tierml
from tests.support.serving import ServerProcess, slow_model, write_model


def test_sigterm_under_load_answers_every_accepted_request_then_exits_0(tmp_path) -> None:
    write_model(tmp_path, "m", slow_model(512, 16), "max_batch_size: 2\ndynamic_batching { }\n")
    body = json.dumps({"inputs": [{"name": "x", "shape": [1, 512], "datatype": "FP32", "data": [0.1] * 512}]})
    request = (f"POST /v2/models/m/infer HTTP/1.1\r\nhost: x\r\ncontent-length: {len(body)}\r\n\r\n{body}").encode()
    outcomes: list[tuple[float, float, str]] = []  # (sent, finished, status or error)
    term_at = [float("inf")]

    def client() -> None:
        sock = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if sock is None:
                    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
                sock.sendall(request)
                sent = time.monotonic()
                status, close = read_response(sock)
                outcomes.append((sent, time.monotonic(), status))
                if close:
                    sock.close()
                    sock = None
            except OSError as exc:
                outcomes.append((time.monotonic(), time.monotonic(), type(exc).__name__))
                if sock is not None:
                    sock.close()
                sock = None
                if time.monotonic() > term_at[0]:
                    return

    with ServerProcess(tmp_path, "--access-log") as server:
        threads = [threading.Thread(target=client) for _ in range(12)]
        for t in threads:
            t.start()
        time.sleep(2.0)
        term_at[0] = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        code = server.process.wait(60)
        for t in threads:
            t.join(60)
        log = server.output()
    assert code == 0, log
    before = [o for o in outcomes if o[0] < term_at[0] - 0.05]
    assert before and all(status == "200" for _, _, status in before), [o for o in before if o[2] != "200"][:5]
    after = [o for o in outcomes if o[0] >= term_at[0] - 0.05]
    assert all(status == "200" or not status.isdigit() for _, _, status in after), after[:5]
    drained = [o for o in outcomes if o[2] == "200" and o[1] > term_at[0]]
    assert len(drained) >= 6, "the requests queued at SIGTERM were answered after it"
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    served = sum(1 for r in records if r["path"].endswith("/infer") and r["status"] == 200)
    assert served == sum(1 for o in outcomes if o[2] == "200"), "every answer the server sent reached its client"
    print(f"exit {code}; {served} answered (200), {len(drained)} of them after SIGTERM; "
          f"{len(after) - sum(1 for o in after if o[2] == '200')} attempts after it found the socket closed")


def read_response(sock: socket.socket) -> tuple[str, bool]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionResetError("closed before a response")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    length = int(headers["content-length"])
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionResetError("closed mid-response")
        rest += chunk
    return lines[0].split()[1], headers.get("connection") == "close"


def listening_addresses(port: int) -> list[str]:
    """Local addresses of the sockets listening on `port` (Linux /proc/net/tcp{,6}; hex as the kernel writes it)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, _, hex_port = fields[1].partition(":")
            if fields[3] == "0A" and int(hex_port, 16) == port:
                found.append(address)
    return found


def test_cli_binds_loopback_only_by_default(tmp_path) -> None:
    write_model(tmp_path, "m", slow_model(8, 1))
    with ServerProcess(tmp_path) as server:
        addresses = listening_addresses(server.port)
        banner = server.output()
    assert addresses == ["0100007F"], addresses  # 127.0.0.1, nothing else (no 0.0.0.0, no ::)
    assert f"listening on http://127.0.0.1:{server.port}" in banner


def test_cli_bad_repository_is_one_line_exit_2(tmp_path) -> None:
    result = run_tierml("serve", tmp_path / "nope", timeout=60, env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 2
    assert "is not a folder" in result.stderr and "Traceback" not in result.stderr


def test_cli_broken_model_fails_at_start(tmp_path) -> None:
    (tmp_path / "m" / "1").mkdir(parents=True)
    (tmp_path / "m" / "1" / "model.onnx").write_bytes(b"junk")
    result = run_tierml("serve", tmp_path, "--port", "0", timeout=60)
    assert result.returncode == 2 and "failed to load model 'm'" in result.stderr
