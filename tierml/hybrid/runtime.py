"""The device side of a split model: run the head, send the cut tensors, adapt the cut, never drop a request.

Each request: the split policy (`SplitPolicy`: the bandwidth table with hysteresis) maps the current
link estimate to a (cut, encoding) or to the device alone; the head runs here, the encoded tensors go
to the server's tail over the inference protocol (binary tensors, lz4 body when chosen), and the
answer's timing updates the estimates (EWMA of bandwidth and RTT). A background prober measures RTT
and, while everything runs locally, bandwidth, and notices when the server comes back. When the
server is unreachable or the deadline would be missed, the request is answered by the whole model
here and flagged `degraded`. This module does the I/O; the policy decides.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnxruntime as ort

from tierml.hardware.transfer import LinkState, bytes_in, rate_mbps
from tierml.hybrid import encoding as enc
from tierml.hybrid.bundle import PROBE, Bundle
from tierml.hybrid.policy import LinkView, Outcome
from tierml.hybrid.split_policy import SplitPolicy
from tierml.model.session import make_session
from tierml.serve.client import InferenceClient
from tierml.serve.errors import ServeError

SMALL_BYTES = 2048  # requests this small time the round trip, not the bandwidth


@dataclass
class SplitResult:
    """One answer and how it was produced."""

    outputs: dict[str, np.ndarray]
    latency_ms: float
    cut: int
    encoding: str
    degraded: bool = False
    reason: str = ""
    up_bytes: int = 0
    estimate_mbps: float = 0.0
    estimate_rtt_ms: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {"latency_ms": self.latency_ms, "cut": self.cut, "encoding": self.encoding, "degraded": self.degraded,
                "reason": self.reason, "up_bytes": self.up_bytes, "estimate_mbps": self.estimate_mbps,
                "estimate_rtt_ms": self.estimate_rtt_ms}


@dataclass
class LinkTracker:
    """EWMA of uplink bandwidth (Mbit/s) and RTT (ms) from the runtime's own transfers and probes."""

    up_mbps: float
    rtt_ms: float
    alpha: float = 0.4
    samples: int = 0
    history: list[float] = field(default_factory=list)  # the estimate after each bandwidth sample
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def observe(self, up_bytes: int, seconds: float, server_ms: float, down_bytes: int = 0,
                down_ratio: float = 1.0) -> None:
        """One request: `seconds` from send to answer, of which `server_ms` was the server computing.

        The answer's `down_bytes` came back at `down_ratio` x the uplink rate: both directions are in the
        transfer time, so the uplink is (up + down / ratio) bytes over it.
        """
        network_ms = max(0.05, seconds * 1e3 - server_ms)
        with self._lock:
            if up_bytes + down_bytes / down_ratio <= SMALL_BYTES:
                self.rtt_ms += self.alpha * (network_ms - self.rtt_ms)
                return
            transfer_ms = max(network_ms - self.rtt_ms, network_ms * 0.05)
            sample = rate_mbps(up_bytes + down_bytes / down_ratio, transfer_ms)
            self.up_mbps += self.alpha * (sample - self.up_mbps)
            self.samples += 1
            self.history.append(self.up_mbps)

    def state(self, down_ratio: float) -> LinkState:
        return LinkState(self.up_mbps, self.up_mbps * down_ratio, self.rtt_ms)


