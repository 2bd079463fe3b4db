"""The link proxy imposes its delay and rate, changes them at run time, and agrees with kernel tbf shaping."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest

from tests.support.paths import ROOT
from tierml.hardware.link import BackgroundLinkProxy, Direction


class Sink:
    """A TCP server on 127.0.0.1: reads a 4-byte length, that many bytes, answers one byte."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=_answer, args=(conn,), daemon=True).start()

    def close(self) -> None:
        self.sock.close()


def _answer(conn: socket.socket) -> None:
    with conn:
        while header := _read(conn, 4):
            _read(conn, int.from_bytes(header, "big"))
            conn.sendall(b"k")


def _read(conn: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = conn.recv(min(65536, size - len(data)))
        if not chunk:
            return b""
        data += chunk
    return bytes(data)


def send_seconds(port: int, size: int, host: str = "127.0.0.1") -> float:
    """Seconds from the first byte sent to the one-byte answer (a fresh connection each time)."""
    with socket.create_connection((host, port), timeout=30) as conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        start = time.perf_counter()
        conn.sendall(size.to_bytes(4, "big") + bytes(size))
        assert conn.recv(1) == b"k"
        return time.perf_counter() - start


@pytest.fixture
def sink():
    server = Sink()
    yield server
    server.close()


def test_small_messages_take_the_round_trip_delay(sink):
    with BackgroundLinkProxy(("127.0.0.1", sink.port), Direction(None, 25), Direction(None, 25)) as proxy:
        seconds = sorted(send_seconds(proxy.port, 64) for _ in range(5))[2]
    assert 0.050 <= seconds < 0.060


def test_large_messages_take_the_rate(sink):
    size = 250_000  # 2 Mbit: 0.2 s at 10 Mbit/s (less the 4 KiB burst), plus 2 x 10 ms
    with BackgroundLinkProxy(("127.0.0.1", sink.port), Direction(10, 10), Direction(10, 10)) as proxy:
        seconds = send_seconds(proxy.port, size)
    assert seconds == pytest.approx((size - Direction().burst_bytes) * 8 / 10e6 + 0.02, rel=0.1)


def test_rate_changes_at_run_time(sink):
    with BackgroundLinkProxy(("127.0.0.1", sink.port), Direction(20), Direction(20)) as proxy:
        fast = send_seconds(proxy.port, 100_000)
        proxy.set_rate(up_mbps=2)
        time.sleep(0.05)
        slow = send_seconds(proxy.port, 100_000)
    burst = Direction().burst_bytes  # the first 4 KiB leave at once, as from a full token bucket
    assert fast == pytest.approx((100_000 - burst) * 8 / 20e6, rel=0.25)
    assert slow == pytest.approx((100_000 - burst) * 8 / 2e6, rel=0.1)


def test_jitter_spreads_but_never_reorders(sink):
    with BackgroundLinkProxy(("127.0.0.1", sink.port), Direction(None, 20, 10), Direction(None, 0)) as proxy:
        seconds = [send_seconds(proxy.port, 64) for _ in range(12)]
    assert min(seconds) >= 0.010 and max(seconds) < 0.045 and max(seconds) - min(seconds) > 0.004


NS_A, NS_B = "tmltest_split_a", "tmltest_split_b"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("tc") is None,
                    reason="kernel shaping needs root and iproute2 (tc, ip netns)")
def test_proxy_matches_kernel_tbf_on_a_veth_pair(sink):
    """Same transfers through kernel tbf (veth between two namespaces) and through the proxy, same rate."""
    size, rates = 400_000, (1.1, 5.85, 18.88)
    receiver = None
    try:
        for ns in (NS_A, NS_B):
            _ip("netns", "add", ns)
        _ip("link", "add", "tmlsplit-a", "type", "veth", "peer", "name", "tmlsplit-b")
        _ip("link", "set", "tmlsplit-a", "netns", NS_A)
        _ip("link", "set", "tmlsplit-b", "netns", NS_B)
        _ip("-n", NS_A, "addr", "add", "10.79.0.1/24", "dev", "tmlsplit-a")
        _ip("-n", NS_B, "addr", "add", "10.79.0.2/24", "dev", "tmlsplit-b")
        for ns, dev in ((NS_A, "tmlsplit-a"), (NS_B, "tmlsplit-b")):
            _ip("-n", ns, "link", "set", dev, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        receiver = subprocess.Popen(["ip", "netns", "exec", NS_B, sys.executable, "-c",
                                     "import tests.hardware.test_link as t, time; "
                                     "s = t.Sink.__new__(t.Sink); import socket, threading; "
                                     "s.sock = socket.create_server(('10.79.0.2', 9911)); s._serve()"],
                                    cwd=ROOT)
        kernel, proxied = {}, {}
        for rate in rates:
            qdisc = ["tc", "qdisc", "replace", "dev", "tmlsplit-a", "root", "tbf", "rate", f"{rate}mbit",
                     "burst", "32kbit", "latency", "400ms"]
            subprocess.run(["ip", "netns", "exec", NS_A, *qdisc], check=True, capture_output=True)
            kernel[rate] = _median_in_ns(size)
            with BackgroundLinkProxy(("127.0.0.1", sink.port), Direction(rate, burst_bytes=4096),
                                     Direction(None)) as proxy:
                proxied[rate] = sorted(send_seconds(proxy.port, size) for _ in range(3))[1]
        print({rate: (round(kernel[rate], 4), round(proxied[rate], 4)) for rate in rates})  # seconds: kernel, proxy
        for rate in rates:
            assert proxied[rate] == pytest.approx(kernel[rate], rel=0.12), (rate, kernel, proxied)
    finally:
        if receiver is not None:
            receiver.kill()
            receiver.wait()
        for ns in (NS_A, NS_B):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    assert NS_A not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


def _median_in_ns(size: int) -> float:
    code = ("import tests.hardware.test_link as t, time; time.sleep(0.3); "
            f"print(sorted(t.send_seconds(9911, {size}, '10.79.0.2') for _ in range(3))[1])")
    out = subprocess.run(["ip", "netns", "exec", NS_A, sys.executable, "-c", code], cwd=ROOT, check=True,
                         capture_output=True, text=True, timeout=120)
    return float(out.stdout.strip())
