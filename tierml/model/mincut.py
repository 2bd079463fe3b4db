"""The latency-optimal place to cut a DAG, exactly: an s-t minimum cut (DADS, Hu et al., INFOCOM 2019).

Source s is the device, sink t the server. Each node v has an edge s->v weighing its server time (cut
when v runs on the server) and v->t weighing its device time (cut when it runs on the device). Each
tensor x gets its own vertex x' with an edge producer->x' weighing its transfer time and infinite
edges x'->consumer, so a tensor read by several tail nodes is paid once. Infinite edges
consumer->producer forbid sending anything back from the server to the device.

Fixed costs (RTT, request overhead) do not depend on which tensors cross, so they are left out of the
flow network and added after: the min cut is the best split, and it is compared with device-only.
Three tiers (device -> gateway -> cloud) use a DP over the prefixes of the execution order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import networkx as nx

from tierml.model.partition import Cut, PartitionGraph

_SOURCE, _SINK = "__device__", "__server__"
_SCALE = 1e4  # capacities as integers (0.1 us): networkx's flow on floats can return an inconsistent cut


@dataclass(frozen=True)
class Split:
    """A cut and its additive cost: device time + transfer of what crosses + server time (ms)."""

    cut: Cut
    device_ms: float
    transfer_ms: float
    server_ms: float

    @property
    def total_ms(self) -> float:
        return self.device_ms + self.transfer_ms + self.server_ms


def split_cost(graph: PartitionGraph, cut: Cut, device_ms: Sequence[float], server_ms: Sequence[float],
               tensor_ms: Mapping[str, float], output_ms: Mapping[str, float] | None = None) -> Split:
    """The additive cost of one cut (what the min cut minimises)."""
    back = sum((output_ms or {}).get(o, 0.0) for o in graph.outputs if graph.producer.get(o) not in cut.head)
    return Split(cut, sum(device_ms[i] for i in cut.head),
                 sum(tensor_ms[t] for t in cut.tensors) + back,
                 sum(server_ms[i] for i in range(len(graph.names)) if i not in cut.head))


def min_cut(graph: PartitionGraph, device_ms: Sequence[float], server_ms: Sequence[float],
            tensor_ms: Mapping[str, float], output_ms: Mapping[str, float] | None = None) -> Split:
    """The cut minimising device + transfer + server time over *all* downsets.

    `device_ms[i]` / `server_ms[i]`: node i's time on each side; `tensor_ms[t]`: sending tensor t up;
    `output_ms[o]`: sending model output o back down when the server makes it.
    """
    head = solve(graph.reads, graph.producer, device_ms, server_ms, tensor_ms, output_ms)
    return split_cost(graph, graph.cut(head), device_ms, server_ms, tensor_ms, output_ms)


def solve(reads: Sequence[Sequence[str]], producer: Mapping[str, int], device_ms: Sequence[float],
          server_ms: Sequence[float], tensor_ms: Mapping[str, float], output_ms: Mapping[str, float] | None = None
          ) -> set[int]:
    """The head (node indices) of the min cut of a DAG given as the tensors each node reads and who makes them.

    Tensors nobody makes are the model's inputs (they start on the device).
    """
    flow = nx.DiGraph()
    n = len(reads)
    to_server = list(server_ms[:n])
    for o, ms in (output_ms or {}).items():
        if o in producer:
            to_server[producer[o]] += ms
    for i in range(n):
        flow.add_edge(_SOURCE, i, capacity=_integer(to_server[i]))
        flow.add_edge(i, _SINK, capacity=_integer(device_ms[i]))
    consumers: dict[str, list[int]] = {}
    for i, tensors in enumerate(reads):
        for t in dict.fromkeys(tensors):
            consumers.setdefault(t, []).append(i)
    for t, users in consumers.items():
        made_by = producer.get(t, _SOURCE)
        tensor = ("tensor", t)
        flow.add_edge(made_by, tensor, capacity=_integer(tensor_ms.get(t, 0.0)))
        for user in users:
            flow.add_edge(tensor, user)  # no capacity attribute = infinite
            if made_by != _SOURCE:
                flow.add_edge(user, made_by)
    _, (device_side, _) = nx.minimum_cut(flow, _SOURCE, _SINK)
    return {v for v in device_side if isinstance(v, int)}


def _integer(ms: float) -> int:
    return round(min(ms, 1e9) * _SCALE)


def brute_force(graph: PartitionGraph, cuts: Sequence[Cut], device_ms: Sequence[float], server_ms: Sequence[float],
                tensor_ms: Mapping[str, float], output_ms: Mapping[str, float] | None = None) -> Split:
    """The best of the given cuts under the same additive cost (for checking and for baselines)."""
    return min((split_cost(graph, c, device_ms, server_ms, tensor_ms, output_ms) for c in cuts),
               key=lambda s: s.total_ms)


@dataclass(frozen=True)
class ThreeTier:
    """Device runs prefix [0, first), gateway [first, second), cloud the rest."""

    first: Cut
    second: Cut
    device_ms: float
    gateway_ms: float
    cloud_ms: float
    link1_ms: float
    link2_ms: float

    @property
    def total_ms(self) -> float:
        return self.device_ms + self.link1_ms + self.gateway_ms + self.link2_ms + self.cloud_ms


def three_tier(graph: PartitionGraph, tier_ms: Sequence[Sequence[float]],
               link_ms: Sequence[Mapping[str, float]], fixed_ms: Sequence[float] = (0.0, 0.0)) -> ThreeTier:
    """Best two cut points along the execution order for device -> gateway -> cloud (O(n^2) DP over prefixes).

    `tier_ms[k][i]`: node i on tier k; `link_ms[k][t]`: tensor t over link k; `fixed_ms[k]`: the RTT of
    link k, paid when something crosses it.
    """
    n = len(graph.names)
    prefixes = graph.prefixes()
    sums = [[0.0] * (n + 1) for _ in range(3)]
    for k in range(3):
        for i in range(n):
            sums[k][i + 1] = sums[k][i] + tier_ms[k][i]

    def hop(k: int, cut: Cut) -> float:
        return sum(link_ms[k][t] for t in cut.tensors) + (fixed_ms[k] if cut.tensors else 0.0)

    best: ThreeTier | None = None
    for a in range(n + 1):
        first = hop(0, prefixes[a])
        for b in range(a, n + 1):
            # what the device made and the cloud reads crosses link 1 then link 2: both carry it
            second = hop(1, prefixes[b])
            total = sums[0][a] + first + sums[1][b] - sums[1][a] + second + sums[2][n] - sums[2][b]
            if best is None or total < best.total_ms - 1e-12:
                best = ThreeTier(prefixes[a], prefixes[b], sums[0][a], sums[1][b] - sums[1][a],
                                 sums[2][n] - sums[2][b], first, second)
    assert best is not None
    return best
