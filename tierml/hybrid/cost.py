"""What one cut costs end to end: head on the device, encode, send, decode, tail on the server, result back.

latency(cut, encoding, link) = head + encode + link time (RTT + request up + response down) + decode + tail

Head and tail times are *measured* sub-model runs on this host (ORT fuses across nodes, so a
sub-model is not the sum of its nodes), scaled by a device factor when the device is this host
slowed down; for a catalogue device they come from the calibrated per-node estimator instead. Wire
bytes are the real inference-protocol request bodies, per encoding, on a sample input.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from tierml.hardware.transfer import LinkState
from tierml.hybrid import encoding as enc
from tierml.model.measure import profile_nodes, time_runs
from tierml.model.partition import Cut, PartitionGraph, run_split
from tierml.model.session import make_session
from tierml.plan.split import Breakdown, CutCost, price
from tierml.serve.client import encode_request

RESPONSE_HEADER_BYTES = 200  # JSON header of an inference response (measured: ~150-250 B)


@dataclass(frozen=True)
class Wire:
    """One encoding of one cut's tensors: request bytes on the wire and the time to encode / decode them."""

    nbytes: int
    encode_ms: float
    decode_ms: float


@dataclass
class CutProfile:
    """A cut with its measured (or estimated) head / tail times and its wire cost per encoding."""

    cut: Cut
    head_ms: float  # on the device
    tail_ms: float  # on the server
    response_bytes: int
    wire: dict[str, Wire] = field(default_factory=dict)
    method: str = "measured"

    @property
    def local(self) -> bool:
        """Device-only: nothing is sent."""
        return not self.cut.tensors

    def cost(self, encoding: str) -> CutCost:
        """This cut with one encoding, for the split planner (a device-only cut sends nothing)."""
        if self.local:
            return CutCost(self.cut.key(), self.head_ms, 0.0, 0, encoding="none", tensors=self.cut.tensors, local=True)
        w = self.wire[encoding]
        return CutCost(self.cut.key(), self.head_ms, self.tail_ms, w.nbytes, self.response_bytes, encoding,
                       w.encode_ms, w.decode_ms, self.cut.tensors)

    def latency(self, encoding: str, link: LinkState) -> Breakdown:
        """Predicted latency of this cut with `encoding` on `link`, by part."""
        return price(self.cost(encoding), link.time_ms)


def _median_ms(fn: Callable[[], object], runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return float(np.median(samples)) * 1e3


def wire_costs(tensors: Mapping[str, np.ndarray], encodings: Sequence[enc.Encoding], runs: int = 5
               ) -> dict[str, Wire]:
    """Request bytes and encode / decode time of each encoding for these cut tensors."""
    found: dict[str, Wire] = {}
    for e in encodings:
        encoded = enc.encode(dict(tensors), e.precision)
        body, _ = encode_request(encoded)
        encode_ms = _median_ms(lambda e=e: encode_request(enc.encode(dict(tensors), e.precision)), runs)
        decode_ms = _median_ms(lambda encoded=encoded, e=e: enc.decode(encoded, e.precision), runs)
        if e.lz4:
            packed = enc.compress(body)
            encode_ms += _median_ms(lambda body=body: enc.compress(body), runs)
            decode_ms += _median_ms(lambda packed=packed: enc.decompress(packed), runs)
            body = packed
        found[e.name] = Wire(len(body), encode_ms, decode_ms)
    return found


def measure_cut(graph: PartitionGraph, cut: Cut, feeds: Mapping[str, np.ndarray], encodings: Sequence[enc.Encoding],
                device_factor: float = 1.0, threads: int = 1, runs: int = 5) -> CutProfile:
    """Time the head and tail of `cut` on this host (head x `device_factor`) and size its requests."""
    head_model, tail_model = graph.head_model(cut), graph.tail_model(cut)
    head = make_session(head_model, threads) if head_model is not None else None
    tail = make_session(tail_model, threads) if tail_model is not None else None
    values = run_split(head, None, feeds)
    crossing = {t: values[t] for t in cut.tensors}
    head_ms = _session_ms(head, values, runs) * device_factor
    tail_ms = _session_ms(tail, values, runs)
    outputs = run_split(None, tail, values) if tail is not None else {}
    response = sum(outputs[o.name].nbytes for o in tail.get_outputs()) + RESPONSE_HEADER_BYTES if tail else 0
    wire = wire_costs(crossing, encodings) if cut.tensors else {}
    return CutProfile(cut, head_ms, tail_ms, response, wire)


def _session_ms(session: object | None, values: Mapping[str, np.ndarray], runs: int) -> float:
    if session is None:
        return 0.0
    feeds = {i.name: values[i.name] for i in session.get_inputs()}  # type: ignore[attr-defined]
    return float(np.median(time_runs(session, feeds, runs=runs, warmup=1))) * 1e3  # type: ignore[arg-type]


def node_times_ms(graph: PartitionGraph, feeds: Mapping[str, np.ndarray], threads: int = 1, runs: int = 10
                  ) -> list[float]:
    """Per-node time on this host: ORT profiler kernel times, scaled so they add up to the whole model's run.

    ORT renames what it rewrites (`<tensor>_nchwc` for layout-converted convs, `<node>/<Fusion>/` for
    fused nodes); those are mapped back to the node that made the tensor or carries the prefix. Nodes
    fused into a neighbour get 0; reorders and session overhead are spread by the final scaling.
    """
    index = {name: i for i, name in enumerate(graph.names)}
    times = [0.0] * len(graph.names)
    for timing in profile_nodes(graph.model, feeds, threads, runs, warmup=2):
        i = _profiled_node(timing.node, index, graph.producer)
        if i is not None:
            times[i] += timing.median_us / 1e3
    whole = _session_ms(make_session(graph.model, threads), feeds, max(runs, 5))
    scale = whole / sum(times) if sum(times) > 0 else 0.0
    return [t * scale for t in times]


def _profiled_node(name: str, index: Mapping[str, int], producer: Mapping[str, int]) -> int | None:
    if name in index:
        return index[name]
    if name.endswith("_nchwc") and name[: -len("_nchwc")] in producer:
        return producer[name[: -len("_nchwc")]]
    parts = name.rstrip("/").split("/")
    for end in range(len(parts) - 1, 0, -1):
        prefix = "/".join(parts[:end])
        if prefix in index:
            return index[prefix]
    return None


def options(profiles: Sequence[CutProfile], encodings: Sequence[str]) -> list[CutCost]:
    """Every (cut, encoding); a device-only cut has one option (nothing is sent)."""
    found = []
    for p in profiles:
        found += [p.cost("none")] if p.local else [p.cost(e) for e in encodings if e in p.wire]
    return found
