"""`tierml split`: measure the cuts of a model for a device, a server and a link; rank them; build the table.

Measuring is here; choosing is the pure split planner's (`tierml.plan.split`), given the measured costs.

1. Cut the graph (`tierml.model.partition`): every downset when there are few, else every prefix of
   the execution order.
2. Per-node times on each side: this host's ORT profiler (the device as this host x a stated slow-down
   factor), or the calibrated roofline for a catalogue device.
3. Candidates (`split.shortlist`): the exact min cut at every bandwidth bucket and encoding size, plus
   the best few enumerated cuts under the same additive cost, plus device-only and server-only.
4. Finalists are *measured* as sub-models (fusion makes a sub-model differ from its nodes' sum) when
   both sides are this host, else summed from the per-node estimates; wire bytes and encode/decode
   times are measured on a sample input.
5. Rank at the link (`split.rank`); fill the bucket -> (cut, encoding) table for the runtime.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import onnx

from tierml.hardware.catalog import Device, Link
from tierml.hardware.estimate import LatencyEstimator
from tierml.hardware.transfer import LinkState
from tierml.hybrid import encoding as enc
from tierml.hybrid.cost import CutProfile, measure_cut, node_times_ms, options, wire_costs
from tierml.hybrid.table import DEFAULT_EDGES, SplitTable, build_table
from tierml.model.partition import Cut, PartitionGraph, Shapes, partition_graph, run_split
from tierml.model.profile import analyze
from tierml.model.session import make_session
from tierml.model.shapes import dummy_inputs
from tierml.plan import split
from tierml.plan.split import Breakdown

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
        return {"link_state": self.link.to_dict(), "cuts_enumerated": self.cuts_enumerated,
                "exhaustive": self.exhaustive, "candidates_profiled": len(self.profiles),
                "chosen": self.ranked[0].to_dict(),
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
    graph = partition_graph(model, shapes)
    feeds = dict(feeds) if feeds is not None else dummy_inputs(graph.inputs)
    cuts, exhaustive = graph.cuts(limit)
    device_ms, server_ms = node_times(graph, device, feeds), node_times(graph, server, feeds)
    codes = [enc.Encoding.parse(e) for e in encodings]
    precisions = sorted({c.precision for c in codes})
    rates = [DEFAULT_EDGES[0] / 1.3, *DEFAULT_EDGES, DEFAULT_EDGES[-1] * 1.3]  # every table bucket, both ends
    finalists = split.shortlist(graph, cuts, device_ms, server_ms, [_SIZE_RATIO[p] for p in precisions],
                                link.rtt_ms, rates, keep)
    profiles = [profile_cut(graph, c, feeds, codes, device, server, device_ms, server_ms) for c in finalists]
    key = (lambda b: b.slowest_stage_ms) if objective == "throughput" else (lambda b: b.total_ms)
    ranked = split.rank(options(profiles, encodings), link.time_ms, key)
    best_by_cut = {b.cut: b for b in reversed(ranked)}
    exact = split.min_cut(graph, device_ms, server_ms, link.time_ms)
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
    """A catalogue link as the split planner prices it: median RTT, rates, and a radio's duty cycle."""
    return LinkState.of(link)