class SplitRuntime:
    """Device side of one split bundle, talking to `server_url` (a tierml server hosting the bundle's tails)."""

    def __init__(self, bundle: Bundle, server_url: str, deadline_ms: float | None = None, device_factor: float = 1.0,
                 threads: int = 1, probe_every_s: float = 1.0, initial_mbps: float | None = None,
                 margin: float = 0.25, dwell: int = 2, timeout_s: float = 30.0) -> None:
        self.bundle = bundle
        self.url = server_url
        self.device_factor = device_factor
        self.timeout_s = timeout_s
        table = bundle.table
        self.estimate = LinkTracker(initial_mbps or table.centre(len(table.edges) // 2), table.rtt_ms)
        self.policy = SplitPolicy(table, bundle.profiles, deadline_ms, margin, dwell)
        self.full = make_session((bundle.device_dir / "full.onnx").read_bytes(), threads)
        self.threads = threads
        self.heads: dict[int, ort.InferenceSession | None] = {}
        for choice in table.choices:
            self._head(choice.cut)
        self.client = InferenceClient(server_url, timeout_s=timeout_s)
        self.server_up = True
        self._stop = threading.Event()
        self._probe_every_s = probe_every_s
        self._local_since_probe = False
        self._prober = threading.Thread(target=self._probe_loop, name="tierml-split-probe", daemon=True)
        self._prober.start()

    def close(self) -> None:
        self._stop.set()
        self._prober.join(timeout=10)
        self.client.close()

    def __enter__(self) -> SplitRuntime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------------------------------------- requests

    def infer(self, feeds: Mapping[str, np.ndarray]) -> SplitResult:
        """One request, answered remotely or locally; never lost."""
        start = time.perf_counter()
        decision = self.policy.decide(self.link_view())
        if decision.where == "local":
            if not decision.reason:  # chosen, not forced: nothing measures the uplink, so the prober will
                self._local_since_probe = True
            result = self._local(feeds, start, decision.cut, decision.reason)
        else:
            result = self.run_cut(feeds, decision.cut, decision.encoding, start)
        self.policy.observe(Outcome(decision, result.latency_ms, result.up_bytes, result.degraded,
                                    result.reason if decision.where != "local" else ""))
        return result

    def link_view(self) -> LinkView:
        """The link as the policy sees it: the current estimate, whether the server answers, how many samples."""
        return LinkView(self.estimate.state(self.bundle.table.down_ratio), self.server_up, self.estimate.samples)

    def run_cut(self, feeds: Mapping[str, np.ndarray], cut: int, encoding: str, start: float | None = None
                ) -> SplitResult:
        """One request at a fixed (cut, encoding), bypassing the table (baselines and the oracle use this)."""
        start = time.perf_counter() if start is None else start
        if self.bundle.profiles[cut].local:
            return self._local(feeds, start, cut)
        values = dict(feeds)
        head = self._head(cut)
        if head is not None:
            outs = self._run_device(head, values)
            values.update(outs)
        code = enc.Encoding.parse(encoding)
        crossing = {t: values[t] for t in self.bundle.tensors(cut)}
        encoded = enc.encode(crossing, code.precision)
        profile = self.bundle.profiles[cut]
        sent = time.perf_counter()
        try:
            body_bytes = [0]

            def compress(body: bytes) -> bytes:
                packed = enc.compress(body) if code.lz4 else body
                body_bytes[0] = len(packed)
                return packed

            outputs = self.client.infer(self.bundle.tail(cut, encoding), encoded, compress=compress,
                                        content_encoding="lz4" if code.lz4 else "identity")
        except (OSError, ServeError) as exc:
            if isinstance(exc, ServeError) and exc.status < 500:
                raise
            self.server_up = False
            self.client.close()
            return self._local(feeds, start, cut, f"server unreachable: {type(exc).__name__}")
        elapsed = time.perf_counter() - sent
        wire = profile.wire[encoding]
        self.estimate.observe(body_bytes[0], elapsed, profile.tail_ms + wire.decode_ms, profile.response_bytes,
                              self.bundle.table.down_ratio)
        result = {k: v for k, v in values.items() if k in self._output_names()} | outputs
        return SplitResult(result, (time.perf_counter() - start) * 1e3, cut, encoding, up_bytes=body_bytes[0],
                           estimate_mbps=self.estimate.up_mbps, estimate_rtt_ms=self.estimate.rtt_ms)

    def _head(self, cut: int) -> ort.InferenceSession | None:
        if cut not in self.heads:
            path = self.bundle.head_path(cut)
            self.heads[cut] = make_session(path.read_bytes(), self.threads) if path is not None else None
        return self.heads[cut]

    def _local(self, feeds: Mapping[str, np.ndarray], start: float, cut: int, reason: str = "") -> SplitResult:
        outputs = self._run_device(self.full, dict(feeds))
        return SplitResult(outputs, (time.perf_counter() - start) * 1e3, cut if not reason else -1, "none",
                           degraded=bool(reason), reason=reason, estimate_mbps=self.estimate.up_mbps,
                           estimate_rtt_ms=self.estimate.rtt_ms)

    def _run_device(self, session: ort.InferenceSession, values: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run on the device; a slower device is emulated by waiting (factor - 1) x the time taken here."""
        began = time.perf_counter()
        names = [o.name for o in session.get_outputs()]
        outs = session.run(names, {i.name: values[i.name] for i in session.get_inputs()})
        if self.device_factor > 1:
            time.sleep((time.perf_counter() - began) * (self.device_factor - 1))
        return dict(zip(names, outs, strict=True))

    def _output_names(self) -> set[str]:
        return {o.name for o in self.full.get_outputs()}

    # ---------------------------------------------------------------------------------------------- probes

    def _probe_loop(self) -> None:
        client = InferenceClient(self.url, timeout_s=5.0)
        try:
            while not self._stop.wait(self._probe_every_s):
                self._probe(client)
        finally:
            client.close()

    def _probe(self, client: InferenceClient) -> None:
        """RTT from a health check; bandwidth too while nothing else is measuring it; server up or down."""
        try:
            began = time.perf_counter()
            ready = client.live()
            self.estimate.observe(0, time.perf_counter() - began, 0.0)
            if ready and self._local_since_probe:
                size = int(min(256_000, max(8_000, bytes_in(100, self.estimate.up_mbps))))
                began = time.perf_counter()
                client.infer(PROBE, {"payload": np.zeros(size, np.uint8)})
                self.estimate.observe(size, time.perf_counter() - began, 0.0)
                self._local_since_probe = False
            self.server_up = ready
        except (OSError, ServeError):
            self.server_up = False
            client.close()
