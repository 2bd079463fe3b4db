"""`tierml split`: rank the cuts of a model for a device, a server and a link, and build the bandwidth table.

1. Cut the graph (`tierml.model.partition`): every downset when there are few, else every prefix of
   the execution order.
2. Per-node times on each side: this host's ORT profiler (the device as this host x a stated slow-down
   factor), or the calibrated roofline for a catalogue device.
3. Candidates: the exact min cut (`tierml.model.mincut`) at every bandwidth bucket and encoding size,
   plus the best few enumerated cuts under the same additive cost, plus device-only and server-only.
4. Finalists are *measured* as sub-models (fusion makes a sub-model differ from its nodes' sum) when
   both sides are this host, else summed from the per-node estimates; wire bytes and encode/decode
   times are measured on a sample input.
5. Rank at the link; fill the bucket -> (cut, encoding) table for the runtime.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import onnx

from tierml.hardware.catalog import Device, Link
from tierml.hardware.estimate import LatencyEstimator
from tierml.hybrid import encoding as enc
from tierml.hybrid.cost import (
    Breakdown,
    CutProfile,
    LinkState,
    measure_cut,
    node_times_ms,
    options,
    slowest_stage,
    wire_costs,
)
from tierml.hybrid.table import DEFAULT_EDGES, SplitTable, build_table
from tierml.model import mincut
from tierml.model.partition import Cut, PartitionGraph, Shapes, build, run_split
from tierml.model.profile import analyze
from tierml.model.session import make_session
from tierml.model.shapes import dummy_inputs

HOST = "host"
_SIZE_RATIO = {"fp32": 1.0, "fp16": 0.5, "int8": 0.25, "int8c": 0.25}


@dataclass(frozen=True)
class Side:
    """One tier: `host` (measured here, times x `factor`) or a catalogue device with an estimator."""

    name: str
    factor: float = 1.0
    device: Device | None = None
    estimator: LatencyEstimator | None = None

    @property
    def measured(self) -> bool:
        return self.device is None


@dataclass
class SplitPlan:
    """Ranked (cut, encoding) options at one link, the min-cut and chain-scan answers, and the table."""

    graph: PartitionGraph
    profiles: list[CutProfile]
    ranked: list[Breakdown]
    min_cut: Breakdown
    chain_scan: Breakdown
    table: SplitTable
    link: LinkState
    cuts_enumerated: int
    exhaustive: bool

    def to_dict(self, top: int = 10) -> dict:
        return {"link_state": vars(self.link), "cuts_enumerated": self.cuts_enumerated, "exhaustive": self.exhaustive,
                "candidates_profiled": len(self.profiles), "chosen": self.ranked[0].to_dict(),
                "min_cut": self.min_cut.to_dict(), "chain_scan": self.chain_scan.to_dict(),
                "ranked": [b.to_dict() for b in self.ranked[:top]], "table": self.table.to_dict()}


def node_times(graph: PartitionGraph, side: Side, feeds: Mapping[str, np.ndarray]) -> list[float]:
    """Per-node ms on one side."""
    if side.measured:
        return [t * side.factor for t in node_times_ms(graph, feeds)]
    assert side.device is not None and side.estimator is not None
    profile = analyze(graph.model, {k: v.shape for k, v in graph.inputs.items()})
    seconds = {t.node: t.seconds for t in side.estimator.latency(profile, side.device, "fp32").nodes}
    return [seconds.get(name, 0.0) * 1e3 * side.factor for name in graph.names]


def candidates(graph: PartitionGraph, cuts: Sequence[Cut], device_ms: Sequence[float], server_ms: Sequence[float],
               precisions: Sequence[str], rtt_ms: float, edges: Sequence[float] = DEFAULT_EDGES, keep: int = 4
               ) -> list[Cut]:
    """Min-cut answers and the `keep` best enumerated cuts (additive cost) at every bucket x encoding size."""
    found: dict[tuple[int, ...], Cut] = {}
    output_bytes = {o: graph.tensors[o].nbytes for o in graph.outputs}
    dev = np.array([sum(device_ms[i] for i in c.head) for c in cuts])
    srv = np.array([sum(server_ms) - sum(server_ms[i] for i in c.head) for c in cuts])
    size = np.array([c.nbytes for c in cuts], dtype=float)
    for mbps in [edges[0] / 1.3, *edges, edges[-1] * 1.3]:
        for precision in precisions:
            ratio = _SIZE_RATIO[precision]
            tensor_ms = {t: mincut.bytes_ms(graph.tensors[t].nbytes * ratio, mbps) for t in graph.consumers}
            out_ms = {o: mincut.bytes_ms(b, mbps) for o, b in output_bytes.items()}
            best = mincut.min_cut(graph, device_ms, server_ms, tensor_ms, out_ms).cut
            found.setdefault(tuple(sorted(best.head)), best)
            total = dev + srv + size * ratio * 8 / (mbps * 1e3) + np.where(size > 0, rtt_ms, 0.0)
            for i in np.argsort(total)[:keep]:
                found.setdefault(tuple(sorted(cuts[i].head)), cuts[i])
    n = len(graph.names)
    for c in (graph.cut(range(n)), graph.cut(())):
        found.setdefault(tuple(sorted(c.head)), c)
    return sorted(found.values(), key=lambda c: (len(c.head), c.tensors))


def profile_cut(graph: PartitionGraph, cut: Cut, feeds: Mapping[str, np.ndarray], encodings: Sequence[enc.Encoding],
                device: Side, server: Side, device_ms: Sequence[float], server_ms: Sequence[float]) -> CutProfile:
    """Measured sub-models when both sides are this host, else summed per-node estimates (wire measured)."""
    if device.measured and server.measured:
        return measure_cut(graph, cut, feeds, encodings, device.factor)
    head = graph.head_model(cut)
    values = run_split(make_session(head) if head is not None else None, None, feeds)
    crossing = {t: values[t] for t in cut.tensors}
    tail_ms = sum(server_ms[i] for i in range(len(graph.names)) if i not in cut.head)
    response = sum(graph.tensors[o].nbytes for o in graph.outputs if graph.producer.get(o) not in cut.head)
    wire = wire_costs(crossing, encodings) if cut.tensors else {}
    return CutProfile(cut, sum(device_ms[i] for i in cut.head), tail_ms, response, wire, method="calibrated")


def plan_split(model: onnx.ModelProto, shapes: Shapes | None, device: Side, server: Side, link: LinkState,
               encodings: Sequence[str] = ("fp32", "fp32+lz4"), limit: int = 2000,
               feeds: Mapping[str, np.ndarray] | None = None, keep: int = 4, objective: str = "latency"
               ) -> SplitPlan:
    """Everything `tierml split` prints: see the module docstring.

    `objective`: latency (one request end to end) or throughput (frames pipeline through device, link
    and server, so the slowest stage sets the rate; ranked by it).
    """
    graph = build(model, shapes)
    feeds = dict(feeds) if feeds is not None else dummy_inputs(graph.inputs)
    cuts, exhaustive = graph.cuts(limit)
    device_ms, server_ms = node_times(graph, device, feeds), node_times(graph, server, feeds)
    codes = [enc.Encoding.parse(e) for e in encodings]
    precisions = sorted({c.precision for c in codes})
    finalists = candidates(graph, cuts, device_ms, server_ms, precisions, link.rtt_ms, keep=keep)
    profiles = [profile_cut(graph, c, feeds, codes, device, server, device_ms, server_ms) for c in finalists]
    key = slowest_stage if objective == "throughput" else (lambda b: b.total_ms)
    ranked = sorted(options(profiles, encodings, link), key=key)
    best_by_cut = {b.cut: b for b in reversed(ranked)}
    tensor_ms = {t: mincut.bytes_ms(graph.tensors[t].nbytes, link.up_mbps) for t in graph.consumers}
    out_ms = {o: mincut.bytes_ms(graph.tensors[o].nbytes, link.down_mbps) for o in graph.outputs}
    exact = mincut.min_cut(graph, device_ms, server_ms, tensor_ms, out_ms).cut
    prefix_keys = {c.key() for c in graph.prefixes()}
    chain = min((b for b in ranked if b.cut in prefix_keys), key=lambda b: b.total_ms)
    table = build_table(profiles, encodings, link.rtt_ms, link.down_mbps / link.up_mbps)
    return SplitPlan(graph, profiles, ranked, best_by_cut.get(exact.key(), ranked[0]), chain, table, link, len(cuts),
                     exhaustive)


def side_for(name: str, factor: float, devices: Mapping[str, Device], estimator: LatencyEstimator | None) -> Side:
    """`host` is measured here; anything else is a catalogue device estimated with the calibration."""
    if name == HOST:
        return Side(name, factor)
    return Side(name, factor, devices[name], estimator)


def link_state(link: Link) -> LinkState:
    return LinkState(link.up_mbps.value, link.down_mbps.value, link.rtt_ms.p50)
